import type { Settings } from '../config/settings.js';
import type { LocalCa } from '../ca/index.js';
import type { KvStore } from '../vault/types.js';
import type { PgHandle } from '../vault/pg-store.js';
import { readNodeName } from './node-name.js';
import { claimNode, startHeartbeat } from './nodes.js';
import { ensureStoreCa, exportCaCert } from './team-ca.js';

/** What a daemon on PostgreSQL adds at start (SPEC section 10): its name held, the shared CA loaded. */
export interface TeamNode {
  readonly name: string;
  readonly ca: LocalCa;
  /** Stops the heartbeat and frees the name (before the store closes). */
  close(): Promise<void>;
}

export async function openTeamNode(settings: Settings, pg: PgHandle, store: KvStore): Promise<TeamNode> {
  const name = await readNodeName(settings.paths.nodeFile);
  // The store opened, so the master key is checked; the claim is the node's first write.
  await claimNode(pg, name, 'start');
  const stop = startHeartbeat(pg, name);
  try {
    const ca = await ensureStoreCa(store, pg);
    await exportCaCert(settings.paths.caCert, ca.certPem);
    return { name, ca, close: stop };
  } catch (e) {
    await stop();
    throw e;
  }
}
