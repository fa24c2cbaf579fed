import { randomBytes } from 'node:crypto';
import { createServer, connect, type AddressInfo, type Server, type Socket } from 'node:net';
import pg from 'pg';
import { afterAll, afterEach, inject } from 'vitest';
import './pg-global-setup.js';

/**
 * PostgreSQL for tests: the server the global setup found (AUTHSOME_TEST_PG_URL, default
 * postgres://postgres@127.0.0.1:5432/test), one fresh schema per test dropped after it, and two fault
 * injectors: a TCP proxy that can be cut and restored (the database "down" without stopping a server
 * other people use), and a fake server that echoes the password it is sent (for scrubbing tests).
 */

/** The URL of a reachable test server, or undefined (the suites using it are skipped). */
export function pgUrl(): string | undefined {
  return inject('pgUrl') || undefined;
}

export const hasPg = pgUrl() !== undefined;

/** The test URL with its host and port replaced (to go through a proxy). */
export function viaPort(url: string, port: number): string {
  const u = new URL(url);
  u.hostname = '127.0.0.1';
  u.port = String(port);
  return u.toString();
}

export interface PgSchemas {
  /** Creates an empty schema with a random name, dropped (with everything in it) after the test. */
  fresh(): Promise<string>;
  /** A query as the test's superuser-ish admin, outside any store. */
  admin<R extends pg.QueryResultRow = pg.QueryResultRow>(
    text: string,
    values?: unknown[],
  ): Promise<pg.QueryResult<R>>;
  /** Registers something to close after the test, before the schemas are dropped. */
  defer(close: () => Promise<void>): void;
  /** Every table's rows in a schema, as text (canary scans, before/after comparisons). */
  snapshot(schema: string): Promise<Record<string, string[]>>;
}

export function usePgSchemas(): PgSchemas {
  const url = pgUrl();
  let pool: pg.Pool | undefined;
  const admin = (): pg.Pool => {
    if (url === undefined) throw new Error('no test PostgreSQL');
    if (pool === undefined) {
      pool = new pg.Pool({ connectionString: url, max: 2 });
      pool.on('error', () => undefined);
    }
    return pool;
  };
  const schemas: string[] = [];
  const closers: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const close of closers.splice(0).reverse()) await close().catch(() => undefined);
    for (const s of schemas.splice(0)) await admin().query(`DROP SCHEMA IF EXISTS ${s} CASCADE`);
  });
  afterAll(async () => {
    await pool?.end();
  });
  const query = <R extends pg.QueryResultRow>(text: string, values?: unknown[]) =>
    admin().query<R>(text, values);
  return {
    async fresh() {
      const name = `authsome_t_${randomBytes(6).toString('hex')}`;
      schemas.push(name);
      await query(`CREATE SCHEMA ${name}`);
      return name;
    },
    admin: query,
    defer(close) {
      closers.push(close);
    },
    async snapshot(schema) {
      const { rows } = await query<{ table_name: string }>(
        'SELECT table_name FROM information_schema.tables WHERE table_schema = $1 ORDER BY table_name',
        [schema],
      );
      const out: Record<string, string[]> = {};
      for (const { table_name: t } of rows) {
        const data = await query<{ row: string }>(`SELECT t::text AS row FROM ${schema}.${t} t ORDER BY 1`);
        out[t] = data.rows.map((r) => r.row);
      }
      return out;
    },
  };
}

export interface CuttableProxy {
  readonly port: number;
  /** Drops every open connection; new ones are accepted and never answered (a dead network). */
  cut(): void;
  /** Forwards again (connections opened while cut stay dead). */
  restore(): void;
  close(): Promise<void>;
}

/** A TCP proxy to target; cut() makes the database look unreachable to whoever goes through it. */
export async function cuttableProxy(targetHost: string, targetPort: number): Promise<CuttableProxy> {
  const sockets = new Set<Socket>();
  let up = true;
  const server: Server = createServer((client) => {
    sockets.add(client);
    client.on('close', () => sockets.delete(client));
    client.on('error', () => undefined);
    if (!up) return; // black hole: accepted, never answered
    const upstream = connect(targetPort, targetHost);
    sockets.add(upstream);
    upstream.on('close', () => sockets.delete(upstream));
    upstream.on('error', () => client.destroy());
    client.on('error', () => upstream.destroy());
    client.pipe(upstream).pipe(client);
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    cut() {
      up = false;
      for (const s of sockets) s.destroy();
    },
    restore() {
      up = true;
    },
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/**
 * Speaks just enough of the PostgreSQL protocol to ask for a cleartext password and then fail with an
 * error message that quotes it: the worst a server could do to our error messages.
 */
export async function passwordEchoServer(): Promise<{
  port: number;
  /** Every password a client sent. */
  received: string[];
  close(): Promise<void>;
}> {
  const sockets = new Set<Socket>();
  const received: string[] = [];
  const server = createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => undefined);
    let buf = Buffer.alloc(0);
    let started = false;
    s.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      if (!started) {
        if (buf.length < 8) return;
        const len = buf.readInt32BE(0);
        if (buf.length < len) return;
        const code = buf.readInt32BE(4);
        buf = buf.subarray(len);
        if (code === 80877103) {
          s.write('N'); // SSLRequest: no TLS here
          return;
        }
        started = true;
        s.write(message('R', int32(3))); // AuthenticationCleartextPassword
        return;
      }
      if (buf.length < 5 || buf[0] !== 0x70) return;
      const len = buf.readInt32BE(1);
      if (buf.length < 1 + len) return;
      const password = buf.subarray(5, 1 + len - 1).toString('utf8');
      received.push(password);
      const field = (t: string, v: string) =>
        Buffer.concat([Buffer.from(t), Buffer.from(v), Buffer.from([0])]);
      s.end(
        message(
          'E',
          Buffer.concat([
            field('S', 'FATAL'),
            field('C', '28P01'),
            field('M', `password authentication failed: you sent ${password}`),
            Buffer.from([0]),
          ]),
        ),
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    received,
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function int32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeInt32BE(n);
  return b;
}

function message(type: string, body: Buffer): Buffer {
  return Buffer.concat([Buffer.from(type), int32(body.length + 4), body]);
}
