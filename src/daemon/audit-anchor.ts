import { holdsRecord, type AuditWriter } from '../audit/index.js';
import { readFile, rename, writeFile } from 'node:fs/promises';
import { AUDIT_HEAD_KEY } from '../vault/keys.js';
import type { KvStore } from '../vault/types.js';

/**
 * A log that was deleted, cut short or swapped for an older copy while the daemon was stopped cannot
 * tell from its own lines. The daemon keeps the log's head (seq and hash) in the store at every start
 * and stop; the next start compares, and a log that is behind that anchor gets an `audit.gap` record
 * (what was expected, what was found) as its next line, which `audit verify` reports. The chain goes on
 * from what is there. A log that runs past the anchor (lines written after a start, then a crash) must
 * still hold the anchor's record; a longer chain swapped in does not (`replaced`). Not detected: lines
 * forged onto the end of the genuine log (that needs the hash of every line kept elsewhere).
 */
/** The anchor's record key: one per node in team mode, where every node keeps its own log. */
export function anchorKey(node: string | undefined): string {
  return node === undefined ? AUDIT_HEAD_KEY : `${AUDIT_HEAD_KEY}/${node}`;
}

export async function recordGap(store: KvStore, audit: AuditWriter, key = AUDIT_HEAD_KEY): Promise<void> {
  const anchor = await store.get(key).catch(() => undefined);
  const seq = anchor?.['seq'];
  const hash = anchor?.['hash'];
  if (typeof seq !== 'number' || typeof hash !== 'string') return;
  const head = audit.head;
  if (head.seq === seq && head.hash === hash) return;
  const replaced = head.seq >= seq;
  if (replaced && (await holdsRecord(audit.path, { seq, hash }))) return;
  await audit.append({
    event: 'audit.gap',
    profile: '-',
    detail: {
      expected_seq: seq,
      expected_hash: hash,
      found_seq: head.seq,
      ...(replaced ? { replaced } : {}),
    },
  });
}

/**
 * Keeps the current head as the anchor (after daemon.start and daemon.stop are durable): in the store,
 * which the next start trusts, and as a copy in `file` for the CLI, which reads it while no daemon runs.
 * The copy is no weaker a check than the store for the same OS user (who can read master.key), and the
 * store's anchor still catches, at the next start, a log and a copy changed together.
 */
export async function saveAnchor(
  store: KvStore,
  audit: AuditWriter,
  file: string,
  key = AUDIT_HEAD_KEY,
): Promise<void> {
  const { seq, hash } = audit.head;
  await store.put(key, { seq, hash });
  const tmp = `${file}.${process.pid}.tmp`;
  await writeFile(tmp, `${JSON.stringify({ seq, hash })}\n`, { mode: 0o600 });
  await rename(tmp, file);
}

/** The anchor copy the daemon left for the CLI; undefined when there is none (or it is not one). */
export async function readAnchor(file: string): Promise<{ seq: number; hash: string } | undefined> {
  try {
    const v = JSON.parse(await readFile(file, 'utf8')) as { seq?: unknown; hash?: unknown };
    return typeof v.seq === 'number' && typeof v.hash === 'string' ? { seq: v.seq, hash: v.hash } : undefined;
  } catch {
    return undefined;
  }
}
