import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { isIPv6 } from 'node:net';
import type { SecureContextOptions } from 'node:tls';
import type { AddressInfo } from 'node:net';
import { AppError } from '../errors.js';
import { readBody, parseJsonBody, sendJson, sendError } from './http-util.js';
import type { Router } from './router.js';

export interface ControlOptions {
  router: Router;
  /** Verifies the PoP token of a request; returns the caller's handle. */
  authenticate(req: IncomingMessage, url: string, body: Buffer): Promise<string>;
  /**
   * Runs before every request that grants or changes something (POST, PUT): refuses it while it could
   * not be audited. DELETEs (revoking a session, removing a connection) take access away and go on.
   */
  beforeChange?: () => Promise<void>;
  /**
   * Remote callers (SPEC section 10, `--listen`): served over TLS with this certificate, to any peer,
   * and the Host header must name `host` (the address or name the certificate names) and our port.
   */
  remote?: { host: string; tls: SecureContextOptions };
  /**
   * The dashboard (SPEC section 11), on the loopback listener only: targets under /ui are its page and
   * cookie-authenticated API, the one exception to PoP signing, with their own Host, Origin and CSRF
   * checks (ui-service.ts).
   */
  ui?: {
    owns(target: string | undefined): boolean;
    handle(req: IncomingMessage, res: ServerResponse, port: number): Promise<void>;
  };
}

const MAX_HEADERS = 64;
const LOOPBACK_PEERS = new Set(['127.0.0.1', '::1', '::ffff:127.0.0.1']);

/** Host must name a loopback address and the port we listen on: blocks DNS-rebinding from browsers. */
function hostAllowed(host: string | undefined, port: number): boolean {
  if (!host) return false;
  return host === `127.0.0.1:${port}` || host === `localhost:${port}` || host === `[::1]:${port}`;
}

export function createControlServer(opts: ControlOptions): {
  server: Server;
  listen(port: number, host: string): Promise<AddressInfo>;
} {
  // The port is taken once at listen: server.address() is null while the server drains on SIGTERM.
  let boundPort = 0;
  const httpOptions = { requestTimeout: 30_000, headersTimeout: 10_000, maxHeaderSize: 16 * 1024 };
  const onRequest = (req: IncomingMessage, res: ServerResponse) => {
    void handle(opts, boundPort, req, res);
  };
  const server: Server = opts.remote
    ? createHttpsServer(
        { ...httpOptions, ...opts.remote.tls, minVersion: 'TLSv1.2', handshakeTimeout: 10_000 },
        onRequest,
      )
    : createServer(httpOptions, onRequest);
  server.keepAliveTimeout = 5_000;
  server.maxHeadersCount = 0;
  return {
    server,
    listen: (port, host) =>
      new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => {
          server.off('error', reject);
          const addr = server.address() as AddressInfo;
          boundPort = addr.port;
          resolve(addr);
        });
      }),
  };
}

/**
 * Who may talk to the control API, decided before the body is read or a token is looked at: a
 * loopback peer, exactly one Host naming our loopback address and port (a browser tricked by DNS
 * rebinding sends its own name), and an origin-form target. Returns the URL the PoP token signs.
 */
export function checkControlRequest(
  remoteAddress: string | undefined,
  rawHeaders: readonly string[],
  target: string | undefined,
  port: number,
  /** The remote listener's name: any peer (over TLS), Host must name it. */
  remoteHost?: string,
): string {
  if (remoteHost === undefined && !LOOPBACK_PEERS.has(remoteAddress ?? '')) {
    throw new AppError(
      'ERR_AUTH_FORBIDDEN',
      'the control API only answers loopback peers',
      'run the CLI on the same machine',
    );
  }
  // Node would drop headers past maxHeadersCount silently; it is lifted below and the count checked here.
  if (rawHeaders.length / 2 > MAX_HEADERS)
    throw new AppError('ERR_INPUT_INVALID', `more than ${MAX_HEADERS} request headers`, 'send fewer headers');
  const hosts: string[] = [];
  for (let i = 0; i < rawHeaders.length; i += 2)
    if (rawHeaders[i]!.toLowerCase() === 'host') hosts.push(rawHeaders[i + 1]!);
  const remoteName =
    remoteHost === undefined ? undefined : `${isIPv6(remoteHost) ? `[${remoteHost}]` : remoteHost}:${port}`;
  const allowed =
    remoteName === undefined ? hostAllowed(hosts[0], port) : hosts[0]?.toLowerCase() === remoteName;
  if (hosts.length !== 1 || !allowed) {
    throw new AppError(
      'ERR_AUTH_FORBIDDEN',
      'foreign Host header refused',
      remoteName === undefined
        ? 'talk to the daemon as 127.0.0.1:<port>'
        : `talk to the daemon as https://${remoteName} (the name its certificate carries)`,
    );
  }
  if (target === undefined || !target.startsWith('/') || target.startsWith('//')) {
    throw new AppError(
      'ERR_INPUT_INVALID',
      'the control API takes origin-form request targets only',
      'send GET /v1/status, not an absolute URL',
    );
  }
  return remoteName === undefined ? `http://${hosts[0]}${target}` : `https://${remoteName}${target}`;
}

async function handle(
  opts: ControlOptions,
  port: number,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  if (opts.ui?.owns(req.url)) return opts.ui.handle(req, res, port);
  try {
    const url = checkControlRequest(
      req.socket.remoteAddress,
      req.rawHeaders,
      req.url,
      port,
      opts.remote?.host,
    );
    const parsed = new URL(url);
    const body = await readBody(req);
    const { handler, params } = opts.router.find(req.method ?? 'GET', parsed.pathname);
    const handle = await opts.authenticate(req, url, body);
    if (req.method === 'POST' || req.method === 'PUT') await opts.beforeChange?.();
    const out = await handler({ handle, params, query: parsed.searchParams, body: parseJsonBody(body) });
    sendJson(res, out.status ?? 200, out.body);
  } catch (e) {
    sendError(res, e);
  }
}
