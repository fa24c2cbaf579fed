import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import pg from 'pg';
import { ProxyAgent, request } from 'undici';
import { TestHome } from './cli.js';
import type { DaemonInfo } from '../../src/daemon/daemon-file.js';

/**
 * Team mode with real processes (SPEC section 10): one fresh database per test file (dropped after),
 * nodes that are TestHomes initialised with `init --store` / `init --join`, and small clients that
 * talk to a node's proxy the way a tool would.
 */

export interface TestDatabase {
  readonly name: string;
  readonly url: string;
  /** A query on the test database itself (rows, canary scans). */
  query<R extends pg.QueryResultRow = pg.QueryResultRow>(
    text: string,
    values?: unknown[],
  ): Promise<pg.QueryResult<R>>;
  drop(): Promise<void>;
}

export async function freshDatabase(adminUrl: string): Promise<TestDatabase> {
  const name = `authsome_t_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  const u = new URL(adminUrl);
  u.pathname = `/${name}`;
  const pool = new pg.Pool({ connectionString: u.toString(), max: 2 });
  pool.on('error', () => undefined);
  return {
    name,
    url: u.toString(),
    query: (text, values) => pool.query(text, values),
    async drop() {
      await pool.end().catch(() => undefined);
      const c = new pg.Client({ connectionString: adminUrl });
      await c.connect();
      try {
        await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await c.end();
      }
    },
  };
}

/** A node's home: its CLI (TestHome), the daemon it starts, and the files the tests read. */
export class TeamNode {
  readonly t: TestHome;
  readonly name: string;

  constructor(name: string, env: NodeJS.ProcessEnv = {}, t?: TestHome) {
    this.name = name;
    this.t =
      t ??
      new TestHome({
        AUTHSOME_LISTEN_DAEMON_PORT: '0',
        AUTHSOME_LISTEN_PROXY_PORT: '0',
        ...env,
      });
  }

  get home(): string {
    return this.t.home;
  }

  get masterKeyFile(): string {
    return join(this.home, 'server', 'master.key');
  }

  get caPem(): string {
    return readFileSync(join(this.home, 'server', 'ca', 'ca.pem'), 'utf8');
  }

  info(): DaemonInfo {
    return JSON.parse(readFileSync(join(this.home, 'server', 'daemon.json'), 'utf8')) as DaemonInfo;
  }

  async ok(args: string[], input?: string): Promise<string> {
    const r = await this.t.run(args, input === undefined ? {} : { input });
    if (r.code !== 0)
      throw new Error(`authsome ${args.join(' ')} on node ${this.name} failed (${r.code}): ${r.stderr}`);
    return r.stdout;
  }

  /** A session token minted through this node's CLI: the token and the session id. */
  async mint(args: string[] = []): Promise<{ id: string; token: string; handle: string }> {
    const out = JSON.parse(await this.ok(['proxy', 'env', ...args, '--json'])) as {
      id: string;
      env: Record<string, string>;
    };
    const u = new URL(out.env['HTTPS_PROXY']!);
    return { id: out.id, token: decodeURIComponent(u.password), handle: decodeURIComponent(u.username) };
  }

  async cleanup(): Promise<void> {
    await this.t.cleanup();
  }
}

/** Writes a custom provider definition (api key in a header) for `host` and returns its file. */
export function writeProvider(dir: string, name: string, host: string): string {
  const file = join(dir, `${name}.json`);
  writeFileSync(
    file,
    JSON.stringify({
      name,
      displayName: `${name} (test)`,
      docsUrl: `https://${host}/docs`,
      hosts: [{ host }],
      fields: ['key'],
      inject: [{ type: 'header', name: 'Authorization', template: 'Bearer {{key}}' }],
    }),
  );
  return file;
}

export const basic = (handle: string, token: string): string =>
  `Basic ${Buffer.from(`${handle}:${token}`).toString('base64')}`;

