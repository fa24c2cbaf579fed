import { request } from 'undici';
import type { KeyObject } from 'node:crypto';
import { AppError, isErrorCode } from '../errors.js';
import { signPop } from '../identity/index.js';
import type { DaemonInfo } from './daemon-file.js';

/** The CLI's only way into the store: PoP-signed JSON calls to the daemon's control API. */
export class DaemonClient {
  readonly #info: DaemonInfo;
  readonly #handle: string;
  readonly #key: KeyObject;

  constructor(info: DaemonInfo, handle: string, key: KeyObject) {
    this.#info = info;
    this.#handle = handle;
    this.#key = key;
  }

  get info(): DaemonInfo {
    return this.#info;
  }

  get handle(): string {
    return this.#handle;
  }

  async call<T = Record<string, unknown>>(method: string, path: string, body?: unknown): Promise<T> {
    const url = `http://127.0.0.1:${this.#info.controlPort}${path}`;
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const jwt = await signPop({ key: this.#key, handle: this.#handle, method, url, body: payload });
    let res;
    try {
      res = await request(url, {
        method: method as 'GET',
        headers: {
          authorization: `PoP ${jwt}`,
          ...(payload ? { 'content-type': 'application/json' } : {}),
        },
        ...(payload ? { body: payload } : {}),
        headersTimeout: 30_000,
        bodyTimeout: 30_000,
      });
    } catch (e) {
      throw new AppError('ERR_DAEMON_UNREACHABLE', `cannot reach the daemon at 127.0.0.1:${this.#info.controlPort}: ${(e as Error).message}`, 'run `authsome daemon start`, or `authsome daemon status` to see what is wrong');
    }
    const text = await res.body.text();
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      throw new AppError('ERR_INTERNAL', `the daemon answered ${res.statusCode} with a non-JSON body`, 'see server/daemon.log');
    }
    if (res.statusCode >= 400) {
      const err = (json as { error?: { code?: string; message?: string; hint?: string } }).error ?? {};
      const code = err.code && isErrorCode(err.code) ? err.code : 'ERR_INTERNAL';
      throw new AppError(code, err.message ?? `daemon error ${res.statusCode}`, err.hint);
    }
    return json as T;
  }
}
