import { AppError } from '../errors.js';
import { GENESIS } from './chain.js';
import { readLines, type Line } from './lines.js';
import { parseLine } from './parse.js';

export interface VerifyResult {
  ok: boolean;
  /** Lines in the file, including a torn final fragment. */
  lines: number;
  firstBroken?: { line: number; reason: string };
}

interface ChainState {
  expectedSeq: number;
  prev: string;
}

/** Why this line breaks the chain, or undefined (and the state advances). */
function checkLine(line: Line, state: ChainState): string | undefined {
  if (!line.terminated) return 'torn: the last line has no trailing newline';
  const parsed = parseLine(line.text);
  if (!parsed.ok) return parsed.reason;
  const { record } = parsed;
  if (record.seq !== state.expectedSeq) return `seq ${record.seq} where ${state.expectedSeq} was expected`;
  if (record.prev !== state.prev) return 'prev does not match the hash of the line before';
  state.expectedSeq += 1;
  state.prev = record.hash;
  // The chain is whole from here on, but the daemon found lines missing before it (audit-anchor.ts).
  if (record.event === 'audit.gap') {
    const d = record.detail ?? {};
    return `records were removed while the daemon was stopped: the log ended at seq ${String(d['found_seq'])}, it had reached seq ${String(d['expected_seq'])}`;
  }
  return undefined;
}

/**
 * Walks the whole chain (SPEC section 6, `authsome audit verify`): each line parses, its seq is one more
 * than the previous, its prev is the previous hash and its hash recomputes. Stops checking at the first
 * break (everything after depends on it) but keeps counting lines. A missing file is an empty, valid log.
 * Lines dropped from the end while the daemon was stopped leave a shorter valid chain: the daemon's
 * anchor (daemon/audit-anchor.ts) notices at its next start and writes an `audit.gap` line, reported here.
 */
export async function verifyAudit(path: string): Promise<VerifyResult> {
  const state: ChainState = { expectedSeq: 1, prev: GENESIS };
  let lines = 0;
  let firstBroken: { line: number; reason: string } | undefined;
  try {
    for await (const line of readLines(path)) {
      lines = line.number;
      if (firstBroken !== undefined) continue;
      const reason = checkLine(line, state);
      if (reason !== undefined) firstBroken = { line: line.number, reason };
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { ok: true, lines: 0 };
    throw new AppError('ERR_AUDIT_UNAVAILABLE', `cannot read the audit log at ${path}`, undefined, {
      cause: err,
    });
  }
  return firstBroken === undefined ? { ok: true, lines } : { ok: false, lines, firstBroken };
}
