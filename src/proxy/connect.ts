import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import { TLSSocket, createSecureContext, type SecureContext, type TLSSocketOptions } from 'node:tls';
import { AppError, isAppError } from '../errors.js';
import { track, type ProxyContext } from './context.js';
import { parseAuthority, type Authority } from './destination.js';
import { dial } from './dial.js';
import { splice } from './forward.js';
import { checkRequestHead, requestLineBytes } from './headers.js';
import type { CachedIdentity } from './identify.js';
import { STREAM_HWM } from './limits.js';
import { auditDeny, newTrace, type Trace } from './pipeline.js';
import { writeRawError } from './respond.js';
import { prefetchCaller } from './policy-step.js';

const ESTABLISHED = 'HTTP/1.1 200 Connection Established\r\n\r\n';

let bare: SecureContext | undefined;
function noCertificate(): SecureContext {
  return (bare ??= createSecureContext({ minVersion: 'TLSv1.2' }));
}

/**
 * CONNECT (RFC 9110 9.3.6): identity is decided here, once per tunnel. Hosts a provider covers are
 * intercepted; anything else is a plain TCP tunnel (or 403 in strict mode).
 */
export function onConnect(ctx: ProxyContext, req: IncomingMessage, socket: Socket, head: Buffer): void {
  ctx.limiter.headed(socket);
  socket.on('error', () => socket.destroy());
  track(ctx, socket);
  const t = newTrace('CONNECT');
  void (async () => {
    try {
      const s = ctx.settings;
      checkRequestHead(
        req.rawHeaders,
        s.maxHeaderCount,
        s.maxHeaderSize,
        requestLineBytes(req.method, req.url),
      );
      const authority = parseAuthority(req.url ?? '');
      t.host = authority.host;
      const identity = await ctx.identifier.verify(req.rawHeaders);
      t.profile = identity.session.profile;
      t.session = identity.session.id;
      t.probe = identity.session.probe === true;
      ctx.limiter.claim(socket, t.profile);
      ctx.live.bindSession(socket, identity.session);
      prefetchCaller(ctx, socket, t.profile);
      ctx.policy.precheck(authority);
      if (authority.kind === 'name' && ctx.deps.providers.covers(authority.host, authority.port)) {
        await intercept(ctx, socket, head, authority, identity);
      } else if (ctx.settings.strict) {
        throw new AppError(
          'ERR_PROXY_DESTINATION_DENIED',
          'strict mode: only hosts a provider covers are proxied',
        );
      } else {
        await tunnel(ctx, socket, head, authority);
      }
    } catch (e) {
      const err = writeRawError(socket, e, t.requestId);
      if (t.profile === undefined) await markProbe(ctx, req.rawHeaders, t);
      auditDeny(ctx, t, err, socket.remoteAddress);
    }
  })();
}

/**
 * `authsome doctor` checks that a CONNECT without a session token gets 407. Such a request has no
 * identity, so the doctor names its probe session in X-Authsome-Probe (the Proxy-Authorization value
 * it would send): when that is a live probe session, the refusal is audited as that profile's
 * doctor.probe. The header changes the audit record only, never the answer or the identity.
 */
async function markProbe(ctx: ProxyContext, rawHeaders: readonly string[], t: Trace): Promise<void> {
  const marks = rawHeaders.filter(
    (_, i) => i % 2 === 1 && rawHeaders[i - 1]!.toLowerCase() === 'x-authsome-probe',
  );
  if (marks.length !== 1) return;
  try {
    const { session } = await ctx.identifier.verify(['proxy-authorization', marks[0]!]);
    if (session.probe === true) {
      t.profile = session.profile;
      t.session = session.id;
      t.probe = true;
    }
  } catch {
    // not a probe session: an ordinary refusal
  }
}

async function leafContext(ctx: ProxyContext, host: string): Promise<SecureContext> {
  try {
    return await ctx.deps.leaves.secureContextFor(host);
  } catch (e) {
    if (isAppError(e)) throw e;
    throw new AppError(
      'ERR_CA_UNAVAILABLE',
      'cannot issue a certificate for this host',
      'check the local CA with `authsome doctor`',
      { cause: e },
    );
  }
}

/**
 * TLS interception: the leaf names exactly the CONNECT host, and the handshake only succeeds when
 * the client's SNI names it too (a missing SNI finds no certificate and fails). The decrypted socket
 * goes to the internal HTTP server, which checks every inner Host against the same authority.
 */
async function intercept(
  ctx: ProxyContext,
  socket: Socket,
  head: Buffer,
  authority: Authority,
  identity: CachedIdentity,
): Promise<void> {
  ctx.upstreams.preconnect(authority, identity.session.profile);
  const leaf = await leafContext(ctx, authority.host);
  socket.write(ESTABLISHED);
  if (head.length > 0) socket.unshift(head);
  socket.setTimeout(0);
  const options: TLSSocketOptions & { highWaterMark: number } = {
    isServer: true,
    // Node passes it to the stream (both directions); @types/node does not list it here.
    highWaterMark: STREAM_HWM,
    // A shared context without a certificate: without one, Node builds a fresh default context per
    // tunnel (~0.6 ms). It also keeps a ClientHello without SNI failing, as the SPEC requires.
    secureContext: noCertificate(),
    ALPNProtocols: ['http/1.1'],
    SNICallback: (servername, cb) => {
      const name = servername.toLowerCase().replace(/\.$/, '');
      if (name === authority.host) cb(null, leaf);
      else cb(new Error('SNI does not name the CONNECT destination'), undefined);
    },
  };
  const tlsSocket = new TLSSocket(socket, options);
  ctx.tunnels.set(tlsSocket, { authority, client: socket, identity });
  ctx.stats.intercepted++;
  tlsSocket.once('close', () => {
    ctx.stats.intercepted--;
    socket.destroy();
  });
  tlsSocket.on('error', () => tlsSocket.destroy());
  track(ctx, tlsSocket);
  ctx.inner.emit('connection', tlsSocket);
}

/** A plain tunnel: no interception, the client verifies the upstream's own certificate. */
async function tunnel(ctx: ProxyContext, socket: Socket, head: Buffer, authority: Authority): Promise<void> {
  const addr = await ctx.policy.resolve(authority);
  const upstream = await dial(addr, { timeoutMs: ctx.settings.upstreamConnectTimeoutMs });
  track(ctx, upstream);
  if (socket.destroyed) {
    upstream.destroy();
    return;
  }
  ctx.stats.tunnels++;
  upstream.once('close', () => ctx.stats.tunnels--);
  socket.write(ESTABLISHED);
  if (head.length > 0) upstream.write(head);
  splice(socket, upstream, ctx.settings.idleTimeoutMs);
}
