import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { AppError } from '../errors.js';
import { readBody, parseJsonBody, sendJson, sendError } from './http-util.js';
import type { Router } from './router.js';

export interface ControlOptions {
  router: Router;
  /** Verifies the PoP token of a request; returns the caller's handle. */
  authenticate(req: IncomingMessage, url: string, body: Buffer): Promise<string>;
}

const LOOPBACK_PEERS = new Set(['127.0.0.1', '::1', '::ffff:127.0.0.1']);

/** Host must name a loopback address and the port we listen on: blocks DNS-rebinding from browsers. */
function hostAllowed(host: string | undefined, port: number): boolean {
  if (!host) return false;
  return host === `127.0.0.1:${port}` || host === `localhost:${port}` || host === `[::1]:${port}`;
}

export function createControlServer(opts: ControlOptions): { server: Server; listen(port: number, host: string): Promise<AddressInfo> } {
  const server = createServer({ requestTimeout: 30_000, headersTimeout: 10_000, maxHeaderSize: 16 * 1024 }, (req, res) => {
    void handle(opts, server, req, res);
  });
  server.keepAliveTimeout = 5_000;
  return {
    server,
    listen: (port, host) =>
      new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => {
          server.off('error', reject);
          resolve(server.address() as AddressInfo);
        });
      }),
  };
}

async function handle(opts: ControlOptions, server: Server, req: IncomingMessage, res: ServerResponse): Promise<void> {
  try {
    const port = (server.address() as AddressInfo).port;
    if (!LOOPBACK_PEERS.has(req.socket.remoteAddress ?? '')) {
      throw new AppError('ERR_AUTH_FORBIDDEN', 'the control API only answers loopback peers', 'run the CLI on the same machine');
    }
    const hosts = req.headersDistinct['host'] ?? [];
    if (hosts.length !== 1 || !hostAllowed(hosts[0], port)) {
      throw new AppError('ERR_AUTH_FORBIDDEN', 'foreign Host header refused', 'talk to the daemon as 127.0.0.1:<port>');
    }
    const url = `http://${hosts[0]}${req.url ?? '/'}`;
    const parsed = new URL(url);
    const body = await readBody(req);
    const { handler, params } = opts.router.find(req.method ?? 'GET', parsed.pathname);
    const handle = await opts.authenticate(req, url, body);
    const out = await handler({ handle, params, query: parsed.searchParams, body: parseJsonBody(body) });
    sendJson(res, out.status ?? 200, out.body);
  } catch (e) {
    sendError(res, e);
  }
}
