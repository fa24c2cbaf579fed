import { Pool } from 'undici';
import type { SecureContext } from 'node:tls';
import type { ProxySettings } from '../config/settings.js';
import type { AddressPolicy } from './address-policy.js';
import type { Authority } from './destination.js';
import { dial } from './dial.js';

/**
 * Keep-alive pools for the upstream leg, one per (scheme, canonical host, port). Credentials are
 * per request headers, so pooling per destination (not per profile) is safe and keeps the number
 * of upstream handshakes low. Every new connection goes through the address policy and dials the
 * address it checked (undici's `connect` hook), verified against the upstream trust only.
 */
export class Upstreams {
  readonly #pools = new Map<string, Pool>();
  readonly #sessions = new Map<string, Buffer>();
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
    const key = `${secure ? 's' : 'p'}|${a.host}|${a.port}`;
    let pool = this.#pools.get(key);
    if (pool) return pool;
    pool = this.#create(a, secure);
    this.#pools.set(key, pool);
    if (this.#pools.size > this.#maxPools) {
      const [oldKey, old] = this.#pools.entries().next().value as [string, Pool];
      this.#pools.delete(oldKey);
      void old.close().catch(() => undefined);
    }
    return pool;
  }

  #create(a: Authority, secure: boolean): Pool {
    const s = this.#settings;
    const sessionKey = `${a.host}:${a.port}`;
    const origin = `${secure ? 'https' : 'http'}://${a.host}:${a.port}`;
    return new Pool(origin, {
      pipelining: 1,
      headersTimeout: s.upstreamHeadersTimeoutMs,
      bodyTimeout: s.upstreamBodyTimeoutMs,
      keepAliveTimeout: 4_000,
      keepAliveMaxTimeout: 60_000,
      connect: (_opts, cb) => {
        this.#policy
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
            cb(null, socket);
          })
          .catch((e: Error) => cb(e, null));
      },
    });
  }

  async close(): Promise<void> {
    const pools = [...this.#pools.values()];
    this.#pools.clear();
    await Promise.all(pools.map((p) => p.destroy().catch(() => undefined)));
  }
}
