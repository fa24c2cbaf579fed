import {
  createServer as createHttpServer,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { createHash } from 'node:crypto';
import type { AddressInfo, Socket } from 'node:net';
import { WebSocketServer } from 'ws';
import type { ServerCert } from './test-ca.js';

/** What the echo upstream received: recorded on arrival, body stats filled in when it ends. */
export interface Received {
  readonly seq: number;
  readonly secure: boolean;
  readonly method: string;
  readonly url: string;
  readonly rawHeaders: string[];
  bodyLength: number;
  bodySha256: string;
  readonly websocket: boolean;
  /** The client-side port of the TCP connection that carried it: equal ports = one connection. */
  readonly remotePort: number | undefined;
}

export interface Upstream {
  readonly httpPort: number;
  readonly httpsPort: number;
  readonly received: Received[];
  /** TCP connections open to the upstream right now (both ports). */
  openConnections(): number;
  /** Bytes of /stream bodies the upstream's socket has accepted so far (it writes only when not full). */
  readonly streamed: { bytes: number };
  /** Every raw byte any client sent (for canary scans of what reached upstream). */
  close(): Promise<void>;
}

/** Deterministic bytes for the large-body endpoint, so both ends can hash them. */
export function patternBytes(n: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + 7) & 0xff;
  return b;
}

/** `order` is shared with the fake audit sink: each side pushes a label when it sees a request. */
export async function startUpstream(opts: { cert: ServerCert; order?: string[] }): Promise<Upstream> {
  const received: Received[] = [];
  const streamed = { bytes: 0 };
  /** Accepted TCP connections (a TLS connection is also in `sockets` a second time, as its TLSSocket). */
  const tcp = new Set<Socket>();
  let seq = 0;
  const sockets = new Set<Socket>();

  const handler = (secure: boolean) => (req: IncomingMessage, res: ServerResponse) => {
    const rec: Received = {
      seq: seq++,
      secure,
      method: req.method ?? '',
      url: req.url ?? '',
      rawHeaders: [...req.rawHeaders],
      bodyLength: 0,
      bodySha256: '',
      websocket: false,
      remotePort: req.socket.remotePort,
    };
    received.push(rec);
    opts.order?.push(`upstream:${rec.url}`);
    const hash = createHash('sha256');
    req.on('data', (c: Buffer) => {
      rec.bodyLength += c.length;
      hash.update(c);
    });
    req.on('end', () => {
      rec.bodySha256 = hash.digest('hex');
      route(req, res, rec);
    });
  };

  const route = (req: IncomingMessage, res: ServerResponse, rec: Received): void => {
    const url = new URL(req.url ?? '/', 'http://x');
    if (url.pathname === '/sse') {
      const n = Number(url.searchParams.get('n') ?? 3);
      const every = Number(url.searchParams.get('interval') ?? 150);
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
      let i = 0;
      const timer = setInterval(() => {
        res.write(`data: event ${i}\n\n`);
        if (++i >= n) {
          clearInterval(timer);
          res.end();
        }
      }, every);
      res.on('close', () => clearInterval(timer));
      return;
    }
    if (url.pathname === '/large') {
      const body = patternBytes(Number(url.searchParams.get('bytes') ?? 1024));
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': body.length });
      res.end(body);
      return;
    }
    if (url.pathname === '/stream') {
      // 64 KiB chunks, written only while the socket takes them: how far it gets shows backpressure.
      let left = Number(url.searchParams.get('bytes') ?? 1024);
      const chunk = patternBytes(64 * 1024);
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': left });
      const pump = (): void => {
        while (left > 0) {
          const piece = chunk.subarray(0, Math.min(left, chunk.length));
          left -= piece.length;
          streamed.bytes += piece.length;
          if (left === 0) res.end(piece);
          else if (!res.write(piece)) return void res.once('drain', pump);
        }
      };
      pump();
      return;
    }
    if (url.pathname === '/hang') return; // never answers (timeouts); closed with the server
    if (url.pathname === '/redirect') {
      res.writeHead(302, { location: 'https://elsewhere.test/landing' });
      res.end();
      return;
    }
    if (url.pathname.startsWith('/status/')) {
      res.writeHead(Number(url.pathname.slice(8)));
      res.end();
      return;
    }
    const body = JSON.stringify({
      ok: true,
      method: rec.method,
      path: url.pathname,
      bodyLength: rec.bodyLength,
      bodySha256: rec.bodySha256,
    });
    res.writeHead(200, {
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(body),
      'x-upstream': secure(rec),
    });
    res.end(body);
  };
  const secure = (rec: Received): string => (rec.secure ? 'https' : 'http');

  const wss = new WebSocketServer({ noServer: true });
  wss.on('connection', (ws) => ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary })));
  const onUpgrade = (isSecure: boolean) => (req: IncomingMessage, socket: Socket, head: Buffer) => {
    received.push({
      seq: seq++,
      secure: isSecure,
      method: req.method ?? '',
      url: req.url ?? '',
      rawHeaders: [...req.rawHeaders],
      bodyLength: 0,
      bodySha256: '',
      websocket: true,
      remotePort: socket.remotePort,
    });
    opts.order?.push(`upstream:${req.url}`);
    wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req));
  };

  const http = createHttpServer(handler(false));
  const https = createHttpsServer({ cert: opts.cert.certPem, key: opts.cert.keyPem }, handler(true));
  for (const [srv, isSecure] of [
    [http, false],
    [https, true],
  ] as const) {
    srv.on('upgrade', onUpgrade(isSecure));
    srv.on('connection', (s: Socket) => {
      sockets.add(s);
      tcp.add(s);
      s.on('close', () => {
        sockets.delete(s);
        tcp.delete(s);
      });
    });
    srv.on('secureConnection', (s: Socket) => {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
    });
  }
  const listen = (srv: Server): Promise<number> =>
    new Promise((resolve) => srv.listen(0, '127.0.0.1', () => resolve((srv.address() as AddressInfo).port)));
  const [httpPort, httpsPort] = await Promise.all([listen(http), listen(https)]);
  return {
    httpPort,
    httpsPort,
    received,
    streamed,
    openConnections: () => tcp.size,
    async close() {
      for (const c of wss.clients) c.terminate();
      for (const s of sockets) s.destroy();
      await Promise.all([new Promise((r) => http.close(r)), new Promise((r) => https.close(r))]);
    },
  };
}
