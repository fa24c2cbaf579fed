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

interface PoolEntry {
  readonly pool: Pool;
  /** Use stamp: at the cap, the least recently used pool is the one closed. */
  used: number;
}

interface Spare {
  readonly socket: Promise<Socket | TLSSocket>;
  readonly timer: NodeJS.Timeout;
}

/**
 * Whose requests a pooled upstream connection carries: requests of different profiles, or of different
 * connections (or none) of one profile, never share a TCP/TLS connection. A mis-framed or desynchronised
 * upstream answer can then only reach the same owner, and connection-bound state at the upstream
 * (connection-oriented auth, TLS session tickets) is never shared between accounts.
 */
export interface PoolOwner {
  readonly profile: string;
  /**
   * The injected connection and its provider (two providers on one host may each have a connection
   * of the same name); both undefined for a request that carries no credential.
   */
  readonly provider?: string | undefined;
  readonly connection: string | undefined;
}

/**
 * Keep-alive pools for the upstream leg, one per (owner, scheme, canonical host, port): see PoolOwner.
 * Every new connection goes through the address policy and dials the address it checked (undici's
 * `connect` hook), verified against the upstream trust only; TLS sessions are resumed per pool.
 */
export class Upstreams {
  readonly #pools = new Map<string, PoolEntry>();
  /** Evicted pools still finishing their requests: close() must not leave them behind. */
  readonly #retiring = new Set<Pool>();
  #uses = 0;
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

  pool(a: Authority, secure: boolean, owner: PoolOwner): Pool {
    const key = `${destinationKey(a, secure, owner.profile)}|${owner.provider ?? ''}|${owner.connection ?? ''}`;
    const known = this.#pools.get(key);
    if (known) {
      known.used = ++this.#uses;
      return known.pool;
    }
    if (this.#pools.size >= this.#maxPools) this.#evict();
    const pool = this.#create(a, secure, key, owner.profile);
    this.#pools.set(key, { pool, used: ++this.#uses });
    return pool;
  }

  /**
   * At the cap: closes the least recently used pool (its in-flight requests finish; its owner's next
   * request opens a new one). A scan, but only when a new pool is needed past the cap.
   */
  #evict(): void {
    let oldest: [string, PoolEntry] | undefined;
    for (const e of this.#pools) if (!oldest || e[1].used < oldest[1].used) oldest = e;
    if (!oldest) return;
    this.#pools.delete(oldest[0]);
    const pool = oldest[1].pool;
    this.#retiring.add(pool);
    void pool
      .close()
      .catch(() => undefined)
      .finally(() => this.#retiring.delete(pool));
  }

  /**
   * At CONNECT to an intercepted host, when this profile has no open upstream connection there yet:
   * start one now, so TCP and TLS to the upstream overlap the leaf and the client's handshake instead
   * of following them. Same address policy and verification as any pool connection; unused after
   * SPARE_MS, it is closed. It carries nothing before a request that went through the whole pipeline,
   * and only a pool of the same profile takes it (the connection is not known before the request).
   */
  preconnect(a: Authority, profile: string): void {
    const key = destinationKey(a, true, profile);
    if (this.#spares.has(key) || this.#connected(key)) return;
    const socket = this.#dial(a, true, undefined);
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

  /** Whether any pool of this (destination, profile) has an open connection. */
  #connected(destKey: string): boolean {
    const prefix = `${destKey}|`;
    for (const [key, { pool }] of this.#pools) {
      if (key.startsWith(prefix) && pool.stats.connected > 0) return true;
    }
    return false;
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

  /** `sessionKey`: the pool whose TLS session to resume and keep (none for a spare). */
  #dial(a: Authority, secure: boolean, sessionKey: string | undefined): Promise<Socket | TLSSocket> {
    const s = this.#settings;
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
                  session: sessionKey === undefined ? undefined : this.#sessions.get(sessionKey),
                },
              }
            : {}),
        }),
      )
      .then((socket) => {
        if (secure && sessionKey !== undefined) {
          // TLS session resumption for the pool's next connection.
          socket.on('session', (sess: Buffer) => {
            if (this.#sessions.size > 1000) this.#sessions.clear();
            this.#sessions.set(sessionKey, sess);
          });
        }
        return socket;
      });
  }

  #create(a: Authority, secure: boolean, key: string, profile: string): Pool {
    const spareKey = destinationKey(a, secure, profile);
    const s = this.#settings;
    const origin = `${secure ? 'https' : 'http'}://${a.host}:${a.port}`;
    return new Pool(origin, {
      pipelining: 1,
      headersTimeout: s.upstreamHeadersTimeoutMs,
      bodyTimeout: s.upstreamBodyTimeoutMs,
      keepAliveTimeout: 4_000,
      keepAliveMaxTimeout: 60_000,
      connect: (_opts, cb) => {
        this.#takeSpare(spareKey)
          .then((spare) => spare ?? this.#dial(a, secure, key))
          .then((socket) => cb(null, socket))
          .catch((e: Error) => cb(e, null));
      },
    });
  }

  /**
   * Closes the keep-alive pools of one owner (a deleted profile, or one removed credential of it): their
   * connections carried that credential, and nothing more should go up them.
   */
  closeOwner(profile: string, provider?: string, connection?: string): void {
    for (const [key, entry] of this.#pools) {
      const [, , , owner, prov, conn] = key.split('|');
      if (owner !== profile) continue;
      if (provider !== undefined && (prov !== provider || conn !== connection)) continue;
      this.#pools.delete(key);
      void entry.pool.destroy().catch(() => undefined);
    }
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
    const pools = [...this.#pools.values()].map((e) => e.pool).concat([...this.#retiring]);
    this.#pools.clear();
    this.#retiring.clear();
    await Promise.all(pools.map((p) => p.destroy().catch(() => undefined)));
  }
}

/** Names cannot hold "|" (names.ts), hosts are canonical: keys cannot collide. */
function destinationKey(a: Authority, secure: boolean, profile: string): string {
  return `${secure ? 's' : 'p'}|${a.host}|${a.port}|${profile}`;
}
