import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
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
   * The dashboard (SPEC section 11): targets under /ui are its page and cookie-authenticated API, the
   * one exception to PoP signing, with their own Host, Origin and CSRF checks (ui-service.ts).
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
  const server = createServer(
    { requestTimeout: 30_000, headersTimeout: 10_000, maxHeaderSize: 16 * 1024 },
    (req, res) => {
      void handle(opts, boundPort, req, res);
    },
  );
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
): string {
  if (!LOOPBACK_PEERS.has(remoteAddress ?? '')) {
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
  if (hosts.length !== 1 || !hostAllowed(hosts[0], port)) {
    throw new AppError(
      'ERR_AUTH_FORBIDDEN',
      'foreign Host header refused',
      'talk to the daemon as 127.0.0.1:<port>',
    );
  }
  if (target === undefined || !target.startsWith('/') || target.startsWith('//')) {
    throw new AppError(
      'ERR_INPUT_INVALID',
      'the control API takes origin-form request targets only',
      'send GET /v1/status, not an absolute URL',
    );
  }
  return `http://${hosts[0]}${target}`;
}

async function handle(
  opts: ControlOptions,
  port: number,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  if (opts.ui?.owns(req.url)) return opts.ui.handle(req, res, port);
  try {
    const url = checkControlRequest(req.socket.remoteAddress, req.rawHeaders, req.url, port);
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
