import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { AppError } from '../errors.js';
import { track, type ProxyContext, type Tunnel } from './context.js';
import { forwardHttp, forwardUpgrade } from './forward.js';
import { rawValues } from './headers.js';
import { auditAfterInject, auditDeny, newTrace, prepare, type Prepared } from './pipeline.js';
import { sendError, writeRawError } from './respond.js';

function tunnelOf(ctx: ProxyContext, req: IncomingMessage, inner: boolean): Tunnel | undefined {
  if (!inner) return undefined;
  const t = ctx.tunnels.get(req.socket);
  // A socket reaches the inner server only through intercept(); anything else is a bug.
  if (!t) throw new TypeError('inner request without a tunnel');
  return t;
}

/** One HTTP request, outside (absolute-form) or inside an intercepted tunnel. */
export async function onRequest(
  ctx: ProxyContext,
  req: IncomingMessage,
  res: ServerResponse,
  inner: boolean,
): Promise<void> {
  const t = newTrace(req.method);
  if (!inner) ctx.limiter.headed(req.socket);
  ctx.stats.requests++;
  ctx.stats.inFlight++;
  let prepared: Prepared | undefined;
  try {
    prepared = await prepare(ctx, req, tunnelOf(ctx, req, inner), t);
    await forwardHttp(ctx, prepared, req, res);
  } catch (e) {
    const err = sendError(res, e, t.requestId);
    if (!prepared) auditDeny(ctx, t, err, req.socket.remoteAddress);
    else if (prepared.injected) auditAfterInject(ctx, t, err);
  } finally {
    ctx.stats.inFlight--;
  }
}

/** WebSocket handshakes; any other Upgrade (h2c...) is refused rather than half-proxied. */
export async function onUpgrade(
  ctx: ProxyContext,
  req: IncomingMessage,
  socket: Duplex,
  head: Buffer,
  inner: boolean,
): Promise<void> {
  const t = newTrace(req.method);
  if (!inner) ctx.limiter.headed(socket as Socket);
  socket.on('error', () => socket.destroy());
  // Upgraded sockets leave the HTTP server's bookkeeping; track them for close().
  track(ctx, socket as Socket);
  ctx.stats.requests++;
  ctx.stats.inFlight++;
  let prepared: Prepared | undefined;
  try {
    const up = rawValues(req.rawHeaders, 'upgrade');
    if (up.length !== 1 || up[0]!.trim().toLowerCase() !== 'websocket' || req.method !== 'GET') {
      throw new AppError(
        'ERR_PROXY_BAD_REQUEST',
        'only WebSocket upgrades (GET, Upgrade: websocket) are proxied',
      );
    }
    prepared = await prepare(ctx, req, tunnelOf(ctx, req, inner), t);
    await forwardUpgrade(ctx, prepared, socket, head);
  } catch (e) {
    const err = writeRawError(socket, e, t.requestId);
    if (!prepared) auditDeny(ctx, t, err, req.socket.remoteAddress);
    else if (prepared.injected) auditAfterInject(ctx, t, err);
  } finally {
    ctx.stats.inFlight--;
  }
}

/** Parse errors, oversized headers, header timeouts: a proper answer, then close. */
export function onClientError(err: Error & { code?: string }, socket: Duplex): void {
  if (err.code === 'ECONNRESET' || !socket.writable || (socket as Socket).destroyed) {
    socket.destroy();
    return;
  }
  // A TLS handshake failure on an intercepted socket: nothing readable can be sent back.
  if ('encrypted' in socket && !(socket as { _secureEstablished?: boolean })._secureEstablished) {
    socket.destroy();
    return;
  }
  const e =
    err.code === 'HPE_HEADER_OVERFLOW'
      ? new AppError('ERR_PROXY_HEADERS_TOO_LARGE', 'request headers are too large')
      : err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? new AppError('ERR_PROXY_BAD_REQUEST', 'the request took too long to arrive')
        : new AppError('ERR_PROXY_BAD_REQUEST', 'malformed HTTP request');
  writeRawError(socket, e);
}
