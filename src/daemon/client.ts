import { request, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { KeyObject } from 'node:crypto';
import { AppError, isErrorCode } from '../errors.js';
import { signPop } from '../identity/index.js';
import type { DaemonInfo } from './daemon-file.js';

/** A daemon reached over the network (SPEC section 10, `--daemon https://node:7998`). */
export interface RemoteDaemon {
  /** https://host:port, nothing after it. */
  readonly origin: string;
  /** The CA that signed the node's certificate (the team CA's ca.pem): the only one trusted for it. */
  readonly caPem: string;
  readonly caFile: string;
}

/** The CLI's only way into the store: PoP-signed JSON calls to the daemon's control API. */
export class DaemonClient {
  readonly #info: DaemonInfo;
  readonly #handle: string;
  readonly #key: KeyObject;
  readonly #remote: RemoteDaemon | undefined;

  constructor(info: DaemonInfo, handle: string, key: KeyObject, remote?: RemoteDaemon) {
    this.#info = info;
    this.#handle = handle;
    this.#key = key;
    this.#remote = remote;
  }

  get remote(): RemoteDaemon | undefined {
    return this.#remote;
  }

  get info(): DaemonInfo {
    return this.#info;
  }

  get handle(): string {
    return this.#handle;
  }

  async call<T = Record<string, unknown>>(method: string, path: string, body?: unknown): Promise<T> {
    const origin = this.#remote?.origin ?? `http://127.0.0.1:${this.#info.controlPort}`;
    const url = `${origin}${path}`;
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const jwt = await signPop({ key: this.#key, handle: this.#handle, method, url, body: payload });
    let res: { statusCode: number; text: string };
    try {
      res = await send(
        url,
        method,
        { authorization: `PoP ${jwt}`, ...(payload ? { 'content-type': 'application/json' } : {}) },
        payload,
        this.#remote?.caPem,
      );
    } catch (e) {
      throw new AppError(
        'ERR_DAEMON_UNREACHABLE',
        `cannot reach the daemon at ${origin.replace(/^http:\/\//, '')}: ${(e as Error).message}`,
        this.#remote
          ? `check that the node runs with --listen and that ${this.#remote.caFile} is the team's CA (AUTHSOME_DAEMON_CA)`
          : 'run `authsome daemon start`, or `authsome daemon status` to see what is wrong',
      );
    }
    // node:http's own answer to an oversized head (the PoP token repeats the URL, so a URL of ~8 KiB).
    if (res.statusCode === 431)
      throw new AppError(
        'ERR_INPUT_INVALID',
        'the request was too large for the daemon (its URL is too long)',
        'shorten it: e.g. explain the URL without its long query string',
      );
    const text = res.text;
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      throw new AppError(
        'ERR_INTERNAL',
        `the daemon answered ${res.statusCode} with a non-JSON body`,
        'see server/daemon.log',
      );
    }
    if (res.statusCode >= 400) {
      const err = (json as { error?: { code?: string; message?: string; hint?: string } }).error ?? {};
      const code = err.code && isErrorCode(err.code) ? err.code : 'ERR_INTERNAL';
      throw new AppError(code, err.message ?? `daemon error ${res.statusCode}`, err.hint);
    }
    return json as T;
  }
}

/** node:http rather than undici here: the CLI starts faster without loading undici. */
function send(
  url: string,
  method: string,
  headers: Record<string, string>,
  body: Buffer | undefined,
  /** https: trust only this CA (a remote node's certificate comes from the team's CA). */
  caPem?: string,
): Promise<{ statusCode: number; text: string }> {
  return new Promise((resolve, reject) => {
    const options = {
      method,
      headers: { ...headers, ...(body ? { 'content-length': String(body.length) } : {}) },
      timeout: 30_000,
    };
    const req = (caPem === undefined ? request : httpsRequest)(
      url,
      caPem === undefined ? options : { ...options, ca: caPem, minVersion: 'TLSv1.2' as const },
      (res: IncomingMessage) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({ statusCode: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }),
        );
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error('timed out after 30 s')));
    req.on('error', reject);
    req.end(body);
  });
}
