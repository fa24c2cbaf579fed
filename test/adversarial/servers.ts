import {
  createServer as createHttpServer,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import { createHash } from 'node:crypto';
import type { AddressInfo, Socket } from 'node:net';
import { brotliCompressSync, deflateRawSync, deflateSync, gzipSync } from 'node:zlib';
import type { ServerCert } from '../helpers/test-ca.js';

/**
 * The upstreams of the adversarial suite. Every server records every byte it received (decrypted for
 * TLS) so a test can search it for a canary. The ORIGIN's TLS port is the one place a secret may
 * legitimately arrive; its cleartext port and every DECOY must never see one.
 */
export interface Recorder {
  readonly bytes: Buffer[];
  text(): string;
}

function recorder(): Recorder {
  const bytes: Buffer[] = [];
  return { bytes, text: () => Buffer.concat(bytes).toString('latin1') };
}

export interface Listener {
  readonly port: number;
  readonly seen: Recorder;
  /** For swapping the certificate after start (a leaf of the daemon's own CA). */
  readonly server: Server | HttpsServer;
}

export interface ServerSet {
  readonly http: Listener;
  readonly https: Listener;
  close(): Promise<void>;
}

function headerValues(req: IncomingMessage, name: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < req.rawHeaders.length; i += 2)
    if (req.rawHeaders[i]!.toLowerCase() === name) out.push(req.rawHeaders[i + 1]!);
  return out;
}

/** What the request carried that a careless upstream would echo: its credential headers and URL. */
function echoOf(req: IncomingMessage): string {
  return JSON.stringify({
    url: req.url,
    authorization: headerValues(req, 'authorization'),
    apiKey: headerValues(req, 'x-api-key'),
    acceptEncoding: headerValues(req, 'accept-encoding'),
  });
}

/** The part after the auth scheme ("Bearer X" -> X), or the whole value. */
function credentialOf(req: IncomingMessage): string {
  const v = headerValues(req, 'authorization')[0] ?? headerValues(req, 'x-api-key')[0] ?? req.url ?? '';
  return v.slice(v.lastIndexOf(' ') + 1);
}

/** The hostile-but-allowed origin: echoes what it received in every way a real server might. */
function originRoute(req: IncomingMessage, res: ServerResponse, decoy: string): void {
  const url = new URL(req.url ?? '/', 'http://x');
  const p = url.pathname;
  const json = { 'content-type': 'application/json' };
  if (p === '/echo/body') return void res.writeHead(200, json).end(echoOf(req));
  if (p === '/echo/header')
    return void res.writeHead(200, { ...json, 'x-echo': credentialOf(req) }).end('{}');
  if (p === '/echo/header-full')
    return void res.writeHead(200, { 'x-echo': headerValues(req, 'authorization')[0] ?? '' }).end('{}');
  if (p === '/echo/cookie')
    return void res.writeHead(200, { 'set-cookie': [`a=1`, `s=${credentialOf(req)}`] }).end('{}');
  if (p === '/echo/location')
    return void res.writeHead(302, { location: `https://${decoy}/steal?k=${credentialOf(req)}` }).end();
  if (p === '/echo/split') {
    // The credential split across two writes (two chunks) with a pause between them.
    const c = credentialOf(req);
    const cut = Number(url.searchParams.get('cut') ?? Math.floor(c.length / 2));
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.write(`before ${c.slice(0, cut)}`);
    setTimeout(() => res.end(`${c.slice(cut)} after`), 40);
    return;
  }
  if (p === '/echo/bytes') {
    // One byte per chunk: the worst case for a scanner without a carry-over window.
    const body = Buffer.from(`<<${credentialOf(req)}>>`);
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': body.length });
    let i = 0;
    const next = (): void => {
      if (i >= body.length) return void res.end();
      res.write(body.subarray(i, ++i));
      setTimeout(next, 2);
    };
    next();
    return;
  }
  if (p === '/echo/sse') {
    const c = credentialOf(req);
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    res.write(`data: one ${c.slice(0, 5)}`);
    setTimeout(() => res.write(`${c.slice(5)}\n\n`), 30);
    setTimeout(() => res.end('data: done\n\n'), 60);
    return;
  }
  if (p === '/echo/b64') {
    const c = Buffer.from(credentialOf(req));
    const forms = [
      c.toString('base64'),
      c.toString('base64url'),
      Buffer.from(`Bearer ${c.toString()}`).toString('base64'), // shifted by the text before it
      Buffer.from(`x${c.toString()}\n`).toString('base64url'),
      c.toString('hex'),
      c.toString('hex').toUpperCase(),
      encodeURIComponent(c.toString()),
    ];
    return void res.writeHead(200, { 'content-type': 'text/plain' }).end(forms.join('\n'));
  }
  const enc = /^\/echo\/(gzip|br|deflate|zstd|gzip-gzip)$/.exec(p)?.[1];
  if (enc) {
    const body = Buffer.from(echoOf(req));
    const packed =
      enc === 'gzip'
        ? gzipSync(body)
        : enc === 'br'
          ? brotliCompressSync(body)
          : enc === 'deflate'
            ? deflateSync(body)
            : enc === 'gzip-gzip'
              ? gzipSync(gzipSync(body))
              : body;
    const ce = enc === 'gzip-gzip' ? 'gzip, gzip' : enc;
    return void res
      .writeHead(200, { ...json, 'content-encoding': ce, 'content-length': packed.length })
      .end(packed);
  }
  if (p === '/echo/gzip-hidden' || p === '/echo/gzip-hidden-case') {
    // Content-Encoding named in Connection: a proxy that removes hop-by-hop names first would pass
    // the gzip bytes on without their coding header, unscanned (issue 18 item 4).
    const packed = gzipSync(Buffer.from(echoOf(req)));
    return void res
      .writeHead(200, {
        ...json,
        'content-encoding': 'gzip',
        connection: p.endsWith('case') ? 'keep-alive, Content-Encoding' : 'content-encoding',
        'content-length': packed.length,
      })
      .end(packed);
  }
  if (p === '/echo/te-gzip') {
    // A transfer coding besides chunked: undici passes the gzip bytes through as the body.
    return void res
      .writeHead(200, { ...json, 'transfer-encoding': 'gzip, chunked' })
      .end(gzipSync(Buffer.from(echoOf(req))));
  }
  if (p === '/inspect') {
    // What arrived, without echoing a credential: counts and shapes only.
    const names = req.rawHeaders.filter((_, i) => i % 2 === 0).map((n) => n.toLowerCase());
    const auth = headerValues(req, 'authorization');
    return void res.writeHead(200, json).end(
      JSON.stringify({
        authorization: auth.length,
        callerCopy: [...auth, ...headerValues(req, 'x-api-key')].some((v) => /caller|evil/i.test(v)),
        injected:
          auth.filter((v) => /^(Bearer|Basic) /.test(v)).length + headerValues(req, 'x-api-key').length,
        scheme: auth.map((v) => v.split(' ')[0]),
        apiKey: headerValues(req, 'x-api-key').length,
        authsome: names.filter((n) => n.startsWith('x-authsome-') || n.startsWith('proxy-')).length,
        host: headerValues(req, 'host'),
        acceptEncoding: headerValues(req, 'accept-encoding').length,
        range: ['range', 'if-range', 'request-range'].reduce((n, h) => n + headerValues(req, h).length, 0),
        keyParams: new URL(req.url ?? '/', 'http://x').searchParams.getAll('key').length,
      }),
    );
  }
  if (p === '/redirect') return void res.writeHead(302, { location: `https://${decoy}/landing` }).end();
  res.writeHead(200, { ...json, 'x-upstream': 'origin' }).end(JSON.stringify({ ok: true, path: p }));
}

