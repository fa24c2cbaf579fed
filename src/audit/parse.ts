import { hashRecord, LINE_KEYS } from './chain.js';
import type { AuditRecord } from './types.js';

const HEX64 = /^[0-9a-f]{64}$/;
const OPTIONAL_STRINGS = [
  'provider',
  'connection',
  'method',
  'host',
  'path',
  'request_id',
  'reason',
] as const;

export type ParsedLine = { ok: true; record: AuditRecord } | { ok: false; reason: string };

export function isDetailValue(v: unknown): v is string | number | boolean {
  return typeof v === 'string' || typeof v === 'boolean' || (typeof v === 'number' && Number.isFinite(v));
}

/** Shape problems of a parsed line, or undefined. Checked before hashing so a reason can be precise. */
function shapeProblem(o: Record<string, unknown>): string | undefined {
  for (const key of Object.keys(o)) if (!LINE_KEYS.has(key)) return `unexpected key "${key}"`;
  if (typeof o['ts'] !== 'string') return 'ts is not a string';
  if (!Number.isSafeInteger(o['seq']) || (o['seq'] as number) < 1) return 'seq is not a positive integer';
  if (typeof o['event'] !== 'string') return 'event is not a string';
  if (typeof o['profile'] !== 'string') return 'profile is not a string';
  for (const key of OPTIONAL_STRINGS) {
    if (key in o && typeof o[key] !== 'string') return `${key} is not a string`;
  }
  if ('status' in o && !Number.isSafeInteger(o['status'])) return 'status is not an integer';
  for (const key of ['rule', 'pid'] as const) {
    if (key in o && o[key] !== null && !(Number.isSafeInteger(o[key]) && (o[key] as number) >= 0))
      return `${key} is not a non-negative integer or null`;
  }
  if ('exe' in o && o['exe'] !== null && typeof o['exe'] !== 'string') return 'exe is not a string or null';
  if ('count' in o && !(Number.isSafeInteger(o['count']) && (o['count'] as number) >= 1))
    return 'count is not a positive integer';
  if ('node' in o && typeof o['node'] !== 'string') return 'node is not a string';
  if ('detail' in o) {
    const d = o['detail'];
    if (typeof d !== 'object' || d === null || Array.isArray(d)) return 'detail is not an object';
    if (!Object.values(d).every(isDetailValue)) return 'detail holds a non-primitive value';
  }
  if (typeof o['prev'] !== 'string' || !HEX64.test(o['prev'])) return 'prev is not a sha256 hex';
  if (typeof o['hash'] !== 'string' || !HEX64.test(o['hash'])) return 'hash is not a sha256 hex';
  return undefined;
}

/** Parses one line and checks its shape; the reader uses this (a bad hash is verify's business). */
export function parseRecord(text: string): ParsedLine {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { ok: false, reason: 'not valid JSON' };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return { ok: false, reason: 'not a JSON object' };
  }
  const problem = shapeProblem(value as Record<string, unknown>);
  return problem === undefined ? { ok: true, record: value as AuditRecord } : { ok: false, reason: problem };
}

/** parseRecord plus the line's own hash (not its link to the line before: that needs context). */
export function parseLine(text: string): ParsedLine {
  const parsed = parseRecord(text);
  if (parsed.ok && hashRecord(parsed.record) !== parsed.record.hash) {
    return { ok: false, reason: 'hash does not match the content' };
  }
  return parsed;
}
