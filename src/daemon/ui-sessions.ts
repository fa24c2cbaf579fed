import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { AppError } from '../errors.js';
import { assertName, isValidName } from '../names.js';
import type { KvStore, RecordValue } from '../vault/types.js';

/**
 * The dashboard's one-time links and cookie sessions (SPEC section 11).
 *
 * A link token (60 s, single use) is minted for the profile whose PoP-signed request asked for it.
 * Links live in this process only: the URL names this node's control port, so this node is the one
 * that exchanges it, and a Map delete is the atomic "used once" that the shared store cannot give.
 *
 * Cookie sessions (12 h) are stored under `ui/session/<sha256(token)>`, sealed like every record, so
 * that in team mode every node of the store accepts them. Only the hash is stored. A session records
 * the key its profile had (a profile deleted and made again does not inherit it), the node that issued
 * it and that node's run: a daemon that stops deletes the sessions it issued, and one that starts
 * deletes those its node left behind (a crash), so a session ends with the daemon that issued it.
 */

export interface UiSession {
  /** The first 16 hex digits of the hash: names the session in the audit log, never opens it. */
  readonly id: string;
  readonly profile: string;
  /** The synchronizer token every state-changing request must send back (X-Authsome-CSRF). */
  readonly csrf: string;
  readonly createdAt: number;
  readonly expiresAt: number;
  readonly node: string;
}

export interface UiSessionOptions {
  /** The node's name (team mode) or "local": whose sessions a start may delete. */
  readonly node: string;
  /** The public key a profile has now (registry), undefined when it does not exist. */
  readonly profileKey: (handle: string) => Promise<string | undefined>;
  readonly now?: () => number;
  readonly linkTtlMs?: number;
  readonly sessionTtlMs?: number;
}

export const LINK_TTL_MS = 60_000;
export const SESSION_TTL_MS = 12 * 3_600_000;
const PREFIX = 'ui/session/';
const TOKEN_SHAPE = /^[A-Za-z0-9_-]{43}$/;
/** Links not yet used are few (one per `authsome ui`); past this, the oldest go first. */
const MAX_LINKS = 256;

const sha256 = (s: string): string => createHash('sha256').update(s).digest('hex');
const newToken = (): string => randomBytes(32).toString('base64url');

export function invalidLink(): AppError {
  return new AppError(
    'ERR_UI_SESSION_INVALID',
    'this dashboard link is unknown, already used or expired',
    'run `authsome ui` again for a new link (each works once, within 60 s)',
  );
}

export function noSession(): AppError {
  return new AppError(
    'ERR_UI_SESSION_INVALID',
    'no dashboard session (logged out, expired, or the daemon that issued it stopped)',
    'run `authsome ui` for a new link',
  );
}

interface Link {
  readonly profile: string;
  readonly key: string;
  readonly expiresAt: number;
}

function parse(v: RecordValue): (UiSession & { key: string; run: string }) | undefined {
  const { id, profile, csrf, createdAt, expiresAt, node, key, run } = v;
  if (
    typeof id !== 'string' ||
    !isValidName(profile) ||
    typeof csrf !== 'string' ||
    typeof createdAt !== 'number' ||
    typeof expiresAt !== 'number' ||
    typeof node !== 'string' ||
    typeof key !== 'string' ||
    typeof run !== 'string'
  )
    return undefined;
  return { id, profile, csrf, createdAt, expiresAt, node, key, run };
}

export class UiSessionStore {
  readonly #store: KvStore;
  readonly #node: string;
  /** This daemon run: the sessions it issued are the ones its stop deletes. */
  readonly #run = randomBytes(8).toString('hex');
  readonly #profileKey: (handle: string) => Promise<string | undefined>;
  readonly #now: () => number;
  readonly #linkTtlMs: number;
  readonly #sessionTtlMs: number;
  readonly #links = new Map<string, Link>();

  constructor(store: KvStore, opts: UiSessionOptions) {
    this.#store = store;
    this.#node = opts.node;
    this.#profileKey = opts.profileKey;
    this.#now = opts.now ?? Date.now;
    this.#linkTtlMs = opts.linkTtlMs ?? LINK_TTL_MS;
    this.#sessionTtlMs = opts.sessionTtlMs ?? SESSION_TTL_MS;
  }

  get sessionTtlMs(): number {
    return this.#sessionTtlMs;
  }

