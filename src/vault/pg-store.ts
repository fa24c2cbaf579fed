import pg from 'pg';
import { AppError, isAppError } from '../errors.js';
import type { Scrubber } from './pg-config.js';
import type { KeyRange, RawKv, RawOp } from './sealed-store.js';

/**
 * The PostgreSQL engine below the shared sealing layer: it stores record keys (as UTF-8 bytea, so
 * ranges and ORDER BY are bytewise like LevelDB) and opaque sealed values, nothing else.
 */

/** Access to the database for the store and, later, the audit sink and the nodes table. */
export interface PgHandle {
  readonly pool: pg.Pool;
  /** The database URL without any password, for messages. */
  readonly display: string;
  /** The schema every table lives in (search_path of every connection). */
  readonly schema: string;
  /** One statement. Any failure becomes ERR_STORE_UNAVAILABLE (503) with a scrubbed message. */
  query<R extends pg.QueryResultRow = pg.QueryResultRow>(
    text: string | pg.QueryConfig,
    values?: unknown[],
  ): Promise<pg.QueryResult<R>>;
  /** fn between BEGIN and COMMIT on one connection; rolled back (and the connection dropped) if it throws. */
  transaction<T>(fn: (client: pg.PoolClient) => Promise<T>): Promise<T>;
  /** The error a caller should see for e: AppErrors and TypeErrors as they are, the rest 503, scrubbed. */
  failure(e: unknown): Error;
  /** Waits for statements in flight, then closes the pool. Later calls fail with ERR_STORE_UNAVAILABLE. */
  close(): Promise<void>;
}

export function pgHandle(pool: pg.Pool, display: string, schema: string, scrubber: Scrubber): PgHandle {
  let closed = false;
  const inFlight = new Set<Promise<unknown>>();
  const failure = (e: unknown): Error => {
    if (isAppError(e) || e instanceof TypeError) return e;
    return unavailable(display, describe(e, scrubber));
  };
  const track = <T>(fn: () => Promise<T>): Promise<T> => {
    if (closed) return Promise.reject(unavailable(display, 'the store is closed'));
    const p = (async () => {
      try {
        return await fn();
      } catch (e) {
        throw failure(e);
      }
    })();
    inFlight.add(p);
    void p.finally(() => inFlight.delete(p)).catch(() => undefined);
    return p;
  };
  return {
    pool,
    display,
    schema,
    failure,
    query<R extends pg.QueryResultRow>(text: string | pg.QueryConfig, values?: unknown[]) {
      return track(() => pool.query<R>(text as string, values));
    },
    transaction<T>(fn: (client: pg.PoolClient) => Promise<T>) {
      return track(async () => {
        const client = await pool.connect();
        try {
          await client.query('BEGIN');
          const out = await fn(client);
          await client.query('COMMIT');
          client.release();
          return out;
        } catch (e) {
          if (isAppError(e) || e instanceof TypeError) {
            // Our own refusal on a healthy connection: roll back and keep the connection.
            const rolledBack = await client.query('ROLLBACK').then(
              () => true,
              () => false,
            );
            client.release(rolledBack ? undefined : new Error('rollback failed'));
          } else {
            // A database or network failure: the connection's state is unknown, so it is dropped
            // (which aborts the transaction) instead of waiting for a ROLLBACK on a dead socket.
            client.release(e instanceof Error ? e : new Error('transaction failed'));
          }
          throw e;
        }
      });
    },
    async close() {
      closed = true;
      await Promise.allSettled([...inFlight]);
      await pool.end();
    },
  };
}

function unavailable(display: string, reason: string): AppError {
  return new AppError(
    'ERR_STORE_UNAVAILABLE',
    `the database ${display} is unavailable: ${reason}`,
    'check that PostgreSQL is running and reachable; requests that need it fail until it is back',
  );
}

/** A short reason from a pg or socket error, scrubbed. The error itself is not kept as the cause. */
function describe(e: unknown, scrubber: Scrubber): string {
  const err = e as { message?: unknown; code?: unknown } | null;
  const message = typeof err?.message === 'string' && err.message !== '' ? err.message : 'unknown error';
  const code = typeof err?.code === 'string' ? ` (${err.code})` : '';
  return scrubber.scrub(`${message}${code}`);
}

const utf8 = (key: string): Buffer => Buffer.from(key, 'utf8');

/** Named statements: parsed once per connection. */
const SQL = {
  get: 'SELECT v FROM authsome_kv WHERE k = $1',
  put: 'INSERT INTO authsome_kv (k, v) VALUES ($1, $2) ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v',
  del: 'DELETE FROM authsome_kv WHERE k = $1',
  // One statement is one transaction: the deletes and the upserts commit together or not at all.
  batch: `WITH gone AS (DELETE FROM authsome_kv WHERE k = ANY($3::bytea[]))
    INSERT INTO authsome_kv (k, v) SELECT * FROM unnest($1::bytea[], $2::bytea[])
    ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v`,
  entries: 'SELECT k, v FROM authsome_kv WHERE k >= $1 AND k < $2 ORDER BY k',
  keys: 'SELECT k FROM authsome_kv WHERE k >= $1 AND k < $2 ORDER BY k',
} as const;

export class PgRawKv implements RawKv {
  readonly #db: PgHandle;

  constructor(db: PgHandle) {
    this.#db = db;
  }

  #q<R extends pg.QueryResultRow>(name: keyof typeof SQL, values: unknown[]): Promise<pg.QueryResult<R>> {
    return this.#db.query<R>({ name: `authsome_kv_${name}`, text: SQL[name], values });
  }

  async get(key: string): Promise<Uint8Array | undefined> {
    const { rows } = await this.#q<{ v: Buffer }>('get', [utf8(key)]);
    return rows[0]?.v;
  }

  async put(key: string, sealed: Uint8Array): Promise<void> {
    await this.#q('put', [utf8(key), Buffer.from(sealed)]);
  }

  async del(key: string): Promise<void> {
    await this.#q('del', [utf8(key)]);
  }

  async batch(ops: readonly RawOp[]): Promise<void> {
    // A key's last op decides it, so the statement touches each key once (ON CONFLICT needs that).
    const last = new Map<string, Uint8Array | null>();
    for (const op of ops) {
      last.delete(op.key);
      last.set(op.key, op.type === 'put' ? op.value : null);
    }
    const putKeys: Buffer[] = [];
    const putValues: Buffer[] = [];
    const delKeys: Buffer[] = [];
    for (const [key, value] of last) {
      if (value === null) delKeys.push(utf8(key));
      else {
        putKeys.push(utf8(key));
        putValues.push(Buffer.from(value));
      }
    }
    await this.#q('batch', [putKeys, putValues, delKeys]);
  }

  async entries(range: KeyRange): Promise<Array<[string, Uint8Array]>> {
    const { rows } = await this.#q<{ k: Buffer; v: Buffer }>('entries', [utf8(range.gte), utf8(range.lt)]);
    return rows.map((r) => [r.k.toString('utf8'), r.v]);
  }

  async keys(range: KeyRange): Promise<string[]> {
    const { rows } = await this.#q<{ k: Buffer }>('keys', [utf8(range.gte), utf8(range.lt)]);
    return rows.map((r) => r.k.toString('utf8'));
  }

  async close(): Promise<void> {
    await this.#db.close();
  }
}
