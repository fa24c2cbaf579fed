import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { track, type ProxyContext } from './context.js';
import { dial } from './dial.js';
import { auditEcho, type Prepared } from './pipeline.js';
import { ResponseRelay, type EchoGuard } from './relay.js';

function hasBody(req: IncomingMessage): boolean {
  const cl = req.headers['content-length'];
  if (cl !== undefined) return cl !== '0';
  return req.headers['transfer-encoding'] !== undefined;
}

/**
 * Sends a prepared request through the destination's keep-alive pool and streams the answer back.
 * Bodies are streamed both ways with backpressure (undici reads `req` as it drains; the relay
 * pauses the upstream when the client is slow). Redirects are returned, never followed.
 */
export function forwardHttp(
  ctx: ProxyContext,
  p: Prepared,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  const needles = p.needles;
  const guard: EchoGuard | undefined = needles && {
    needles,
    onEcho: (where) => auditEcho(ctx, p.trace, where, where === 'header' ? 502 : res.statusCode),
  };
  return new Promise((resolve, reject) => {
    const relay = new ResponseRelay(res, p.requestId, (err) => (err ? reject(err) : resolve()), guard);
    ctx.upstreams.pool(p.authority, p.secure).dispatch(
      {
        origin: p.origin,
        method: p.method,
        path: p.pathAndQuery,
        headers: p.headers,
        body: hasBody(req) ? req : null,
      },
      relay,
    );
  });
}

/**
 * WebSocket (RFC 6455) through a raw upstream connection: the handshake is written by hand with the
 * prepared (injected) headers, then bytes are piped both ways; either side failing closes both.
 */
export async function forwardUpgrade(
  ctx: ProxyContext,
  p: Prepared,
  client: Duplex,
  head: Buffer,
): Promise<void> {
  const addr = await ctx.policy.resolve(p.authority);
  const upstream = await dial(addr, {
    timeoutMs: ctx.settings.upstreamConnectTimeoutMs,
    ...(p.secure ? { tls: { servername: p.authority.host, context: ctx.trust } } : {}),
  });
  track(ctx, upstream);
  let text = `${p.method} ${p.pathAndQuery} HTTP/1.1\r\n`;
  for (let i = 0; i < p.headers.length; i += 2) text += `${p.headers[i]}: ${p.headers[i + 1]}\r\n`;
  text += 'connection: Upgrade\r\nupgrade: websocket\r\n\r\n';
  upstream.write(text);
  if (head.length > 0) upstream.write(head);
  splice(client, upstream, ctx.settings.idleTimeoutMs);
}

/** Pipes two sockets into each other; an error, close or idle timeout on either ends both. */
export function splice(a: Duplex, b: Socket, idleMs: number): void {
  const end = (): void => {
    a.destroy();
    b.destroy();
  };
  a.on('error', end).on('close', end);
  b.on('error', end).on('close', end);
  if (idleMs > 0) {
    b.setTimeout(idleMs, end);
    if ('setTimeout' in a && typeof a.setTimeout === 'function') (a as Socket).setTimeout(idleMs, end);
  }
  a.pipe(b);
  b.pipe(a);
}