function listen(
  server: Server | HttpsServer,
  seen: Recorder,
  sockets: Set<Socket>,
  secure: boolean,
): Promise<number> {
  const tap = (s: Socket): void => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('data', (d: Buffer) => seen.bytes.push(Buffer.from(d)));
  };
  // For TLS, 'secureConnection' gives the decrypted socket; for cleartext, 'connection' does.
  server.on(secure ? 'secureConnection' : 'connection', tap);
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)),
  );
}

async function serverSet(
  cert: ServerCert,
  route: (req: IncomingMessage, res: ServerResponse) => void,
): Promise<ServerSet> {
  const sockets = new Set<Socket>();
  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    req.resume();
    req.on('end', () => route(req, res));
  };
  // Heads up to twice the proxy's limit: a 431 seen by the caller must be the proxy's own.
  const maxHeaderSize = 65_536;
  const http = createHttpServer({ maxHeaderSize }, handler);
  const https = createHttpsServer({ cert: cert.certPem, key: cert.keyPem, maxHeaderSize }, handler);
  const httpSeen = recorder();
  const httpsSeen = recorder();
  const [hp, sp] = await Promise.all([
    listen(http, httpSeen, sockets, false),
    listen(https, httpsSeen, sockets, true),
  ]);
  return {
    http: { port: hp, seen: httpSeen, server: http },
    https: { port: sp, seen: httpsSeen, server: https },
    async close() {
      for (const s of sockets) s.destroy();
      await Promise.all([new Promise((r) => http.close(r)), new Promise((r) => https.close(r))]);
    },
  };
}

/** What the origin received on a /ws/refuse-late connection after the handshake head. */
export const wsAfterHandshake: string[] = [];

