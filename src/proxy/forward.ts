import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex, Readable, Transform } from 'node:stream';
import { AppError } from '../errors.js';
import { track, type ProxyContext } from './context.js';
import { dial } from './dial.js';
import { auditEcho, type Prepared } from './pipeline.js';
import { ResponseRelay, type EchoGuard } from './relay.js';
import { SecretScanner } from './secret-scan.js';
import { byteScanner, frameScanner } from './ws-scan.js';

/**
 * The request body as undici reads it: each step takes everything the client socket has delivered
 * so far (read() joins the buffered chunks), so a large upload goes upstream in writes of up to
 * STREAM_HWM instead of one write per 16 KiB TLS record. While undici waits for the upstream to
 * drain, the client keeps sending until STREAM_HWM is buffered here.
 */
async function* bodyOf(req: IncomingMessage): AsyncGenerator<Buffer> {
  for await (const chunk of req) yield chunk as Buffer;
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
    ctx.upstreams.pool(p.authority, p.secure, p.owner).dispatch(
      {
        origin: p.origin,
        method: p.method,
        path: p.pathAndQuery,
        headers: p.headers,
        // undici accepts an async iterable body (core/request.js); its dispatch types omit it.
        body: p.hasBody ? (bodyOf(req) as unknown as Readable) : null,
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
  if (!p.needles) {
    if (head.length > 0) upstream.write(head);
    return splice(client, upstream, ctx.settings.idleTimeoutMs);
  }
  // Injected: the handshake answer is checked like any response head, and what follows it is scanned
  // as it passes (masked in place: frame lengths and Content-Length stay valid).
  let answer: Buffer;
  try {
    answer = await readHead(upstream, ctx.settings.upstreamHeadersTimeoutMs);
  } catch (e) {
    upstream.destroy();
    throw e;
  }
  const end = answer.indexOf('\r\n\r\n') + 4;
  const headText = answer.subarray(0, end).toString('latin1');
  const refuse = (message: string): AppError => {
    upstream.destroy();
    return new AppError('ERR_UPSTREAM_FAILED', message);
  };
  // The checks below read this head as CRLF lines of `name: value`; a client reads leniently (bare LF
  // line ends, `Name : value`, folded lines), and a head it would read differently could carry an
  // extension or a coding past them. Anything but a plain head is refused.
  const parsed = parseHead(headText);
  if (!parsed) throw refuse('the upstream answered the WebSocket handshake with a malformed head');
  if (new SecretScanner(p.needles).inText(headText)) {
    upstream.destroy();
    auditEcho(ctx, p.trace, 'header', 502);
    throw new AppError(
      'ERR_UPSTREAM_SECRET_ECHO',
      'the upstream answered with the injected credential in a header',
    );
  }
  const { status, fields } = parsed;
  // 1xx other than 101 (100, 103): the next head would pass unchecked; nothing was asked that needs them.
  if (status < 200 && status !== 101)
    throw refuse(`the upstream answered the WebSocket handshake with an interim ${status}`);
  if (status === 101 && fields.some(([name]) => name === 'sec-websocket-extensions'))
    throw refuse('the upstream negotiated a WebSocket extension the proxy did not offer and cannot inspect');
  // A refusal's body is scanned as raw bytes: chunk framing could split a secret and a content coding
  // could hide it, so only a plain body (Content-Length or read to close) is passed on.
  const coded = fields.some(
    ([name, value]) =>
      (name === 'transfer-encoding' || name === 'content-encoding') && value.toLowerCase() !== 'identity',
  );
  if (status !== 101 && coded)
    throw refuse(
      `the upstream refused the WebSocket handshake (${status}) with a chunked or encoded body the proxy cannot inspect`,
    );
  const length = status === 101 ? undefined : bodyLength(fields, status);
  if (length === 'invalid')
    throw refuse(`the upstream refused the WebSocket handshake (${status}) with an unclear Content-Length`);
  client.write(answer.subarray(0, end));
  if (status === 101) {
    // The credential is on this stream for as long as it lasts: removing the connection must end it.
    const { profile, provider, connection } = p.owner;
    if (provider !== undefined && connection !== undefined)
      ctx.live.bindCredential(client, profile, provider, connection);
    // Bytes the client sent behind its handshake go up only now: after a refusal they would be a
    // request on the credential's connection that no pipeline step saw.
    if (head.length > 0) upstream.write(head);
    // WebSocket frames follow, scanned frame by frame.
    const scan = frameScanner(p.needles, () => auditEcho(ctx, p.trace, 'frame', 101));
    if (answer.length > end) scan.write(answer.subarray(end));
    return splice(client, upstream, ctx.settings.idleTimeoutMs, scan);
  }
  // A refusal: its one body (scanned as bytes), then both connections end. Nothing after that body
  // reaches the client (a second response would escape the checks above), and nothing more from the
  // client goes up the connection that carried the credential.
  const scan = byteScanner(p.needles, () => auditEcho(ctx, p.trace, 'body', status));
  relayOne(client, upstream, answer.subarray(end), length, scan, ctx.settings.idleTimeoutMs);
}

const STATUS_LINE = /^HTTP\/1\.[01] (\d{3})(?: [^\r\n]*)?$/;
// RFC 9110 5.1 field-name token, the colon right after it; a value without CR, LF or NUL.
const FIELD_LINE = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+:[^\r\n\0]*$/;

/**
 * A response head of CRLF lines only: a status line, then `name: value` fields (no folding). Its
 * status and fields (lower-case name, value without surrounding SP/HTAB); undefined for any other head.
 */
function parseHead(headText: string): { status: number; fields: Array<[string, string]> } | undefined {
  const lines = headText.slice(0, -4).split('\r\n');
  const m = STATUS_LINE.exec(lines[0]!);
  if (!m) return undefined;
  const fields: Array<[string, string]> = [];
  for (const line of lines.slice(1)) {
    if (!FIELD_LINE.test(line)) return undefined;
    const colon = line.indexOf(':');
    fields.push([line.slice(0, colon).toLowerCase(), line.slice(colon + 1).replace(/^[ \t]+|[ \t]+$/g, '')]);
  }
  return { status: Number(m[1]), fields };
}

/** Body length of a refusal: Content-Length, 0 where none can follow, undefined = read to close. */
function bodyLength(fields: ReadonlyArray<[string, string]>, status: number): number | undefined | 'invalid' {
  if (status === 204 || status === 304) return 0;
  const values = fields.filter(([name]) => name === 'content-length').map(([, value]) => value);
  if (values.length === 0) return undefined;
  if (values.some((v) => v !== values[0]) || !/^\d{1,15}$/.test(values[0]!)) return 'invalid';
  return Number(values[0]);
}

/**
 * Passes one body from the upstream to the client through `scan`: `length` bytes (or up to the
 * upstream's close), then ends the client's side and closes the upstream. What the client sends is
 * read and dropped; nothing of it goes upstream.
 */
export function relayOne(
  client: Duplex,
  upstream: Socket,
  first: Buffer,
  length: number | undefined,
  scan: Transform,
  idleMs: number,
): void {
  let left = length ?? Infinity;
  const fail = (): void => {
    client.destroy();
    upstream.destroy();
  };
  let finished = false;
  const finish = (): void => {
    if (finished) return;
    finished = true;
    upstream.destroy();
    scan.end();
  };
  scan.on('error', fail).pipe(client);
  // Once the body is out (the client's side ended and flushed) the connection is done: a client that
  // keeps its own side open must not hold the socket. What it still sends is read and dropped.
  client.once('finish', () => client.destroy());
  client.on('error', fail).on('close', () => upstream.destroy());
  client.on('data', () => undefined);
  if (idleMs > 0 && 'setTimeout' in client && typeof client.setTimeout === 'function')
    (client as Socket).setTimeout(idleMs, fail);
  const take = (chunk: Buffer): void => {
    if (left <= 0) return;
    const part = chunk.length > left ? chunk.subarray(0, left) : chunk;
    left -= part.length;
    if (!scan.write(part) && left > 0) {
      upstream.pause();
      scan.once('drain', () => upstream.resume());
    }
    if (left <= 0) finish();
  };
  upstream.on('error', fail).on('data', take);
  // The upstream closing ends a read-to-close body; before a declared length is reached it is a cut.
  upstream.on('close', () => (left === Infinity ? scan.end() : left > 0 ? fail() : undefined));
  if (idleMs > 0) upstream.setTimeout(idleMs, fail);
  if (client.destroyed || upstream.destroyed) return fail();
  if (first.length > 0) take(first);
  if (left <= 0) return finish();
  upstream.resume();
}

const MAX_HEAD = 64 * 1024;

/** Bytes from the socket up to and including the end of the response head (and whatever came with it). */
function readHead(socket: Socket, timeoutMs: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    let buf = Buffer.alloc(0);
    const done = (err?: Error): void => {
      clearTimeout(timer);
      socket.off('data', onData).off('error', onFail).off('close', onClose);
      socket.pause();
      if (err) reject(err);
      else resolve(buf);
    };
    const onData = (c: Buffer): void => {
      buf = Buffer.concat([buf, c]);
      const end = buf.indexOf('\r\n\r\n');
      const bareLf = buf.indexOf('\n\n'); // a blank line ended by bare LFs: a head read differently
      if (bareLf >= 0 && (end < 0 || bareLf < end))
        done(
          new AppError(
            'ERR_UPSTREAM_FAILED',
            'the upstream answered the WebSocket handshake with a malformed head',
          ),
        );
      else if (end >= 0) done();
      else if (buf.length > MAX_HEAD)
        done(new AppError('ERR_UPSTREAM_FAILED', 'the upstream handshake answer is too large'));
    };
    const onFail = (e: Error): void => done(e);
    const onClose = (): void =>
      done(new AppError('ERR_UPSTREAM_FAILED', 'the upstream closed during the handshake'));
    const timer = setTimeout(
      () => done(new AppError('ERR_UPSTREAM_TIMEOUT', 'the upstream did not answer the handshake in time')),
      timeoutMs || 2 ** 31 - 1,
    );
    socket.on('data', onData).once('error', onFail).once('close', onClose);
  });
}

/**
 * Pipes two sockets into each other; an error, close or idle timeout on either ends both. With `scan`,
 * what comes from the upstream goes through it on its way to the client.
 */
export function splice(a: Duplex, b: Socket, idleMs: number, scan?: Transform): void {
  const end = (): void => {
    a.destroy();
    b.destroy();
  };
  a.on('error', end).on('close', end);
  b.on('error', end).on('close', end);
  // One side may have gone while the other was dialled or the handshake read: its 'close' is past.
  if (a.destroyed || b.destroyed) return end();
  if (idleMs > 0) {
    b.setTimeout(idleMs, end);
    if ('setTimeout' in a && typeof a.setTimeout === 'function') (a as Socket).setTimeout(idleMs, end);
  }
  a.pipe(b);
  if (scan) b.pipe(scan.on('error', end)).pipe(a);
  else b.pipe(a);
}
