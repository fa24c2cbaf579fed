/**
 * A reference point, not a product: the smallest Node MITM that does what authsome's HTTPS path does
 * at its core (CONNECT, TLS termination, add one header, forward over a keep-alive TLS pool, stream
 * the answer back), without identity, provider matching, audit, secret scanning or any check.
 * Run by `--focus` as an extra column, so the cost of authsome's own work is visible apart from the
 * cost any Node MITM pays. It presents the origin's own certificate (the bench trusts the origin CA),
 * so it mints nothing. Absolute-form http:// requests are forwarded as they are (with http.Agent).
 *
 *   node reference-mitm.js <origin.json> <origin-ca.pem> <originHttpPort> <originHttpsPort> <header> <value>
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { Agent as HttpAgent, request as httpRequest } from 'node:http';
import { Agent, request } from 'node:https';
import { readFileSync } from 'node:fs';
import { TLSSocket, createSecureContext } from 'node:tls';
import type { AddressInfo, Socket } from 'node:net';
import type { OriginConfig } from './origin.js';

const [cfgPath, caPath, httpPort, port, header, value] = process.argv.slice(2) as [
  string,
  string,
  string,
  string,
  string,
  string,
];
const cfg = JSON.parse(readFileSync(cfgPath, 'utf8')) as OriginConfig;
const context = createSecureContext({ cert: cfg.certPem, key: cfg.keyPem });
const agent = new Agent({ keepAlive: true, maxSockets: Infinity, ca: readFileSync(caPath, 'utf8') });

const inner = createServer((req: IncomingMessage, res: ServerResponse) => {
  const host = (req.headers.host ?? '').replace(/:\d+$/, '');
  const up = request(
    {
      host: '127.0.0.1',
      port: Number(port),
      servername: host,
      agent,
      method: req.method,
      path: req.url,
      headers: { ...req.headers, [header]: value },
    },
    (r) => {
      res.writeHead(r.statusCode ?? 502, r.headers);
      r.pipe(res);
    },
  );
  up.on('error', () => res.destroy());
  req.pipe(up);
});
inner.emit('listening');

const plainAgent = new HttpAgent({ keepAlive: true, maxSockets: Infinity });
const outer = createServer((req: IncomingMessage, res: ServerResponse) => {
  const url = new URL(req.url ?? '/');
  const headers = { ...req.headers };
  delete headers['proxy-authorization'];
  delete headers['proxy-connection'];
  const up = httpRequest(
    {
      host: '127.0.0.1',
      port: Number(httpPort),
      agent: plainAgent,
      method: req.method,
      path: `${url.pathname}${url.search}`,
      headers,
    },
    (r) => {
      res.writeHead(r.statusCode ?? 502, r.headers);
      r.pipe(res);
    },
  );
  up.on('error', () => res.destroy());
  req.pipe(up);
});
outer.on('connect', (_req: IncomingMessage, socket: Socket, head: Buffer) => {
  socket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
  if (head.length) socket.unshift(head);
  const tls = new TLSSocket(socket, { isServer: true, secureContext: context, ALPNProtocols: ['http/1.1'] });
  tls.on('error', () => tls.destroy());
  inner.emit('connection', tls);
});
outer.listen(0, '127.0.0.1', () =>
  process.stdout.write(`${JSON.stringify({ port: (outer.address() as AddressInfo).port })}\n`),
);
process.stdin.resume();
process.stdin.on('end', () => process.exit(0));
