import type { Duplex } from 'node:stream';
import type { SessionInfo } from './types.js';

/**
 * Open client connections by what let them in (issue 18 item 2): the session that identified them, and
 * for an injected WebSocket the credential on its handshake. A revoked or expired session, a deleted
 * profile or a removed connection closes what it opened at once: tunnels and WebSockets otherwise
 * outlive the change (a tunnel only asks again on its next request, a WebSocket never does).
 */
interface SessionEntry {
  readonly profile: string;
  readonly sockets: Set<Duplex>;
  timer: NodeJS.Timeout | undefined;
}

/** setTimeout's longest delay; a later expiry re-arms when it fires. */
const MAX_DELAY = 2 ** 31 - 1;

const credentialKey = (profile: string, provider: string, connection: string): string =>
  `${profile}\0${provider}\0${connection}`;

export class LiveSockets {
  readonly #sessions = new Map<string, SessionEntry>();
  readonly #credentials = new Map<string, Set<Duplex>>();
  readonly #clock: () => number;

  constructor(clock: () => number = Date.now) {
    this.#clock = clock;
  }

  /** This client connection was let in by `session` (idempotent: a keep-alive socket binds per request). */
  bindSession(socket: Duplex, session: SessionInfo): void {
    let e = this.#sessions.get(session.id);
    if (e?.sockets.has(socket)) return;
    if (!e) {
      e = { profile: session.profile, sockets: new Set(), timer: undefined };
      this.#sessions.set(session.id, e);
      this.#arm(session.id, e, session.expiresAt);
    }
    const entry = e;
    entry.sockets.add(socket);
    socket.once('close', () => {
      entry.sockets.delete(socket);
      if (entry.sockets.size > 0 || this.#sessions.get(session.id) !== entry) return;
      clearTimeout(entry.timer);
      this.#sessions.delete(session.id);
    });
  }

  /** A WebSocket (or any long-lived stream) that carries this credential's injection. */
  bindCredential(socket: Duplex, profile: string, provider: string, connection: string): void {
    const key = credentialKey(profile, provider, connection);
    let set = this.#credentials.get(key);
    if (!set) this.#credentials.set(key, (set = new Set()));
    const sockets = set;
    sockets.add(socket);
    socket.once('close', () => {
      sockets.delete(socket);
      if (sockets.size === 0 && this.#credentials.get(key) === sockets) this.#credentials.delete(key);
    });
  }

  /** Closes every connection these sessions let in; the number closed. */
  closeSessions(ids: Iterable<string>): number {
    let n = 0;
    for (const id of ids) {
      const e = this.#sessions.get(id);
      if (!e) continue;
      this.#sessions.delete(id);
      clearTimeout(e.timer);
      n += destroyAll(e.sockets);
    }
    return n;
  }

  /** Every connection of a profile: its sessions' and its credentials'. */
  closeProfile(profile: string): number {
    const ids = [...this.#sessions].filter(([, e]) => e.profile === profile).map(([id]) => id);
    let n = this.closeSessions(ids);
    const prefix = `${profile}\0`;
    for (const [key, set] of this.#credentials) {
      if (!key.startsWith(prefix)) continue;
      this.#credentials.delete(key);
      n += destroyAll(set);
    }
    return n;
  }

  /** Every stream that carries this credential. */
  closeCredential(profile: string, provider: string, connection: string): number {
    const key = credentialKey(profile, provider, connection);
    const set = this.#credentials.get(key);
    if (!set) return 0;
    this.#credentials.delete(key);
    return destroyAll(set);
  }

  /** The ids of the sessions with open connections (a reconnected change feed checks them all). */
  sessionIds(): string[] {
    return [...this.#sessions.keys()];
  }

  /** Sessions with open connections (tests, stats). */
  get sessions(): number {
    return this.#sessions.size;
  }

  close(): void {
    for (const e of this.#sessions.values()) clearTimeout(e.timer);
    this.#sessions.clear();
    this.#credentials.clear();
  }

  #arm(id: string, e: SessionEntry, expiresAt: number): void {
    const left = expiresAt - this.#clock();
    if (left <= 0) {
      queueMicrotask(() => this.closeSessions([id]));
      return;
    }
    e.timer = setTimeout(
      () => {
        if (this.#sessions.get(id) !== e) return;
        if (expiresAt - this.#clock() > 0) this.#arm(id, e, expiresAt);
        else this.closeSessions([id]);
      },
      Math.min(left, MAX_DELAY),
    );
    e.timer.unref();
  }
}

function destroyAll(sockets: Set<Duplex>): number {
  const list = [...sockets];
  sockets.clear();
  for (const s of list) s.destroy();
  return list.length;
}
