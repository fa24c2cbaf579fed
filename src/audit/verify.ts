import { AppError } from '../errors.js';
import { GENESIS } from './chain.js';
import { linesFromEnd, readLines, type Line } from './lines.js';
import { parseLine } from './parse.js';

export interface VerifyResult {
  ok: boolean;
  /** Lines in the file, including a torn final fragment. */
  lines: number;
  firstBroken?: { line: number; reason: string };
}

/** A record the log must hold: the daemon's durable head, asked for before the file is read. */
export interface ExpectedRecord {
  seq: number;
  hash: string;
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
    return d['replaced'] === true
      ? `the log was replaced while the daemon was stopped: it no longer held seq ${String(d['expected_seq'])} as the daemon wrote it`
      : `records were removed while the daemon was stopped: the log ended at seq ${String(d['found_seq'])}, it had reached seq ${String(d['expected_seq'])}`;
  }
  return undefined;
}

/**
 * Walks the whole chain (SPEC section 6, `authsome audit verify`): each line parses, its seq is one more
 * than the previous, its prev is the previous hash and its hash recomputes. Stops checking at the first
 * break (everything after depends on it) but keeps counting lines. A missing file is an empty, valid log.
 * Lines dropped from the end leave a shorter valid chain. `holds` (the running daemon's durable head)
 * catches that at once: the log must contain that record. A daemon that was stopped meanwhile notices
 * at its next start from its anchor (daemon/audit-anchor.ts) and writes an `audit.gap` line, reported here.
 */
export async function verifyAudit(path: string, holds?: ExpectedRecord): Promise<VerifyResult> {
  const state: ChainState = { expectedSeq: 1, prev: GENESIS };
  let lines = 0;
  let firstBroken: { line: number; reason: string } | undefined;
  try {
    for await (const line of readLines(path)) {
      lines = line.number;
      if (firstBroken !== undefined) continue;
      const reason = checkLine(line, state);
      if (reason !== undefined) firstBroken = { line: line.number, reason };
      else if (holds !== undefined && state.expectedSeq - 1 === holds.seq && state.prev !== holds.hash)
        firstBroken = {
          line: line.number,
          reason: `this is not the record the daemon wrote as seq ${holds.seq}`,
        };
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT')
      throw new AppError('ERR_AUDIT_UNAVAILABLE', `cannot read the audit log at ${path}`, undefined, {
        cause: err,
      });
  }
  // A shorter chain is valid on its own; the daemon knows it wrote more (cut, emptied or swapped).
  if (firstBroken === undefined && holds !== undefined && state.expectedSeq - 1 < holds.seq) {
    firstBroken = {
      line: lines + 1,
      reason: `records are missing: the log ends at seq ${state.expectedSeq - 1}, the daemon has written up to seq ${holds.seq}`,
    };
  }
  return firstBroken === undefined ? { ok: true, lines } : { ok: false, lines, firstBroken };
}

/**
 * Whether the log holds this record (its seq with its hash): the line that ends in that hash, looked
 * for from the end backwards (after a crash it is as many lines back as the crashed run wrote), so a
 * large log is not read whole at a daemon start. Stops at the first line of a lower seq.
 */
export async function holdsRecord(path: string, rec: ExpectedRecord): Promise<boolean> {
  const tail = `,"hash":${JSON.stringify(rec.hash)}}`;
  try {
    for await (const text of linesFromEnd(path)) {
      if (text.endsWith(tail)) {
        const parsed = parseLine(text);
        if (parsed.ok && parsed.record.seq === rec.seq) return true;
      }
      const seq = /^\{"ts":"[^"]*","seq":(\d+),/.exec(text)?.[1];
      if (seq !== undefined && Number(seq) < rec.seq) return false;
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  return false;
}
