import { createHash, randomBytes } from 'node:crypto';
import { AppError } from '../errors.js';
import { assertName, isValidName } from '../names.js';
import type { SessionInfo, SessionVerifier } from '../proxy/types.js';
import { sessionKey } from '../vault/keys.js';
import type { KvStore, RecordValue } from '../vault/types.js';
import type { ChangeFeed } from '../vault/change-feed.js';

/**
 * Session tokens for proxy traffic (SPEC section 2). Only sha256(token) is stored, as the record
 * key `session/<hex>`; the token itself exists only in the minting response.
 *
 * Those keys are not profile-prefixed, so list/revoke scan `session/` and filter on
 * record.profile. That is acceptable here: verify finds a record only through the secret's hash,
 * the scan is owner-scoped by the filter, and a session record never holds a credential.
 */

export type SessionAllow = ReadonlyArray<{ provider: string; connection?: string }>;

export interface SessionMeta extends SessionInfo {
  readonly createdAt: number;
  readonly label: string | undefined;
}

export interface MintInput {
  profile: string;
  allow?: SessionAllow;
  ttlMs: number;
  label?: string;
  /** A doctor probe session (SessionInfo.probe). */
  probe?: boolean;
}

const PREFIX = 'session/';
const TOKEN_SHAPE = /^[A-Za-z0-9_-]{43}$/;
const LABEL_SHAPE = /^[^\p{Cc}]{1,128}$/u;
const DEFAULT_CACHE_MS = 5_000;
const MAX_CACHE = 10_000;

const hashToken = (token: string): string => createHash('sha256').update(token).digest('hex');

function parseAllow(v: unknown): SessionAllow | undefined | null {
  if (v === null || v === undefined) return undefined;
  if (!Array.isArray(v)) return null;
  const out: Array<{ provider: string; connection?: string }> = [];
  for (const e of v as unknown[]) {
    if (e === null || typeof e !== 'object') return null;
    const { provider, connection } = e as Record<string, unknown>;
    if (
      !isValidName(provider) ||
      (connection !== undefined && connection !== null && !isValidName(connection))
    )
      return null;
    out.push(isValidName(connection) ? { provider, connection } : { provider });
  }
  return out;
}

/** undefined for a malformed record: it then counts as no session at all (fail closed). */
function parseRecord(v: RecordValue): (SessionMeta & { key: string | undefined }) | undefined {
  const { id, profile, expiresAt, createdAt, label, probe } = v;
  const key = typeof v['key'] === 'string' ? v['key'] : undefined;
  const allow = parseAllow(v['allow']);
  if (
    typeof id !== 'string' ||
    !isValidName(profile) ||
    typeof expiresAt !== 'number' ||
    typeof createdAt !== 'number'
  )
    return undefined;
  if (allow === null || (label !== null && label !== undefined && typeof label !== 'string'))
    return undefined;
  if (probe !== undefined && typeof probe !== 'boolean') return undefined;
  return {
    id,
    profile,
    allow,
    expiresAt,
    createdAt,
    label: typeof label === 'string' ? label : undefined,
    key,
    ...(probe === true ? { probe: true } : {}),
  };
}

/** Who was told about revoked sessions (the proxy closes what they opened). */
export type RevokeListener = (revoked: ReadonlyArray<{ id: string; profile: string }>) => void;

export class SessionStore implements SessionVerifier {
  readonly #store: KvStore;
  readonly #clock: () => number;
  readonly #cacheMs: number;
  readonly #maxTtlMs: number;
  /** token hash -> verified session and until when the cached answer may be used. */
  readonly #cache = new Map<string, { info: SessionMeta; until: number }>();
  /**
   * The profile's key at this moment (its registry entry), or undefined when there is no such profile.
   * A session is bound to the key its profile had when it was minted: a profile deleted and created
   * again under the same name (a new key) does not inherit the old one's sessions (issue 18 item 5).
   */
  readonly #profileKey: ((handle: string) => Promise<string | undefined>) | undefined;
  readonly #revokeListeners = new Set<RevokeListener>();
  /** Bumped after every revocation, so a verify that raced with one does not re-cache. */
  #epoch = 0;
  /**
   * Team mode (SPEC section 10): changes made through any node. A changed session or registry record
   * drops what is cached and moves the epoch (open connections verify again); while the feed is down
   * nothing is answered from memory.
   */
  readonly #feed: ChangeFeed | undefined;

