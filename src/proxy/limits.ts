import type { Socket } from 'node:net';
import { AppError } from '../errors.js';

/**
 * Connection caps (issue 6 item 2): a global cap on client connections (the outer server's
 * maxConnections: Node closes the excess socket at accept, before any parsing) and a per-profile
 * cap, counted once per client socket from the moment it is identified (CONNECT, or the first
 * absolute-form request on a keep-alive socket), so one runaway agent cannot starve the others.
 *
 * The values are optional ProxySettings fields (`maxConnections`, `maxConnectionsPerProfile`);
 * without them the defaults below apply. They sit above the benchmark's 1000 held connections.
 */
export interface ProxyLimits {
  readonly maxConnections: number;
  readonly maxConnectionsPerProfile: number;
}

export const DEFAULT_LIMITS: ProxyLimits = { maxConnections: 4096, maxConnectionsPerProfile: 2048 };

function positive(v: unknown, fallback: number): number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v > 0 ? v : fallback;
}

export function limitsOf(s: Partial<ProxyLimits>): ProxyLimits {
  return {
    maxConnections: positive(s.maxConnections, DEFAULT_LIMITS.maxConnections),
    maxConnectionsPerProfile: positive(s.maxConnectionsPerProfile, DEFAULT_LIMITS.maxConnectionsPerProfile),
  };
}

/** 503 for a profile over its cap. */
export function proxyBusy(): AppError {
  return new AppError(
    'ERR_PROXY_BUSY',
    'too many open connections for this profile',
    'close idle connections, or raise proxy.maxConnectionsPerProfile',
  );
}

export class ConnectionLimiter {
  readonly #max: number;
  readonly #byProfile = new Map<string, number>();
  readonly #counted = new WeakSet<Socket>();

  constructor(limits: ProxyLimits) {
    this.#max = limits.maxConnectionsPerProfile;
  }

  /** Counts this client socket against the profile (once); throws ERR_PROXY_BUSY over the cap. */
  claim(socket: Socket, profile: string): void {
    if (this.#counted.has(socket)) return;
    const n = this.#byProfile.get(profile) ?? 0;
    if (n >= this.#max) throw proxyBusy();
    this.#byProfile.set(profile, n + 1);
    this.#counted.add(socket);
    socket.once('close', () => {
      const left = (this.#byProfile.get(profile) ?? 1) - 1;
      if (left <= 0) this.#byProfile.delete(profile);
      else this.#byProfile.set(profile, left);
    });
  }

  /** Open identified client connections of one profile (tests, metrics). */
  count(profile: string): number {
    return this.#byProfile.get(profile) ?? 0;
  }
}

/**
 * Stream buffer mark (both directions) of the proxy's TLS and upstream sockets: the default 16 KiB is
 * one TLS record, so a body relayed through the proxy would stop and restart the sending side after
 * nearly every record (undici pauses a request body whenever the upstream socket is past its mark).
 * Bytes are buffered only while a body flows; idle connections hold nothing.
 */
export const STREAM_HWM = 64 * 1024;
