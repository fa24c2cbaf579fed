import { ERROR_CODES, type ErrorCode } from '../../errors.js';

export type Status = 'pass' | 'fail' | 'warn' | 'skip';

/** One line of `authsome doctor`. Every `fail` carries the command (or step) that fixes it. */
export interface Check {
  id: string;
  title: string;
  status: Status;
  detail: string;
  fix?: string;
  /** The error code behind a failure; decides the exit code (docs/errors.md). */
  code?: ErrorCode;
}

export const pass = (id: string, title: string, detail: string): Check => ({
  id,
  title,
  status: 'pass',
  detail,
});
export const skip = (id: string, title: string, detail: string): Check => ({
  id,
  title,
  status: 'skip',
  detail,
});
export const warn = (id: string, title: string, detail: string, fix?: string): Check => ({
  id,
  title,
  status: 'warn',
  detail,
  ...(fix ? { fix } : {}),
});
export const fail = (
  id: string,
  title: string,
  detail: string,
  fix: string,
  code: ErrorCode = 'ERR_INTERNAL',
): Check => ({ id, title, status: 'fail', detail, fix, code });

/** 0 when nothing failed, else the documented exit code of the first failure. */
export function exitCodeOf(checks: readonly Check[]): number {
  const first = checks.find((c) => c.status === 'fail');
  return first ? ERROR_CODES[first.code ?? 'ERR_INTERNAL'].exit : 0;
}
