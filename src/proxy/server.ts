import { createServer, type Server, type ServerOptions } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { createServer as createTlsServer, type Server as TlsServer } from 'node:tls';
import type { ProxySettings } from '../config/settings.js';
import { AddressPolicy, type LookupFn } from './address-policy.js';
import { onConnect } from './connect.js';
import type { ProxyContext } from './context.js';
import { upstreamTrust } from './dial.js';
import { onClientError, onRequest, onUpgrade } from './handlers.js';
import { Identifier } from './identify.js';
import { DenyFolder } from './deny-fold.js';
import { LiveSockets } from './live.js';
import { denyWriter } from './pipeline.js';
import { ConnectionLimiter, limitsOf, STREAM_HWM } from './limits.js';
import type { ProxyDeps, ProxyHandle, ProxyStats } from './types.js';
import { Upstreams } from './upstream.js';

/** Room above proxy.maxHeaderSize for Node's parser, so the proxy's own measure decides (headers.ts). */
const HEAD_SLACK = 4096;

function serverOptions(s: ProxySettings): ServerOptions {
  // Node refuses headersTimeout > requestTimeout when the latter is set.
  const headersTimeout =
    s.requestTimeoutMs > 0 ? Math.min(s.headersTimeoutMs, s.requestTimeoutMs) : s.headersTimeoutMs;
  return {
    insecureHTTPParser: false,
    // A backstop only: checkRequestHead measures every head the same way on every path and answers
    // 431 first; Node's own count differs by path (it includes or leaves out lines the proxy reads).
    maxHeaderSize: s.maxHeaderSize + HEAD_SLACK,
    requestTimeout: s.requestTimeoutMs,
    headersTimeout,
    keepAliveTimeout: Math.min(s.idleTimeoutMs || 5_000, 65_000),
    // Node enforces headers/request timeouts from a periodic sweep (default every 30 s); sweep often
    // enough that a slow-headers client is cut near headersTimeout, not up to 30 s later.
    connectionsCheckingInterval: Math.max(250, Math.min(5_000, Math.floor(headersTimeout / 4) || 5_000)),
    noDelay: true,
    // Duplicates stay visible in rawHeaders; security decisions read those (headers.ts).
    joinDuplicateHeaders: false,
    // Request bodies and responses buffer up to this much before pausing the other side (limits.ts).
    highWaterMark: STREAM_HWM,
  };
}

function configure(server: Server, s: ProxySettings): Server {
  // Node 20 truncates silently at maxHeadersCount; lift it and enforce the limit ourselves (431).
  server.maxHeadersCount = 0;
  server.timeout = s.idleTimeoutMs;
  server.on('clientError', onClientError);
  return server;
}

/**
 * The proxy: an outer HTTP server (absolute-form requests, CONNECT, WebSocket upgrades) and an inner
 * one fed with the decrypted sockets of intercepted tunnels. `lookup` (DNS) and `forbidden` (the
 * address filter) are test seams.
 */
