import { hostname } from 'node:os';
import { readFileSync } from 'node:fs';
import { AppError } from '../errors.js';
import type { PgHandle } from '../vault/pg-store.js';
import { isAlive } from './daemon-file.js';

/**
 * The nodes sharing one database (table authsome_nodes): a node's name is held while it runs. A name
 * is held by a running node when its row has a recent heartbeat, or names a live daemon process on
 * this same host (a node killed with -9 on another host frees its name once the heartbeat is stale).
 */

export const HEARTBEAT_MS = 5_000;
/** A heartbeat older than this is a node that stopped without saying so (kill -9, a lost machine). */
export const STALE_MS = 15_000;

interface NodeRow {
  host: string;
  pid: number | null;
  fresh: boolean | null;
  age_ms: number | null;
}

/** A pid on this host that is still an authsome daemon (not a pid reused by another program). */
function liveDaemon(pid: number): boolean {
  if (pid === process.pid || !isAlive(pid)) return false;
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('serve');
  } catch {
    return true; // no /proc: a live pid is all we can tell
  }
}

function held(name: string, row: NodeRow, host: string): AppError | undefined {
  if (row.pid === null) return undefined; // stopped cleanly, or joined and never started
  const here = row.host === host;
  if (here && row.pid === process.pid) return undefined;
  const running = here ? liveDaemon(row.pid) : row.fresh === true;
  if (!running) return undefined;
  const seen = row.age_ms === null ? '' : `, last heartbeat ${Math.round(row.age_ms / 1000)} s ago`;
  return new AppError(
    'ERR_NODE_NAME_IN_USE',
    `node name "${name}" is held by a running node (host ${row.host}, pid ${row.pid}${seen})`,
    here
      ? `stop that daemon first (pid ${row.pid}), or give this node another name with --node NAME`
      : `stop the node on ${row.host}, or give this node another name with --node NAME (a node killed without stopping frees its name ${STALE_MS / 1000} s after its last heartbeat)`,
  );
}

/**
 * Takes the name for this process: 'start' (a daemon starting: pid and heartbeat set) or 'join' (a new
 * node's home: the row is created, nothing runs yet). Refused with ERR_NODE_NAME_IN_USE while a running
 * node holds it. One transaction with the row locked, so two nodes starting under one name cannot both win.
 */
export async function claimNode(pg: PgHandle, name: string, mode: 'start' | 'join'): Promise<void> {
  const host = hostname();
  await pg.transaction(async (c) => {
    await c.query('INSERT INTO authsome_nodes (name, host) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING', [
      name,
      host,
    ]);
    const { rows } = await c.query<NodeRow>(
      `SELECT host, pid, now() - heartbeat_at < make_interval(secs => $2::double precision / 1000) AS fresh,
              (extract(epoch FROM now() - heartbeat_at) * 1000)::double precision AS age_ms
         FROM authsome_nodes WHERE name = $1 FOR UPDATE`,
      [name, STALE_MS],
    );
    const row = rows[0];
    if (row) {
      const err = held(name, row, host);
      if (err) throw err;
    }
    if (mode === 'start')
      await c.query(
        'UPDATE authsome_nodes SET host = $2, pid = $3, started_at = now(), heartbeat_at = now() WHERE name = $1',
        [name, host, process.pid],
      );
    else
      await c.query(
        'UPDATE authsome_nodes SET host = $2, pid = NULL, heartbeat_at = NULL, joined_at = now() WHERE name = $1',
        [name, host],
      );
  });
}

/** While the daemon runs: its heartbeat every HEARTBEAT_MS (a missed one is only retried). Returns stop. */
export function startHeartbeat(pg: PgHandle, name: string): () => Promise<void> {
  const host = hostname();
  const beat = () =>
    pg
      .query('UPDATE authsome_nodes SET heartbeat_at = now() WHERE name = $1 AND host = $2 AND pid = $3', [
        name,
        host,
        process.pid,
      ])
      .catch(() => undefined);
  const timer = setInterval(() => void beat(), HEARTBEAT_MS);
  timer.unref();
  return async () => {
    clearInterval(timer);
    // A clean stop frees the name at once.
    await pg
      .query(
        'UPDATE authsome_nodes SET pid = NULL, heartbeat_at = NULL WHERE name = $1 AND host = $2 AND pid = $3',
        [name, host, process.pid],
      )
      .catch(() => undefined);
  };
}