  /** A one-time link token for the (verified) profile. */
  async mintLink(profile: string, ttlMs = this.#linkTtlMs): Promise<{ token: string; expiresAt: number }> {
    assertName('profile', profile);
    const key = await this.#profileKey(profile);
    if (key === undefined)
      throw new AppError('ERR_PROFILE_NOT_FOUND', `no profile "${profile}"`, 'run `authsome profile list`');
    const now = this.#now();
    for (const [h, l] of this.#links) if (l.expiresAt <= now) this.#links.delete(h);
    while (this.#links.size >= MAX_LINKS) this.#links.delete(this.#links.keys().next().value!);
    const token = newToken();
    const expiresAt = now + Math.min(ttlMs, this.#linkTtlMs);
    this.#links.set(sha256(token), { profile, key, expiresAt });
    return { token, expiresAt };
  }

  /**
   * Exchanges a link token for a cookie session: the link is gone before anything is awaited, so two
   * requests racing with one link get one session between them.
   */
  async exchange(token: unknown): Promise<{ cookie: string; session: UiSession }> {
    if (typeof token !== 'string' || !TOKEN_SHAPE.test(token)) throw invalidLink();
    const hash = sha256(token);
    const link = this.#links.get(hash);
    this.#links.delete(hash);
    const now = this.#now();
    if (link === undefined || link.expiresAt <= now) throw invalidLink();
    if ((await this.#profileKey(link.profile)) !== link.key) throw invalidLink();
    const cookie = newToken();
    const cookieHash = sha256(cookie);
    const session: UiSession = {
      id: cookieHash.slice(0, 16),
      profile: link.profile,
      csrf: newToken(),
      createdAt: now,
      expiresAt: now + this.#sessionTtlMs,
      node: this.#node,
    };
    await this.#store.put(`${PREFIX}${cookieHash}`, { ...session, key: link.key, run: this.#run });
    return { cookie, session };
  }

  /** The live session a cookie value names, or undefined (unknown, expired, its profile gone or re-made). */
  async verify(cookie: string | undefined): Promise<UiSession | undefined> {
    if (cookie === undefined || !TOKEN_SHAPE.test(cookie)) return undefined;
    const key = `${PREFIX}${sha256(cookie)}`;
    const v = await this.#store.get(key);
    const rec = v === undefined ? undefined : parse(v);
    if (rec === undefined) return undefined;
    if (rec.expiresAt <= this.#now() || (await this.#profileKey(rec.profile)) !== rec.key) {
      await this.#store.del(key).catch(() => undefined);
      return undefined;
    }
    const { key: _k, run: _r, ...session } = rec;
    return session;
  }

  /** Logout: the session behind this cookie is deleted (true when there was one). */
  async revoke(cookie: string): Promise<boolean> {
    if (!TOKEN_SHAPE.test(cookie)) return false;
    const key = `${PREFIX}${sha256(cookie)}`;
    if ((await this.#store.get(key)) === undefined) return false;
    await this.#store.del(key);
    return true;
  }

  /** Constant-time comparison of a request's CSRF header with the session's token. */
  static csrfMatches(session: UiSession, sent: string | undefined): boolean {
    if (sent === undefined) return false;
    const a = Buffer.from(sent);
    const b = Buffer.from(session.csrf);
    return a.length === b.length && timingSafeEqual(a, b);
  }

  /** At daemon start: what this node left behind (a crash skips the stop below), and what expired. */
  async start(): Promise<number> {
    const now = this.#now();
    return this.#delete((r) => r === undefined || r.node === this.#node || r.expiresAt <= now);
  }

  /** At daemon stop: the sessions this run issued end with it. */
  async stop(): Promise<number> {
    this.#links.clear();
    return this.#delete((r) => r !== undefined && r.run === this.#run);
  }

  async #delete(match: (r: ReturnType<typeof parse>) => boolean): Promise<number> {
    const gone: string[] = [];
    for (const key of await this.#store.keys(PREFIX)) {
      // A record that does not open (damaged) is no session: it goes too.
      const v = await this.#store.get(key).catch(() => undefined);
      if (match(v === undefined ? undefined : parse(v))) gone.push(key);
    }
    if (gone.length > 0) await this.#store.batch(gone.map((key) => ({ type: 'del' as const, key })));
    return gone.length;
  }
}
