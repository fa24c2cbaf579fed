import type { PgHandle } from '../vault/pg-store.js';

/**
 * OAuth refresh across nodes (SPEC section 10, issue 15 item 4): a refresh token is used once per
 * connection even when several nodes find its access token due at the same moment. The node that
 * takes the lock refreshes; the others wait for it, then re-read the record and use its result.
 */
export interface RefreshLock {
  run<T>(key: string, fn: () => Promise<T>): Promise<T>;
}

/** One process: the in-process single-flight (RefreshCoordinator) is all there is to it. */
export const localRefreshLock: RefreshLock = { run: (_key, fn) => fn() };

/** Lock space of our own ("autk"), apart from the schema and CA locks. */
const REFRESH_LOCK_CLASS = 1635087467;
/** How long a node waits for another's refresh (a token endpoint that hangs is cut well before). */
const WAIT_MS = 45_000;

/**
 * A transaction-scoped advisory lock keyed by schema and connection: held by one pooled connection
 * while the refresh runs, released at COMMIT, or by the server if the node dies (its connection drops).
 */
export function pgRefreshLock(pg: PgHandle): RefreshLock {
  return {
    run: (key, fn) =>
      pg.transaction(async (c) => {
        await c.query(`SET LOCAL statement_timeout = ${WAIT_MS}`);
        await c.query('SELECT pg_advisory_xact_lock($1, hashtext($2))', [
          REFRESH_LOCK_CLASS,
          `${pg.schema}/${key}`,
        ]);
        return fn();
      }),
  };
}