export async function startOrigin(cert: ServerCert, decoyHost: string): Promise<ServerSet> {
  const set = await serverSet(cert, (req, res) => originRoute(req, res, decoyHost));
  // WebSocket handshakes: /ws/echo-header puts the credential in the 101 answer; /ws/echo-frame sends
  // it in the first frame after a plain 101; /ws/refuse-echo answers 401 with it in the body; frames
  // the client sends are echoed back byte for byte.
  for (const l of [set.http, set.https]) {
    l.server.on('upgrade', (req: IncomingMessage, socket: Socket) => {
      const key = headerValues(req, 'sec-websocket-key')[0] ?? '';
      const accept = createHash('sha1').update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');
      if (req.url === '/ws/refuse-chunked') {
        // A refusal whose chunked body splits the credential across two chunks.
        const c = credentialOf(req);
        const [a, b] = [`{"got":"${c.slice(0, 6)}`, `${c.slice(6)}"}`];
        const chunk = (t: string): string => `${t.length.toString(16)}\r\n${t}\r\n`;
        socket.end(
          `HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n${chunk(a)}${chunk(b)}0\r\n\r\n`,
        );
        return;
      }
      if (req.url === '/ws/refuse-then-more') {
        // An empty refusal, then a second, chunked response splitting the credential: it must not pass.
        const c = credentialOf(req);
        const chunk = (t: string): string => `${t.length.toString(16)}\r\n${t}\r\n`;
        socket.write('HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n');
        setTimeout(() => {
          if (socket.destroyed) return;
          socket.end(
            `HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n${chunk(`{"got":"${c.slice(0, 6)}`)}${chunk(`${c.slice(6)}"}`)}0\r\n\r\n`,
          );
        }, 50);
        return;
      }
      if (req.url === '/ws/lf-head' || req.url === '/ws/space-colon') {
        // Heads a lenient client reads differently from the proxy's CRLF reading: bare LF line ends,
        // or a space before the colon; both name an extension, then a compressed (RSV1) frame follows.
        const eol = req.url === '/ws/lf-head' ? '\n' : '\r\n';
        socket.write(
          [
            'HTTP/1.1 101 Switching Protocols',
            'Upgrade: websocket',
            'Connection: Upgrade',
            `Sec-WebSocket-Accept: ${accept}`,
            'Sec-WebSocket-Extensions : permessage-deflate',
            '',
            '',
          ].join(eol),
        );
        const payload = deflateRawSync(Buffer.from(credentialOf(req)));
        socket.write(Buffer.concat([Buffer.from([0xc1, payload.length]), payload]));
        return;
      }
      if (req.url === '/ws/refuse-late') {
        // A refusal that takes a moment: whatever the client sent behind its handshake arrives first.
        socket.on('data', (d: Buffer) => wsAfterHandshake.push(d.toString('latin1')));
        setTimeout(() => socket.end('HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n'), 150);
        return;
      }
      if (req.url === '/ws/interim') {
        // 100 Continue first, then a 101 with an extension nobody offered.
        socket.write('HTTP/1.1 100 Continue\r\n\r\n');
        socket.write(
          `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\nSec-WebSocket-Extensions: permessage-deflate\r\n\r\n`,
        );
        return;
      }
      if (req.url === '/ws/refuse-echo') {
        // A refused handshake whose body quotes the credential (an error page echoing the request).
        const body = JSON.stringify({ error: 'unauthorized', got: credentialOf(req) });
        socket.end(
          `HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`,
        );
        return;
      }
      const echo =
        req.url === '/ws/echo-header'
          ? `X-Echo: ${credentialOf(req)}\r\n`
          : req.url === '/ws/force-deflate' // negotiates an extension nobody offered
            ? 'Sec-WebSocket-Extensions: permessage-deflate\r\n'
            : '';
      socket.write(
        `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n${echo}\r\n`,
      );
      if (req.url === '/ws/echo-frame') {
        // One text frame quoting the credential and the extensions offer it received.
        const ext = headerValues(req, 'sec-websocket-extensions').join(', ');
        socket.write(serverFrame(JSON.stringify({ auth: credentialOf(req), ext })));
      }
      socket.on('data', (d: Buffer) => socket.write(d));
      socket.on('error', () => socket.destroy());
    });
  }
  return set;
}

/** An unmasked server-to-client text frame (RFC 6455 section 5.2), payload under 64 KiB. */
export function serverFrame(text: string): Buffer {
  const payload = Buffer.from(text, 'utf8');
  const head =
    payload.length < 126
      ? Buffer.from([0x81, payload.length])
      : Buffer.from([0x81, 126, payload.length >> 8, payload.length & 0xff]);
  return Buffer.concat([head, payload]);
}

/** A host that must never receive a secret: answers everything with a bland 200. */
export function startDecoy(cert: ServerCert): Promise<ServerSet> {
  return serverSet(
    cert,
    (_req, res) => void res.writeHead(200, { 'content-type': 'text/plain' }).end('decoy'),
  );
}

/** One TLS listener with a given certificate (bad-certificate upstreams). */
export async function startTlsServer(cert: ServerCert): Promise<Listener & { close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const seen = recorder();
  const server = createHttpsServer({ cert: cert.certPem, key: cert.keyPem }, (req, res) => {
    req.resume();
    res.writeHead(200).end('bad-tls upstream answered');
  });
  const port = await listen(server, seen, sockets, true);
  return {
    port,
    seen,
    server,
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}
