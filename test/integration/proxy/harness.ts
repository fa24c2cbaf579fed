import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { ProxyAgent } from 'undici';
import { LeafCache } from '../../../src/ca/leaf-cache.js';
import { createProxy } from '../../../src/proxy/server.js';
import type { ProxyHandle } from '../../../src/proxy/types.js';
import type { ProviderDef } from '../../../src/providers/types.js';
import type { ProxySettings } from '../../../src/config/settings.js';
import type { LookupFn } from '../../../src/proxy/address-policy.js';
import { bearer, fakeDeps, provider, CANARY } from '../../helpers/fake-deps.js';
import { makeTestCa, type TestCa } from '../../helpers/test-ca.js';
import { startUpstream, type Upstream } from '../../helpers/upstream.js';

export const HOSTS = {
  api: 'api.test.local',
  keys: 'keys.test.local',
  query: 'query.test.local',
  other: 'other.test.local',
  plain: 'plain.test.local',
} as const;

export const SECRETS = {
  alicePersonal: CANARY,
  aliceWork: 'sk-canary-WORK-5d8e1b',
  bob: 'sk-canary-BOB-0a7c33',
  key: 'sk-canary-KEY-11aa22',
  query: 'sk-canary-QRY-33bb44',
} as const;

export interface Harness {
  readonly proxy: ProxyHandle;
  readonly proxyPort: number;
  readonly upstream: Upstream;
  readonly upstreamCa: TestCa;
  readonly localCa: TestCa;
  readonly leaves: LeafCache;
  readonly deps: ReturnType<typeof fakeDeps>;
  readonly order: string[];
  readonly tokens: { alice: string; bob: string; aliceKeysOnly: string };
  /** Basic credentials for Proxy-Authorization. */
  basic(handle: string, token: string): string;
  agent(
    handle?: string,
    token?: string,
    opts?: { ca?: string; proxyTunnel?: boolean; connections?: number },
  ): ProxyAgent;
  url(host: keyof typeof HOSTS, path: string, scheme?: 'http' | 'https'): string;
  close(): Promise<void>;
}

export interface HarnessOptions {
  settings?: Partial<ProxySettings>;
  extraProviders?: (up: Upstream) => ProviderDef[];
  extraPins?: (up: Upstream) => Array<[string, string]>;
  lookup?: LookupFn;
  /** Extra DNS names on the upstream certificate (for unpinned hosts a test resolves itself). */
  names?: string[];
  /** The address filter seam (default: the real one). */
  forbidden?: (address: string) => boolean;
  selfAddresses?: () => ReadonlyArray<{ host: string; port: number }>;
  upstreamCa?: TestCa;
  localCa?: TestCa;
}

export async function startHarness(opts: HarnessOptions = {}): Promise<Harness> {
  const upstreamCa = opts.upstreamCa ?? (await makeTestCa('upstream test CA'));
  const localCa = opts.localCa ?? (await makeTestCa('authsome local CA (test)'));
  const cert = await upstreamCa.issue([
    HOSTS.api,
    HOSTS.keys,
    HOSTS.query,
    HOSTS.other,
    HOSTS.plain,
    ...(opts.names ?? []),
  ]);
  const order: string[] = [];
  const upstream = await startUpstream({ cert, order });
  const sp = upstream.httpsPort;
  const providers = [
    bearer('acme', [{ host: HOSTS.api, port: sp }]),
    provider(
      'keyco',
      [{ host: HOSTS.keys, port: sp }],
      [{ type: 'header', name: 'X-Api-Key', template: '{{api_key}}' }],
    ),
    provider(
      'qp',
      [{ host: HOSTS.query, port: sp }],
      [{ type: 'query', name: 'key', template: '{{api_key}}' }],
    ),
    ...(opts.extraProviders?.(upstream) ?? []),
  ];
  const resolve = new Map<string, string>([
    [`${HOSTS.api}:${sp}`, `127.0.0.1:${sp}`],
    [`${HOSTS.keys}:${sp}`, `127.0.0.1:${sp}`],
    [`${HOSTS.query}:${sp}`, `127.0.0.1:${sp}`],
    [`${HOSTS.other}:${sp}`, `127.0.0.1:${sp}`],
    [`${HOSTS.plain}:${upstream.httpPort}`, `127.0.0.1:${upstream.httpPort}`],
    ...(opts.extraPins?.(upstream) ?? []),
  ]);
  const leaves = await LeafCache.create(localCa);
  const self: Array<{ host: string; port: number }> = [];
  const deps = fakeDeps({
    settings: opts.settings ?? {},
    providers,
    leaves,
    resolve,
    upstreamCaPem: upstreamCa.certPem,
    selfAddresses: opts.selfAddresses ?? (() => self),
  });
  deps.audit.order = order;
  deps.credentials
    .set('alice', 'acme', 'personal', { api_key: SECRETS.alicePersonal }, true)
    .set('alice', 'acme', 'work', { api_key: SECRETS.aliceWork })
    .set('alice', 'keyco', 'main', { api_key: SECRETS.key })
    .set('alice', 'qp', 'main', { api_key: SECRETS.query })
    .set('bob', 'acme', 'bobconn', { api_key: SECRETS.bob });
  const tokens = {
    alice: deps.sessions.add('alice', 'tok-alice-0123456789'),
    bob: deps.sessions.add('bob', 'tok-bob-0123456789'),
    aliceKeysOnly: 'tok-alice-keys-only',
  };
  deps.sessions.add('alice', tokens.aliceKeysOnly, { allow: [{ provider: 'keyco' }] });
  const proxy = createProxy(deps, {
    ...(opts.lookup ? { lookup: opts.lookup } : {}),
    ...(opts.forbidden ? { forbidden: opts.forbidden } : {}),
  });
  const addr = await proxy.listen(0, '127.0.0.1');
  self.push({ host: '127.0.0.1', port: addr.port });
  const agents: ProxyAgent[] = [];
  const basic = (h: string, t: string): string => `Basic ${Buffer.from(`${h}:${t}`).toString('base64')}`;
  return {
    proxy,
    proxyPort: addr.port,
    upstream,
    upstreamCa,
    localCa,
    leaves,
    deps,
    order,
    tokens,
    basic,
    agent(handle = 'alice', token = tokens.alice, o = {}) {
      const a = new ProxyAgent({
        uri: `http://127.0.0.1:${addr.port}`,
        token: basic(handle, token),
        requestTls: { ca: o.ca ?? localCa.certPem },
        proxyTunnel: o.proxyTunnel ?? true,
        ...(o.connections !== undefined ? { connections: o.connections } : {}),
      });
      agents.push(a);
      return a;
    },
    url(host, path, scheme = 'https') {
      return `${scheme}://${HOSTS[host]}:${scheme === 'https' ? sp : upstream.httpPort}${path}`;
    },
    async close() {
      await Promise.all(agents.map((a) => a.destroy().catch(() => undefined)));
      await proxy.close(500);
      await upstream.close();
    },
  };
}