/** One request through a node's loopback proxy (undici ProxyAgent, as an agent's code would). */
export async function viaProxy(
  proxyPort: number,
  who: { handle: string; token: string },
  url: string,
  caPem: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; error: string | undefined; body: string }> {
  const agent = new ProxyAgent({
    uri: `http://127.0.0.1:${proxyPort}`,
    token: basic(who.handle, who.token),
    requestTls: { ca: caPem },
  });
  try {
    const r = await request(url, { dispatcher: agent, headers });
    const body = await r.body.text();
    const error = r.headers['x-authsome-error'];
    return { status: r.statusCode, error: typeof error === 'string' ? error : undefined, body };
  } catch (e) {
    // A CONNECT refused (407, 503) surfaces as an error naming the status.
    const m = /Proxy response \((\d+)\)/.exec(String((e as Error).cause ?? e));
    if (m) return { status: Number(m[1]), error: undefined, body: '' };
    throw e;
  } finally {
    await agent.close();
  }
}

/** Reads one response head from a socket (enough to know the status). */
function readHead(s: Socket | TLSSocket): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    let buf = '';
    const onData = (d: Buffer) => {
      buf += d.toString('latin1');
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      s.off('data', onData);
      s.off('error', reject);
      resolve({ status: Number(buf.slice(9, 12)), text: buf });
    };
    s.on('data', onData);
    s.once('error', reject);
  });
}

export interface OpenTunnel {
  readonly tls: TLSSocket;
  /** Resolves when the tunnel is closed (by the proxy). */
  readonly closed: Promise<void>;
  isClosed(): boolean;
}

/** CONNECT host:443 through a proxy port, TLS inside, one GET answered 200: an open, idle tunnel. */
export async function openTunnel(
  proxyPort: number,
  who: { handle: string; token: string },
  host: string,
  caPem: string,
): Promise<OpenTunnel> {
  const socket = connect(proxyPort, '127.0.0.1');
  await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  socket.write(
    `CONNECT ${host}:443 HTTP/1.1\r\nHost: ${host}:443\r\nProxy-Authorization: ${basic(who.handle, who.token)}\r\n\r\n`,
  );
  const head = await readHead(socket);
  if (head.status !== 200) throw new Error(`CONNECT answered ${head.status}`);
  const tls = tlsConnect({ socket, servername: host, ca: caPem });
  await new Promise<void>((resolve, reject) => tls.once('secureConnect', resolve).once('error', reject));
  tls.write(`GET /open HTTP/1.1\r\nHost: ${host}\r\n\r\n`);
  const inner = await readHead(tls);
  if (inner.status !== 200) throw new Error(`the first request in the tunnel answered ${inner.status}`);
  tls.resume();
  let closed = false;
  const done = new Promise<void>((resolve) => tls.once('close', () => resolve()));
  tls.on('error', () => undefined);
  void done.then(() => (closed = true));
  return { tls, closed: done, isClosed: () => closed };
}

/** Polls `check` until it returns true or `ms` pass; returns how long it took, or undefined. */
export async function within(
  ms: number,
  check: () => Promise<boolean>,
  every = 25,
): Promise<number | undefined> {
  const start = Date.now();
  for (;;) {
    if (await check().catch(() => false)) return Date.now() - start;
    if (Date.now() - start > ms) return undefined;
    await new Promise((r) => setTimeout(r, every));
  }
}

/** The value of one header in a raw header list. */
export function header(rawHeaders: readonly string[], name: string): string | undefined {
  for (let i = 0; i < rawHeaders.length; i += 2)
    if (rawHeaders[i]!.toLowerCase() === name) return rawHeaders[i + 1];
  return undefined;
}

/** A bare CONNECT through a proxy port: the status and X-Authsome-Error of the proxy's answer. */
export async function connectReply(
  proxyPort: number,
  who: { handle: string; token: string },
  host: string,
): Promise<{ status: number; error: string | undefined }> {
  const socket = connect(proxyPort, '127.0.0.1');
  try {
    await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
    socket.write(
      `CONNECT ${host}:443 HTTP/1.1\r\nHost: ${host}:443\r\nProxy-Authorization: ${basic(who.handle, who.token)}\r\n\r\n`,
    );
    const head = await readHead(socket);
    const m = /\r\nx-authsome-error: *([A-Z_]+)/i.exec(head.text);
    return { status: head.status, error: m?.[1] };
  } finally {
    socket.destroy();
  }
}
