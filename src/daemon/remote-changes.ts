import type { ChangeFeed } from '../vault/change-feed.js';
import { parseKey } from '../vault/keys.js';
import type { KvStore } from '../vault/types.js';
import type { ProxyHandle } from '../proxy/types.js';

/**
 * Changes made through any node close what they took away on this node's proxy (SPEC section 10, issue
 * 18 item 2), as a local revocation does: a session deleted (revoked, purged, its profile deleted)
 * closes the connections it let in, a profile removed closes all of its own, a connection removed
 * closes the streams that carry its credential. A local change arrives here too (the feed delivers a
 * node's own writes): closing twice is harmless.
 *
 * A session id is the first 16 hex digits of its record's hash (identity/sessions.ts). A session record
 * is never rewritten, so any change to one with open connections is its deletion; a registry record
 * likewise. A connection record is rewritten by every refresh, so its deletion is checked in the store.
 */
export function followRemoteChanges(
  feed: ChangeFeed,
  store: KvStore,
  proxy: Pick<ProxyHandle, 'closeSessions' | 'closeProfile' | 'closeCredential' | 'liveSessions'>,
): () => void {
  const unsubscribe = [
    feed.subscribe('session/', (key) => {
      if (key === undefined) void reconcileSessions(store, proxy);
      else proxy.closeSessions([key.slice('session/'.length, 'session/'.length + 16)]);
    }),
    feed.subscribe('registry/', (key) => {
      const parsed = key === undefined ? undefined : parseKey(key);
      if (parsed?.kind !== 'registry') return;
      // A new profile has no connections yet, so closing on its creation closes nothing.
      proxy.closeProfile(parsed.handle);
    }),
    feed.subscribe('profile/', (key) => {
      const parsed = key === undefined ? undefined : parseKey(key);
      if (parsed?.kind !== 'connection') return;
      void store.get(key!).then(
        (rec) => {
          if (rec === undefined) proxy.closeCredential(parsed.handle, parsed.provider, parsed.connection);
        },
        () => undefined, // unreadable now: the next request through it reads the store and fails closed
      );
    }),
  ];
  return () => {
    for (const u of unsubscribe) u();
  };
}

/**
 * After the feed was down (changes may have gone unheard): every session with open connections is
 * looked up, and those gone are closed. Retried while the store cannot answer.
 */
async function reconcileSessions(
  store: KvStore,
  proxy: Pick<ProxyHandle, 'closeSessions' | 'liveSessions'>,
  attempt = 0,
): Promise<void> {
  const live = proxy.liveSessions();
  if (live.length === 0) return;
  let ids: Set<string>;
  try {
    ids = new Set(
      (await store.keys('session/')).map((k) => k.slice('session/'.length, 'session/'.length + 16)),
    );
  } catch {
    if (attempt < 10) setTimeout(() => void reconcileSessions(store, proxy, attempt + 1), 1000).unref();
    return;
  }
  proxy.closeSessions(live.filter((id) => !ids.has(id)));
}
