import type { Socket } from 'node:net';
import type { SecureContext, TLSSocket } from 'node:tls';
import { Pool } from 'undici';
import { isAppError } from '../errors.js';
import type { ProxySettings } from '../config/settings.js';
import type { AddressPolicy } from './address-policy.js';
import type { Authority } from './destination.js';
import { dial } from './dial.js';

/** How long a connection opened ahead of the first request (see preconnect) waits to be used. */
const SPARE_MS = 2_000;

interface Spare {
  readonly socket: Promise<Socket | TLSSocket>;
  readonly timer: NodeJS.Timeout;
}

/**
 * Keep-alive pools for the upstream leg, one per (scheme, canonical host, port). Credentials are
 * per request headers, so pooling per destination (not per profile) is safe and keeps the number
 * of upstream handshakes low. Every new connection goes through the address policy and dials the
 * address it checked (undici's `connect` hook), verified against the upstream trust only.
 */
export class Upstreams {
  readonly #pools = new Map<string, Pool>();
  readonly #sessions = new Map<string, Buffer>();
  readonly #spares = new Map<string, Spare>();
  readonly #settings: ProxySettings;
  readonly #policy: AddressPolicy;
  readonly #trust: SecureContext;
  readonly #maxPools: number;

  constructor(settings: ProxySettings, policy: AddressPolicy, trust: SecureContext, maxPools = 256) {
    this.#settings = settings;
    this.#policy = policy;
    this.#trust = trust;
    this.#maxPools = maxPools;
  }

  pool(a: Authority, secure: boolean): Pool {
    const key = keyOf(a, secure);
    let pool = this.#pools.get(key);
    if (pool) return pool;
    pool = this.#create(a, secure, key);
    this.#pools.set(key, pool);
    if (this.#pools.size > this.#maxPools) {
      const [oldKey, old] = this.#pools.entries().next().value as [string, Pool];
      this.#pools.delete(oldKey);
      void old.close().catch(() => undefined);
    }
    return pool;
  }

  /**
   * At CONNECT to an intercepted host with no open upstream connection yet: start one now, so TCP
   * and TLS to the upstream overlap the leaf and the client's handshake instead of following them.
   * Same address policy and verification as any pool connection; unused after SPARE_MS, it is closed.
   * Nothing is sent on it before a request that went through the whole pipeline.
   */
  preconnect(a: Authority): void {
    const key = keyOf(a, true);
    if (this.#spares.has(key) || (this.#pools.get(key)?.stats.connected ?? 0) > 0) return;
    const socket = this.#dial(a, true);
    const timer = setTimeout(() => {
      if (this.#spares.get(key)?.socket !== socket) return;
      this.#spares.delete(key);
      socket.then(
        (s) => s.destroy(),
        () => undefined,
      );
    }, SPARE_MS);
    timer.unref();
    socket.then(
      (s) => s.on('error', () => s.destroy()),
      () => undefined,
    );
    this.#spares.set(key, { socket, timer });
  }

  /**
   * The pre-opened connection for this key if it is still alive, undefined when there is none (or it
   * has closed, or failed to connect: the request dials again). A pre-open the address policy refused
   * fails the request with that refusal: dialing again would ask the resolver again, and a second
   * answer must never overrule a refused first one.
   */
  async #takeSpare(key: string): Promise<Socket | TLSSocket | undefined> {
    const spare = this.#spares.get(key);
    if (!spare) return undefined;
    this.#spares.delete(key);
    clearTimeout(spare.timer);
    const socket = await spare.socket.catch((e: unknown) => {
      if (isAppError(e) && e.code === 'ERR_PROXY_DESTINATION_DENIED') throw e;
      return undefined;
    });
    return socket && !socket.destroyed ? socket : undefined;
  }

  #dial(a: Authority, secure: boolean): Promise<Socket | TLSSocket> {
    const s = this.#settings;
    const sessionKey = `${a.host}:${a.port}`;
    return this.#policy
      .resolve(a)
      .then((addr) =>
        dial(addr, {
          timeoutMs: s.upstreamConnectTimeoutMs,
          ...(secure
            ? {
                tls: {
                  servername: a.host,
                  context: this.#trust,
                  session: this.#sessions.get(sessionKey),
                },
              }
            : {}),
        }),
      )
      .then((socket) => {
        if (secure) {
          // TLS session resumption for the next connection to this origin.
          socket.on('session', (sess: Buffer) => {
            if (this.#sessions.size > 1000) this.#sessions.clear();
            this.#sessions.set(sessionKey, sess);
          });
        }
        return socket;
      });
  }

  #create(a: Authority, secure: boolean, key: string): Pool {
    const s = this.#settings;
    const origin = `${secure ? 'https' : 'http'}://${a.host}:${a.port}`;
    return new Pool(origin, {
      pipelining: 1,
      headersTimeout: s.upstreamHeadersTimeoutMs,
      bodyTimeout: s.upstreamBodyTimeoutMs,
      keepAliveTimeout: 4_000,
      keepAliveMaxTimeout: 60_000,
      connect: (_opts, cb) => {
        this.#takeSpare(key)
          .then((spare) => spare ?? this.#dial(a, secure))
          .then((socket) => cb(null, socket))
          .catch((e: Error) => cb(e, null));
      },
    });
  }

  async close(): Promise<void> {
    for (const [key, spare] of this.#spares) {
      this.#spares.delete(key);
      clearTimeout(spare.timer);
      spare.socket.then(
        (sock) => sock.destroy(),
        () => undefined,
      );
    }
    const pools = [...this.#pools.values()];
    this.#pools.clear();
    await Promise.all(pools.map((p) => p.destroy().catch(() => undefined)));
  }
}

function keyOf(a: Authority, secure: boolean): string {
  return `${secure ? 's' : 'p'}|${a.host}|${a.port}`;
}