export function createProxy(
  deps: ProxyDeps,
  opts: { lookup?: LookupFn; forbidden?: (address: string) => boolean } = {},
): ProxyHandle {
  const s = deps.settings;
  const limits = limitsOf(s);
  const policy = new AddressPolicy({
    resolve: deps.resolve,
    selfAddresses: deps.selfAddresses,
    ...(opts.lookup ? { lookup: opts.lookup } : {}),
    ...(opts.forbidden ? { forbidden: opts.forbidden } : {}),
  });
  const trust = upstreamTrust(deps.upstreamCaPem);
  const inner = configure(createServer(serverOptions(s)), s);
  // The inner server never listens, but Node only starts connection tracking (headers/request
  // timeouts, closeAllConnections) on 'listening'.
  inner.emit('listening');
  const outer = configure(createServer(serverOptions(s)), s);
  const ctx: ProxyContext = {
    deps,
    settings: s,
    identifier: new Identifier(deps.sessions),
    policy,
    limiter: new ConnectionLimiter(limits),
    upstreams: new Upstreams(s, policy, trust),
    trust,
    tunnels: new WeakMap(),
    inner,
    stats: { requests: 0, inFlight: 0, tunnels: 0, intercepted: 0, injected: 0, denied: 0 },
    denials: new DenyFolder(denyWriter({ deps })),
    live: new LiveSockets(),
    callers: new WeakMap(),
    sockets: new Set(),
  };
  // The global cap and the budget of head-less connections are the limiter's (limits.ts Admission).
  outer.on('connection', (socket: Socket) => ctx.limiter.accepted(socket));
  outer.on('request', (req, res) => void onRequest(ctx, req, res, false));
  outer.on('upgrade', (req, socket, head) => void onUpgrade(ctx, req, socket, head, false));
  outer.on('connect', (req, socket, head) => onConnect(ctx, req, socket as Socket, head));
  inner.on('request', (req, res) => void onRequest(ctx, req, res, true));
  inner.on('upgrade', (req, socket, head) => void onUpgrade(ctx, req, socket, head, true));
  inner.on('connect', (_req, socket: Socket) => socket.destroy());

  let closing: Promise<void> | undefined;
  const fronts: TlsServer[] = [];
  return {
    server: outer,
    listen: (port, host) =>
      new Promise<AddressInfo>((resolve, reject) => {
        outer.once('error', reject);
        outer.listen(port, host, () => {
          outer.off('error', reject);
          resolve(outer.address() as AddressInfo);
        });
      }),
    listenTls: (port, host, tls) =>
      new Promise((resolve, reject) => {
        const front = createTlsServer(
          { ...tls, minVersion: 'TLSv1.2', ALPNProtocols: ['http/1.1'], handshakeTimeout: 10_000 },
          // Decrypted, the connection is the proxy's like any other (admission, limits, identity).
          (socket) => outer.emit('connection', socket),
        );
        front.on('tlsClientError', () => undefined);
        front.once('error', reject);
        front.listen(port, host, () => {
          front.off('error', reject);
          fronts.push(front);
          resolve({ address: front.address() as AddressInfo, server: front });
        });
      }),
    close: (graceMs = 5_000) => {
      for (const f of fronts) f.close();
      return (closing ??= drain(ctx, outer, graceMs));
    },
    liveSessions: () => ctx.live.sessionIds(),
    stats: (): ProxyStats => ({ ...ctx.stats }),
    closeSessions: (ids) => ctx.live.closeSessions(ids),
    closeProfile: (profile) => {
      ctx.upstreams.closeOwner(profile);
      return ctx.live.closeProfile(profile);
    },
    closeCredential: (profile, provider, connection) => {
      ctx.upstreams.closeOwner(profile, provider, connection);
      return ctx.live.closeCredential(profile, provider, connection);
    },
    checkDestination: async (a) => {
      policy.precheck(a);
      await policy.resolve(a);
    },
  };
}

/** Stop accepting, let in-flight requests finish (up to graceMs), then close everything. */
async function drain(ctx: ProxyContext, outer: Server, graceMs: number): Promise<void> {
  const closed = new Promise<void>((resolve) => outer.close(() => resolve()));
  outer.closeIdleConnections();
  ctx.inner.closeIdleConnections();
  const deadline = Date.now() + graceMs;
  while (ctx.stats.inFlight > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
  const gone = [...ctx.sockets]
    .filter((sock) => !sock.destroyed)
    .map((sock) => new Promise((r) => sock.once('close', r)));
  outer.closeAllConnections();
  ctx.inner.closeAllConnections();
  ctx.inner.close(() => undefined);
  for (const socket of ctx.sockets) socket.destroy();
  ctx.limiter.close();
  ctx.denials.flush();
  ctx.live.close();
  await Promise.all([...gone, ctx.upstreams.close()]);
  await closed;
}
