import { holdsRecord, type AuditWriter } from '../audit/index.js';
import type { HomePaths } from '../config/paths.js';
import { loadMasterKey, openVault } from '../vault/index.js';
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
export async function recordGap(store: KvStore, audit: AuditWriter): Promise<void> {
  const anchor = await store.get(AUDIT_HEAD_KEY).catch(() => undefined);
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

/** Keeps the current head as the anchor (after daemon.start and daemon.stop are durable). */
export async function saveAnchor(store: KvStore, audit: AuditWriter): Promise<void> {
  const { seq, hash } = audit.head;
  await store.put(AUDIT_HEAD_KEY, { seq, hash });
}

/**
 * The anchor as the stopped daemon left it (for `audit verify` while no daemon runs): the store is
 * opened with the master key just long enough to read it. The caller holds the start lock
 * (lifecycle.ts whileStopped), so no daemon can start and find the store taken meanwhile.
 */
export async function readAnchor(paths: HomePaths): Promise<{ seq: number; hash: string } | undefined> {
  const store = await openVault({ dir: paths.kvStore, masterKey: await loadMasterKey(paths.masterKey) });
  try {
    const anchor = await store.get(AUDIT_HEAD_KEY);
    const seq = anchor?.['seq'];
    const hash = anchor?.['hash'];
    return typeof seq === 'number' && typeof hash === 'string' ? { seq, hash } : undefined;
  } finally {
    await store.close();
  }
}
