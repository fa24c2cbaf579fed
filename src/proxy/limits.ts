import type { Socket } from 'node:net';
import { AppError } from '../errors.js';
import { writeRawError } from './respond.js';

/**
 * Connection caps (issue 6 item 2): a global cap on client connections (closed at accept, before any
 * parsing: see Admission) and a per-profile
 * cap, counted once per client socket from the moment it is identified (CONNECT, or the first
 * absolute-form request on a keep-alive socket), so one runaway agent cannot starve the others.
 *
 * The values are optional ProxySettings fields (`maxConnections`, `maxConnectionsPerProfile`);
 * without them the defaults below apply. They sit above the benchmark's 1000 held connections.
 */
export interface ProxyLimits {
  readonly maxConnections: number;
  readonly maxConnectionsPerProfile: number;
  /** Client connections accepted but not yet identified (no valid session token seen yet). */
  readonly maxUnidentified: number;
  /** How long a connection may stay unidentified, from accept: a trickled head cannot extend it. */
  readonly unidentifiedMs: number;
}

export const DEFAULT_LIMITS: ProxyLimits = {
  maxConnections: 4096,
  maxConnectionsPerProfile: 2048,
  maxUnidentified: 256,
  unidentifiedMs: 20_000,
};

function positive(v: unknown, fallback: number): number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v > 0 ? v : fallback;
}

export function limitsOf(s: Partial<ProxyLimits> & { headersTimeoutMs?: number }): ProxyLimits {
  return {
    maxConnections: positive(s.maxConnections, DEFAULT_LIMITS.maxConnections),
    maxConnectionsPerProfile: positive(s.maxConnectionsPerProfile, DEFAULT_LIMITS.maxConnectionsPerProfile),
    maxUnidentified: positive(s.maxUnidentified, DEFAULT_LIMITS.maxUnidentified),
    // The head deadline of an unidentified connection is the headers timeout, counted from accept.
    unidentifiedMs: positive(s.unidentifiedMs ?? s.headersTimeoutMs, DEFAULT_LIMITS.unidentifiedMs),
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

/**
 * Admission at accept (issue 18 item 1): the global cap on client connections, and a budget for
 * connections whose first head has not arrived yet. Anyone on loopback can open those, so they must
 * never be what keeps an identified caller out:
 * - past the budget, or at the global cap, a head-less connection is closed to make room: first the
 *   oldest one the proxy has read (it sent bytes, yet no complete head: a trickle), else the oldest
 *   silent for SILENT_GRACE_MS, else the oldest. A real client sends its whole head as soon as it is
 *   connected, so it is read long before `maxUnidentified` newer connections push it out;
 * - the global cap therefore only refuses a new connection when every open one has sent its head
 *   (the per-profile caps bound those); the proxy counts itself instead of Node's maxConnections so
 *   that it can choose whom to close;
 * - a head must arrive within a deadline counted from accept: bytes trickled into it do not extend it.
 * An attacker who keeps reopening slow or silent sockets therefore only displaces its own.
 */
const SILENT_GRACE_MS = 1000;
/** How far into the oldest entries one eviction looks for a better victim (bounds the work per accept). */
const EVICT_SCAN = 256;

class Admission {
  /** Head-less connections -> accept time; insertion order = accept order (the first is the oldest). */
  readonly #headless = new Map<Socket, number>();
  /** Open client connections (all of them), decremented at once when the proxy closes one itself. */
  #open = 0;
  readonly #gone = new WeakSet<Socket>();
  readonly #limits: ProxyLimits;
  #sweep: NodeJS.Timeout | undefined;
  /** Connections closed for the budget, the cap or the deadline, and refused at the cap, since start. */
  evicted = 0;
  refused = 0;

  constructor(limits: ProxyLimits) {
    this.#limits = limits;
  }

  add(socket: Socket, now: number): void {
    this.#open++;
    socket.once('close', () => this.#forget(socket));
    const { maxConnections, maxUnidentified } = this.#limits;
    if (this.#headless.size >= maxUnidentified || this.#open > maxConnections) this.#makeRoom(now);
    if (this.#open > maxConnections) {
      this.refused++;
      this.#close(socket);
      return;
    }
    this.#headless.set(socket, now);
    this.#sweep ??= setInterval(
      () => this.#expire(Date.now()),
      Math.min(1000, this.#limits.unidentifiedMs),
    ).unref();
  }

  /** Its head arrived: from now on it is a request like any other (identified or refused). */
  headed(socket: Socket): void {
    this.#headless.delete(socket);
  }

  get size(): number {
    return this.#headless.size;
  }

  /** Closes one head-less connection (the likeliest not to be a real client); false when there is none. */
  #makeRoom(now: number): boolean {
    let silent: Socket | undefined;
    let looked = 0;
    for (const [socket, since] of this.#headless) {
      if (socket.bytesRead > 0) return this.#evict(socket);
      if (silent === undefined && now - since >= SILENT_GRACE_MS) silent = socket;
      if (++looked >= EVICT_SCAN) break;
    }
    const victim = silent ?? this.#headless.keys().next().value;
    return victim !== undefined && this.#evict(victim);
  }

  #expire(now: number): void {
    for (const [socket, since] of this.#headless) {
      if (now - since < this.#limits.unidentifiedMs) break;
      this.evicted++;
      this.#forget(socket);
      // The same answer Node gives at its own headers timeout, which this one backs up.
      writeRawError(
        socket,
        new AppError('ERR_PROXY_BAD_REQUEST', 'the request head took too long to arrive'),
      );
    }
    if (this.#headless.size === 0 && this.#sweep) {
      clearInterval(this.#sweep);
      this.#sweep = undefined;
    }
  }

  #evict(socket: Socket): true {
    this.evicted++;
    this.#close(socket);
    return true;
  }

  #close(socket: Socket): void {
    this.#forget(socket);
    socket.destroy();
  }

  #forget(socket: Socket): void {
    this.#headless.delete(socket);
    if (this.#gone.has(socket)) return;
    this.#gone.add(socket);
    this.#open--;
  }

  close(): void {
    if (this.#sweep) clearInterval(this.#sweep);
    this.#sweep = undefined;
  }
}

export class ConnectionLimiter {
  readonly #max: number;
  readonly #byProfile = new Map<string, number>();
  readonly #counted = new WeakSet<Socket>();
  readonly #admission: Admission;

  constructor(limits: ProxyLimits) {
    this.#max = limits.maxConnectionsPerProfile;
    this.#admission = new Admission(limits);
  }

  /** A client connection was accepted on the outer listener: tracked until its first head arrives. */
  accepted(socket: Socket): void {
    this.#admission.add(socket, Date.now());
  }

  /** A complete request head arrived on this client connection. */
  headed(socket: Socket): void {
    this.#admission.headed(socket);
  }

  /** Connections open now without a head yet, and how many were closed for their budget or deadline. */
  admission(): { headless: number; evicted: number; refused: number } {
    const a = this.#admission;
    return { headless: a.size, evicted: a.evicted, refused: a.refused };
  }

  close(): void {
    this.#admission.close();
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