  constructor(
    store: KvStore,
    opts: {
      clock?: () => number;
      cacheMs?: number;
      maxTtlMs?: number;
      profileKey?: (handle: string) => Promise<string | undefined>;
      feed?: ChangeFeed;
    } = {},
  ) {
    this.#store = store;
    this.#feed = opts.feed;
    opts.feed?.subscribe(PREFIX, (key) => {
      this.#epoch++;
      if (key === undefined) this.#cache.clear();
      else this.#cache.delete(key.slice(PREFIX.length));
    });
    // A profile deleted (or deleted and created again with a new key) elsewhere: its sessions' cached
    // key check no longer holds.
    opts.feed?.subscribe('registry/', () => {
      this.#epoch++;
      this.#cache.clear();
    });
    this.#profileKey = opts.profileKey;
    this.#clock = opts.clock ?? Date.now;
    this.#cacheMs = opts.cacheMs ?? DEFAULT_CACHE_MS;
    this.#maxTtlMs = opts.maxTtlMs ?? Number.MAX_SAFE_INTEGER;
  }

  async mint(input: MintInput): Promise<{ id: string; token: string; expiresAt: number }> {
    const profile = assertName('profile', input.profile);
    const allow = input.allow === undefined ? undefined : parseAllow(input.allow);
    if (allow === null)
      throw new AppError(
        'ERR_INPUT_INVALID',
        'session allow list must be provider/connection names',
        'write it as provider or provider/connection',
      );
    const { ttlMs, label } = input;
    if (!Number.isSafeInteger(ttlMs) || ttlMs <= 0 || ttlMs > this.#maxTtlMs) {
      throw new AppError(
        'ERR_INPUT_INVALID',
        'session lifetime out of range',
        'choose a positive duration no longer than the configured session.maxTtl',
      );
    }
    if (label !== undefined && !LABEL_SHAPE.test(label)) {
      throw new AppError(
        'ERR_INPUT_INVALID',
        'session label must be 1-128 printable characters',
        'shorten the label',
      );
    }
    const key = this.#profileKey ? await this.#profileKey(profile) : undefined;
    if (this.#profileKey && key === undefined)
      throw new AppError('ERR_PROFILE_NOT_FOUND', `no profile "${profile}"`, 'run `authsome profile list`');
    const token = randomBytes(32).toString('base64url');
    const hash = hashToken(token);
    const now = this.#clock();
    const rec = {
      id: hash.slice(0, 16),
      profile,
      ...(key !== undefined ? { key } : {}),
      allow: allow ?? null,
      expiresAt: now + ttlMs,
      createdAt: now,
      label: label ?? null,
      ...(input.probe === true ? { probe: true } : {}),
    };
    await this.#store.put(sessionKey(hash), rec);
    return { id: rec.id, token, expiresAt: rec.expiresAt };
  }

  /** One answer (undefined) for unknown, malformed, another handle's, expired and revoked. */
  async verify(handle: string, token: string): Promise<SessionInfo | undefined> {
    if (typeof handle !== 'string' || typeof token !== 'string' || !TOKEN_SHAPE.test(token)) return undefined;
    const hash = hashToken(token);
    const now = this.#clock();
    const hit = this.#cache.get(hash);
    let info: SessionMeta | undefined;
    if (hit !== undefined && hit.until > now && this.#feedUp()) {
      info = hit.info;
    } else {
      this.#cache.delete(hash);
      const epoch = this.#epoch;
      const v = await this.#store.get(sessionKey(hash));
      const rec = v === undefined ? undefined : parseRecord(v);
      info = rec && (await this.#keyStillHolds(rec)) ? rec : undefined;
      if (info !== undefined && epoch === this.#epoch) this.#remember(hash, info, now);
    }
    if (info === undefined || info.profile !== handle || info.expiresAt <= this.#clock()) return undefined;
    return {
      id: info.id,
      profile: info.profile,
      allow: info.allow,
      expiresAt: info.expiresAt,
      ...(info.probe === true ? { probe: true } : {}),
    };
  }

  /**
   * Bumped by every revocation: see SessionVerifier.epoch. While the change feed is down it moves on
   * every call, so no connection trusts an identity it verified earlier (a revocation may be unseen).
   */
  epoch(): number {
    if (!this.#feedUp()) this.#epoch++;
    return this.#epoch;
  }

  #feedUp(): boolean {
    return this.#feed?.up ?? true;
  }

  /** Told after every revocation is durable (revoke, revokeAll, purge). */
  onRevoke(listener: RevokeListener): () => void {
    this.#revokeListeners.add(listener);
    return () => this.#revokeListeners.delete(listener);
  }

  async #keyStillHolds(rec: { profile: string; key: string | undefined }): Promise<boolean> {
    if (!this.#profileKey) return true;
    const current = await this.#profileKey(rec.profile);
    // A record without a key (minted before keys were recorded) cannot prove it: fail closed.
    return current !== undefined && rec.key === current;
  }

  /** The profile's live sessions: metadata only; the token was never stored. */
  async list(profile: string): Promise<SessionMeta[]> {
    const now = this.#clock();
    return (await this.#scan((m) => m.profile === profile && m.expiresAt > now))
      .map(({ meta: { key: _key, ...meta } }) => meta)
      .sort((a, b) => a.createdAt - b.createdAt);
  }

  /** Not found and not yours are the same error. Returns what was revoked. */
  async revoke(profile: string, id: string): Promise<SessionMeta> {
    const [row] = await this.#delete((m) => m.profile === profile && m.id === id);
    if (row === undefined)
      throw new AppError(
        'ERR_SESSION_NOT_FOUND',
        'no such session',
        "list this profile's session tokens with `authsome proxy revoke` (no id)",
      );
    return row.meta;
  }

  async revokeAll(profile: string): Promise<number> {
    return (await this.#delete((m) => m.profile === profile)).length;
  }

  async purgeExpired(): Promise<number> {
    const now = this.#clock();
    return (await this.#delete((m) => m.expiresAt <= now)).length;
  }

  async #scan(
    keep: (m: SessionMeta) => boolean,
  ): Promise<Array<{ key: string; meta: SessionMeta & { key: string | undefined } }>> {
    const out: Array<{ key: string; meta: SessionMeta & { key: string | undefined } }> = [];
    for (const { key, value } of await this.#store.list(PREFIX)) {
      const meta = parseRecord(value);
      if (meta !== undefined && keep(meta)) out.push({ key, meta });
    }
    return out;
  }

  async #delete(match: (m: SessionMeta) => boolean): Promise<Array<{ key: string; meta: SessionMeta }>> {
    const rows = await this.#scan(match);
    if (rows.length === 0) return rows;
    await this.#store.batch(rows.map((r) => ({ type: 'del' as const, key: r.key })));
    // After the delete is durable: any verify that read before it must not cache what it read.
    this.#epoch++;
    for (const r of rows) this.#cache.delete(r.key.slice(PREFIX.length));
    const revoked = rows.map((r) => ({ id: r.meta.id, profile: r.meta.profile }));
    for (const l of this.#revokeListeners) {
      try {
        l(revoked);
      } catch {
        // a listener's failure must not turn a durable revocation into an error
      }
    }
    return rows;
  }

  #remember(hash: string, info: SessionMeta, now: number): void {
    if (this.#cache.size >= MAX_CACHE) {
      for (const [k, e] of this.#cache) if (e.until <= now) this.#cache.delete(k);
      // Still full: drop the oldest entry. It is only a cache; the store stays the authority.
      if (this.#cache.size >= MAX_CACHE) this.#cache.delete(this.#cache.keys().next().value!);
    }
    this.#cache.set(hash, { info, until: now + this.#cacheMs });
  }
}

/**
 * The allow list of a session minted inside another (a nested `authsome run`): never wider than the
 * parent's (issue 18 item 6). `requested` undefined = as wide as the parent. An entry the parent does
 * not cover is refused rather than dropped (a silent narrowing would look like a broken credential);
 * an entry naming a provider the parent limits to one connection is narrowed to that connection.
 */
export function narrowAllow(
  parent: SessionAllow | undefined,
  requested: SessionAllow | undefined,
): SessionAllow | undefined {
  if (parent === undefined) return requested;
  if (requested === undefined) return parent;
  const out: Array<{ provider: string; connection?: string }> = [];
  for (const r of requested) {
    const within = parent.filter(
      (p) =>
        p.provider === r.provider &&
        (p.connection === undefined || r.connection === undefined || p.connection === r.connection),
    );
    if (within.length === 0) {
      const name = r.connection === undefined ? r.provider : `${r.provider}:${r.connection}`;
      const wide = parent.map((p) =>
        p.connection === undefined ? p.provider : `${p.provider}:${p.connection}`,
      );
      throw new AppError(
        'ERR_AUTH_FORBIDDEN',
        `--allow ${name} is wider than the session this command runs in (it allows ${wide.join(', ')})`,
        'a session inside another can only narrow it: allow a subset of those, or leave out --allow',
      );
    }
    for (const p of within) {
      const connection = r.connection ?? p.connection;
      out.push(connection === undefined ? { provider: r.provider } : { provider: r.provider, connection });
    }
  }
  return out;
}