/** Reads one HTTP response head from a socket (raw bytes: what a client really receives). */
export function readHead(
  socket: Socket | TLSSocket,
): Promise<{ status: number; head: string; rest: Buffer }> {
  return new Promise((resolve, reject) => {
    let buf = Buffer.alloc(0);
    const onData = (c: Buffer): void => {
      buf = Buffer.concat([buf, c]);
      const i = buf.indexOf('\r\n\r\n');
      if (i >= 0) {
        socket.off('data', onData);
        socket.off('error', reject);
        const head = buf.subarray(0, i).toString('latin1');
        resolve({
          status: Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1] ?? 0),
          head,
          rest: buf.subarray(i + 4),
        });
      }
    };
    socket.on('data', onData);
    socket.once('error', reject);
    socket.once('end', () =>
      reject(new Error(`connection ended before a response head: ${buf.toString('latin1')}`)),
    );
  });
}

/** Everything a socket sends until it closes. */
export function readAll(socket: Socket | TLSSocket): Promise<Buffer> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', () => resolve(Buffer.concat(chunks)));
    socket.on('close', () => resolve(Buffer.concat(chunks)));
  });
}

export function openProxySocket(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = netConnect({ host: '127.0.0.1', port }, () => resolve(s));
    s.once('error', reject);
  });
}

/** Raw CONNECT; returns the socket and the proxy's answer head. */
export async function rawConnect(
  port: number,
  authority: string,
  headers: string[] = [],
): Promise<{ socket: Socket; status: number; head: string; rest: Buffer }> {
  const socket = await openProxySocket(port);
  socket.write(
    `CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\n${headers.map((h) => `${h}\r\n`).join('')}\r\n`,
  );
  return { socket, ...(await readHead(socket)) };
}

/** TLS over an established tunnel. */
export function tlsOver(socket: Socket, opts: { servername?: string; ca: string }): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const t = tlsConnect(
      {
        socket,
        ca: opts.ca,
        ...(opts.servername !== undefined ? { servername: opts.servername } : {}),
        ALPNProtocols: ['http/1.1'],
      },
      () => resolve(t),
    );
    t.once('error', reject);
  });
}

/** CONNECT + TLS (trusting the local CA) + one raw request; returns everything the client received. */
export async function rawTlsExchange(
  h: Harness,
  host: keyof typeof HOSTS,
  request: string,
  opts: { servername?: string; token?: string } = {},
): Promise<string> {
  const authority = `${HOSTS[host]}:${h.upstream.httpsPort}`;
  const { socket, status } = await rawConnect(h.proxyPort, authority, [
    `Proxy-Authorization: ${h.basic('alice', opts.token ?? h.tokens.alice)}`,
  ]);
  if (status !== 200) throw new Error(`CONNECT answered ${status}`);
  const tls = await tlsOver(socket, { servername: opts.servername ?? HOSTS[host], ca: h.localCa.certPem });
  const all = readAll(tls);
  tls.write(request.replace(/\n/g, '\r\n').replace(/\r\r\n/g, '\r\n'));
  return (await all).toString('latin1');
}
