/**
 * The loopback origin, run as its own process (so that, as in real life, it does not share an event
 * loop with the load generator): an HTTP and an HTTPS server with a 1 KiB JSON answer, a 10 MiB body,
 * an upload sink and an SSE stream. It counts, per request, whether the expected credential arrived.
 *
 * Started by run.ts as `node origin.js <config.json>`; prints one JSON line with its ports; exits when
 * its stdin closes (the bench went away, however it ended).
 */
import {
  createServer as createHttp,
  type IncomingMessage,
  type ServerResponse,
  type Server,
} from 'node:http';
import { createServer as createHttps } from 'node:https';
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';

export interface OriginConfig {
  certPem: string;
  keyPem: string;
  /** host -> the header (lower-case) and exact value the proxy must have injected. */
  expect: Record<string, { header: string; value: string }>;
  largeBytes: number;
}

export interface OriginStats {
  /** HTTPS requests that carried exactly the expected credential. */
  ok: number;
  /** HTTPS requests to a provider host without it. */
  missing: number;
  /** HTTPS requests with a different value (or several copies). */
  wrong: number;
  /** Plain-HTTP requests that carried any of the credentials (must stay 0: never over cleartext). */
  leaked: number;
  requests: number;
  uploadBytes: number;
}

const cfg = JSON.parse(readFileSync(process.argv[2]!, 'utf8')) as OriginConfig;
const secrets = Object.values(cfg.expect).map((e) => e.value);
let stats: OriginStats = { ok: 0, missing: 0, wrong: 0, leaked: 0, requests: 0, uploadBytes: 0 };

function json1k(): Buffer {
  const base = { ok: true, id: 'chatcmpl-bench', object: 'chat.completion', model: 'bench', pad: '' };
  const len = Buffer.byteLength(JSON.stringify(base));
  base.pad = 'x'.repeat(1024 - len);
  return Buffer.from(JSON.stringify(base));
}
const JSON_BODY = json1k();
const LARGE = Buffer.alloc(cfg.largeBytes, 0x61);

function check(req: IncomingMessage, secure: boolean): void {
  stats.requests++;
  if (!secure) {
    for (let i = 0; i < req.rawHeaders.length; i += 2) {
      const v = req.rawHeaders[i + 1]!;
      if (secrets.some((s) => v.includes(s))) stats.leaked++;
    }
    return;
  }
  const host = (req.headers.host ?? '').replace(/:\d+$/, '');
  const e = cfg.expect[host];
  if (!e) return;
  const values = req.headersDistinct[e.header];
  if (!values || values.length === 0) stats.missing++;
  else if (values.length === 1 && values[0] === e.value) stats.ok++;
  else stats.wrong++;
}

function handler(secure: boolean) {
  return (req: IncomingMessage, res: ServerResponse): void => {
    const url = req.url ?? '/';
    if (url.startsWith('/__stats')) {
      const body = JSON.stringify(stats);
      if (url.includes('reset=1'))
        stats = { ok: 0, missing: 0, wrong: 0, leaked: 0, requests: 0, uploadBytes: 0 };
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      res.end(body);
      return;
    }
    check(req, secure);
    if (url.startsWith('/upload')) {
      let n = 0;
      req.on('data', (c: Buffer) => (n += c.length));
      req.on('end', () => {
        stats.uploadBytes += n;
        const body = JSON.stringify({ bytes: n });
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
        res.end(body);
      });
      return;
    }
    req.resume();
    if (url.startsWith('/large')) {
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': LARGE.length });
      res.end(LARGE);
      return;
    }
    if (url.startsWith('/sse')) {
      const q = new URL(url, 'http://x').searchParams;
      const n = Math.min(Number(q.get('n') ?? 5), 1000);
      const every = Math.min(Number(q.get('interval') ?? 50), 10_000);
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
      res.flushHeaders();
      let i = 0;
      const tick = (): void => {
        res.write(`data: {"event":${i},"t":${(performance.timeOrigin + performance.now()).toFixed(3)}}\n\n`);
        if (++i >= n) res.end();
        else timer = setTimeout(tick, every);
      };
      let timer = setTimeout(tick, every);
      res.on('close', () => clearTimeout(timer));
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': JSON_BODY.length });
    res.end(JSON_BODY);
  };
}

const opts = { keepAliveTimeout: 65_000, headersTimeout: 30_000, requestTimeout: 60_000 };
const http = createHttp(opts, handler(false));
const https = createHttps({ ...opts, cert: cfg.certPem, key: cfg.keyPem }, handler(true));
const listen = (s: Server): Promise<number> =>
  new Promise((resolve) => s.listen(0, '127.0.0.1', 4096, () => resolve((s.address() as AddressInfo).port)));
const [httpPort, httpsPort] = await Promise.all([listen(http), listen(https)]);
process.stdout.write(`${JSON.stringify({ httpPort, httpsPort })}\n`);
process.stdin.resume();
process.stdin.on('end', () => process.exit(0));
process.on('SIGTERM', () => process.exit(0));
