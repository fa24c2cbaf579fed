import { randomBytes } from 'node:crypto';
import { AppError, isAppError } from '../errors.js';
import { assertName, closest } from '../names.js';
import { Secret } from '../secret.js';
import type { KvStore, RecordValue } from '../vault/types.js';
import { profileScope } from '../vault/scope.js';
import type { CredentialSource, ResolvedCredential } from '../proxy/types.js';
import { planInjection } from '../providers/inject.js';
import { tenantHostsProblem, tenantWildcards } from '../providers/host.js';
import type { ProviderDef } from '../providers/types.js';
import type { TokenSet } from '../providers/oauth.js';
import type { ChangeFeed } from '../vault/change-feed.js';

/** What `connection list/show` returns: metadata only, never a field value. */
export interface ConnectionMeta {
  provider: string;
  connection: string;
  flow: string;
  fields: string[];
  isDefault: boolean;
  createdAt: string;
  updatedAt: string;
  expiresAt?: string;
  /** The tenant hosts it is bound to, for providers with a wildcard host. */
  hosts?: string[];
}

export interface StoredConnection {
  provider: string;
  connection: string;
  flow: string;
  fields: Record<string, string>;
  createdAt: string;
  updatedAt: string;
  /**
   * Random, new on every write: what a refresh compares to know the record is still the one it read
   * (updatedAt alone would let a re-login within the same millisecond pass). Absent in records
   * written before it existed.
   */
  rev?: string;
  /** OAuth: when the access token expires, and the refresh token (never injected). */
  expiresAt?: string;
  refreshToken?: string;
  /** The tenant hosts this connection is bound to (providers with a wildcard host; providers/host.ts). */
  hosts?: string[];
}

export type Refresher = (handle: string, rec: StoredConnection) => Promise<StoredConnection>;

const CACHE_MS = 30_000;
/**
 * The largest header line (or query string) a credential may make: common servers refuse longer lines
 * (nginx: 8 KiB buffers; Node: 16 KiB heads), so a longer value could only fail on every use (issue 18 item 7).
 */
export const MAX_INJECTED_LINE = 8192;

function ignoreCorrupt(e: unknown): undefined {
  if (isAppError(e) && e.code === 'ERR_VAULT_CORRUPT') return undefined;
  throw e;
}

function secretsOf(plain: Record<string, string>): Readonly<Record<string, Secret>> {
  const fields: Record<string, Secret> = {};
  for (const [k, v] of Object.entries(plain)) fields[k] = new Secret(v);
  return Object.freeze(fields);
}

/**
 * The injection the proxy will render, tried at login: a value it could never send (surrounding
 * whitespace, control characters, a ':' in a Basic user-id) is refused now rather than failing every
 * request later. The messages name the field, never the value.
 */
function checkSendable(def: ProviderDef, fields: Record<string, string>): void {
  try {
    const plan = planInjection(def, secretsOf(fields));
    for (const [name, value] of plan.setHeaders) {
      const bytes = name.length + 2 + Buffer.byteLength(value);
      if (bytes > MAX_INJECTED_LINE)
        throw new AppError(
          'ERR_INPUT_INVALID',
          `the ${name} header this credential makes would be ${bytes} bytes; upstream servers refuse header lines over ${MAX_INJECTED_LINE} bytes (e.g. nginx's 8 KiB buffers), so every request would fail`,
          'check that you pasted the credential itself (one token, not a file or a list)',
        );
    }
    const query = plan.query.reduce((n, [k, v]) => n + k.length + 1 + encodeURIComponent(v).length, 0);
    if (query > MAX_INJECTED_LINE)
      throw new AppError(
        'ERR_INPUT_INVALID',
        `the query parameters this credential makes would be ${query} bytes; upstream servers refuse request lines over ${MAX_INJECTED_LINE} bytes, so every request would fail`,
        'check that you pasted the credential itself (one token, not a file or a list)',
      );
  } catch (e) {
    if (isAppError(e) && e.code === 'ERR_INPUT_INVALID') throw e;
    if (!isAppError(e) || e.code !== 'ERR_PROVIDER_INVALID') throw e;
    throw new AppError(
      'ERR_INPUT_INVALID',
      e.message,
      'paste the credential again: one line, without surrounding spaces or control characters',
    );
  }
}

/**
 * A profile with connections of this provider but no default: refused (403) rather than sent without
 * a credential, which would only earn a confusing 401 upstream. With no connection at all the request
 * goes on without one (public repositories and registries keep working).
 */
function usable(
  value: ResolvedCredential | undefined | 'no-default',
  provider: string,
): ResolvedCredential | undefined {
  if (value !== 'no-default') return value;
  throw new AppError(
    'ERR_PROXY_CONNECTION_DENIED',
    // The proxy's JSON error carries only the message: it names the fix itself.
    `this profile has ${provider} connections but none is the default: send X-Authsome-Connection, or run \`authsome connection default ${provider} <name>\``,
    `name one with the X-Authsome-Connection header, or set a default: authsome connection default ${provider} <name>`,
  );
}

/**
 * Credential records of every profile. Each call goes through profileScope(handle), so a
 * handle can only ever address keys under its own prefix. Decrypted credentials are cached
 * briefly for the proxy's hot path and dropped on every change.
 */
export class ConnectionService implements CredentialSource {
  readonly #store: KvStore;
  /** Throws ERR_PROVIDER_NOT_FOUND (with a "did you mean") for unknown names. */
  readonly #provider: (name: string) => ProviderDef;
  /** 'no-default': the profile has connections of the provider but none is its default. */
  readonly #cache = new Map<
    string,
    { until: number; value: ResolvedCredential | undefined | 'no-default' }
  >();
  /**
   * Bumped by every change: a resolve that read the store before a change landed (a logout while it
   * awaited) still answers its own request, but must not cache what it read for the next 30 s.
   */
  #generation = 0;
  #refresher: Refresher | undefined;
  readonly #removeListeners = new Set<(handle: string, provider: string, connection: string) => void>();
  readonly #changes = new Map<string, Promise<void>>();

  /** Team mode: a change through any node drops the profile's cached credentials; down = no cache. */
  readonly #feed: ChangeFeed | undefined;

  constructor(store: KvStore, provider: (name: string) => ProviderDef, opts: { feed?: ChangeFeed } = {}) {
    this.#store = store;
    this.#provider = provider;
    this.#feed = opts.feed;
    // Anything under profile/<h>/ (connections, defaults, OAuth clients, policies) drops that profile's
    // entries; an unknown change drops them all.
    opts.feed?.subscribe('profile/', (key) => {
      const handle = key?.split('/')[1];
      if (handle === undefined) {
        this.#generation++;
        this.#cache.clear();
      } else this.#invalidate(handle);
    });
  }

  /**
   * Changes to one provider's connections of one profile run one at a time: each reads the current
   * default and the other connections, then writes. Two first logins at once would both see no
   * default and both report being it; a set-default racing a remove could leave the default naming a
   * connection that is gone.
   */
  #serial<T>(handle: string, provider: string, change: () => Promise<T>): Promise<T> {
    const key = `${handle}/${provider}`;
    const run = (this.#changes.get(key) ?? Promise.resolve()).then(change);
    const tail = run.then(
      () => undefined,
      () => undefined,
    );
    this.#changes.set(key, tail);
    void tail.then(() => {
      if (this.#changes.get(key) === tail) this.#changes.delete(key);
    });
    return run;
  }

  /** Told after a connection's removal is durable (the proxy closes the streams that carry it). */
  onRemoved(listener: (handle: string, provider: string, connection: string) => void): void {
    this.#removeListeners.add(listener);
  }

  setRefresher(fn: Refresher): void {
    this.#refresher = fn;
  }

  #requireProvider(name: string): ProviderDef {
    return this.#provider(assertName('provider', name));
  }

  async put(
    handle: string,
    provider: string,
    connection: string,
    fields: Record<string, string>,
    flow: string,
    hosts?: string[],
  ): Promise<{ created: boolean; isDefault: boolean }> {
    const def = this.#requireProvider(provider);
    assertName('connection', connection);
    // A new key for a bound connection, given without --host, keeps the binding (a key rotation must
    // not quietly stop the connection working on the user's own site).
    if (!hosts?.length && tenantWildcards(def).length > 0)
      hosts = (await this.stored(handle, provider, connection).catch(ignoreCorrupt))?.hosts;
    const hostProblem = tenantHostsProblem(def, hosts);
    if (hostProblem)
      throw new AppError(
        'ERR_INPUT_INVALID',
        hostProblem,
        `run \`authsome provider show ${provider}\` to see its hosts`,
      );
    const missing = def.fields.filter((f) => typeof fields[f] !== 'string' || fields[f] === '');
    const extra = Object.keys(fields).filter((f) => !def.fields.includes(f));
    if (missing.length > 0 || extra.length > 0) {
      throw new AppError(
        'ERR_INPUT_INVALID',
        `provider "${provider}" needs the fields ${def.fields.join(', ')}${missing.length ? `; missing ${missing.join(', ')}` : ''}${extra.length ? `; unknown ${extra.join(', ')}` : ''}`,
        `run \`authsome provider show ${provider}\` to see what it needs`,
      );
    }
    checkSendable(def, fields);
    const { created, isDefault } = await this.#write(handle, provider, connection, {
      fields,
      flow,
      ...(hosts?.length ? { hosts: [...new Set(hosts)] } : {}),
    });
    return { created, isDefault };
  }

  /** Stores an OAuth token set as the connection's access_token (+ refresh token and expiry). */
  async putTokens(
    handle: string,
    provider: string,
    connection: string,
    tokens: TokenSet,
    flow: string,
    /** For a refresh: the record it started from; the write happens only if that is still the one stored. */
    opts: { replaces?: Pick<StoredConnection, 'updatedAt' | 'rev'> } = {},
  ): Promise<StoredConnection> {
    this.#requireProvider(provider);
    assertName('connection', connection);
    const prior = await this.stored(handle, provider, connection);
    const refresh = tokens.refreshToken?.reveal() ?? (flow === prior?.flow ? prior?.refreshToken : undefined);
    return (
      await this.#write(
        handle,
        provider,
        connection,
        {
          fields: { access_token: tokens.accessToken.reveal() },
          flow,
          ...(tokens.expiresAt ? { expiresAt: new Date(tokens.expiresAt).toISOString() } : {}),
          ...(refresh ? { refreshToken: refresh } : {}),
          ...(prior?.hosts ? { hosts: prior.hosts } : {}),
        },
        opts.replaces,
      )
    ).record;
  }

  #write(
    handle: string,
    provider: string,
    connection: string,
    data: Pick<StoredConnection, 'fields' | 'flow' | 'expiresAt' | 'refreshToken' | 'hosts'>,
    /**
     * A refresh replaces one version of a connection: it must not bring back a connection removed
     * while it ran, nor write one account's tokens over a login that replaced it meanwhile.
     */
    replaces?: Pick<StoredConnection, 'updatedAt' | 'rev'>,
  ): Promise<{ created: boolean; isDefault: boolean; record: StoredConnection }> {
    return this.#serial(handle, provider, () => this.#writeNow(handle, provider, connection, data, replaces));
  }

  async #writeNow(
    handle: string,
    provider: string,
    connection: string,
    data: Pick<StoredConnection, 'fields' | 'flow' | 'expiresAt' | 'refreshToken' | 'hosts'>,
    replaces: Pick<StoredConnection, 'updatedAt' | 'rev'> | undefined,
  ): Promise<{ created: boolean; isDefault: boolean; record: StoredConnection }> {
    for (const [name, value] of Object.entries(data.fields)) {
      if (/[\r\n\0]/.test(value))
        throw new AppError(
          'ERR_INPUT_INVALID',
          `field ${name} contains a line break or NUL`,
          'paste the value on one line',
        );
    }
    const scope = profileScope(this.#store, handle);
    const key = `conn/${provider}/${connection}`;
    // Re-login over a damaged record replaces it (nothing readable is lost).
    const prior = (await scope.get(key).catch(ignoreCorrupt)) as StoredConnection | undefined;
    if (replaces && (prior?.updatedAt !== replaces.updatedAt || prior.rev !== replaces.rev)) {
      throw new AppError(
        'ERR_CONNECTION_NOT_FOUND',
        `connection "${connection}" of provider "${provider}" was removed or replaced while its token was being refreshed`,
        `add it again with \`authsome login ${provider} --connection ${connection}\``,
      );
    }
    const now = new Date().toISOString();
    const record: StoredConnection = {
      provider,
      connection,
      createdAt: prior?.createdAt ?? now,
      updatedAt: now,
      rev: randomBytes(12).toString('base64url'),
      ...data,
    };
    const defaultName = await this.#defaultName(handle, provider).catch(ignoreCorrupt);
    const ops: Array<{ type: 'put'; key: string; value: RecordValue }> = [
      { type: 'put', key, value: record as unknown as RecordValue },
    ];
    if (defaultName === undefined)
      ops.push({ type: 'put', key: `default/${provider}`, value: { connection } });
    await scope.batch(ops);
    this.#invalidate(handle);
    return { created: prior === undefined, isDefault: (defaultName ?? connection) === connection, record };
  }

  /** The raw record (daemon-internal: refresh and revocation need the tokens). */
  async stored(handle: string, provider: string, connection: string): Promise<StoredConnection | undefined> {
    return (await profileScope(this.#store, handle).get(`conn/${provider}/${connection}`)) as
      StoredConnection | undefined;
  }

  async #defaultName(handle: string, provider: string): Promise<string | undefined> {
    const d = await profileScope(this.#store, handle).get(`default/${provider}`);
    return typeof d?.['connection'] === 'string' ? d['connection'] : undefined;
  }

  #meta(rec: StoredConnection, defaultName: string | undefined): ConnectionMeta {
    return {
      provider: rec.provider,
      connection: rec.connection,
      flow: rec.flow,
      fields: Object.keys(rec.fields).sort(),
      isDefault: rec.connection === defaultName,
      createdAt: rec.createdAt,
      updatedAt: rec.updatedAt,
      ...(rec.expiresAt ? { expiresAt: rec.expiresAt } : {}),
      ...(rec.hosts ? { hosts: rec.hosts } : {}),
    };
  }

  async list(handle: string, provider?: string): Promise<ConnectionMeta[]> {
    if (provider !== undefined) assertName('provider', provider);
    const scope = profileScope(this.#store, handle);
    const rows = await scope.list(provider ? `conn/${provider}/` : 'conn/');
    const defaults = new Map<string, string>();
    for (const d of await scope.list('default/')) {
      const p = d.key.split('/')[1];
      if (p && typeof d.value['connection'] === 'string') defaults.set(p, d.value['connection']);
    }
    return rows.map((r) => {
      const rec = r.value as unknown as StoredConnection;
      return this.#meta(rec, defaults.get(rec.provider));
    });
  }

  /**
   * Which connections the profile has, from the store's keys alone: one damaged record does not hide
   * the others (or fail `run`, which needs only the names); reading that record still fails loudly.
   */
  async names(handle: string): Promise<Array<{ provider: string; connection: string }>> {
    const keys = await profileScope(this.#store, handle).keys('conn/');
    return keys.map((k) => {
      const [, provider = '', connection = ''] = k.split('/');
      return { provider, connection };
    });
  }

  async #get(handle: string, provider: string, connection: string): Promise<StoredConnection> {
    assertName('provider', provider);
    assertName('connection', connection);
    const rec = await profileScope(this.#store, handle).get(`conn/${provider}/${connection}`);
    if (!rec) {
      this.#requireProvider(provider); // a mistyped provider gets "unknown provider, did you mean"
      const names = (await profileScope(this.#store, handle).keys(`conn/${provider}/`)).map(
        (k) => k.split('/')[2]!,
      );
      const guess = closest(connection, names);
      // `--connection` defaults to the name "default", not to the provider's default connection: when
      // others exist, name them (and which is the default) instead of only suggesting a new login.
      const def =
        names.length > 0 ? await this.#defaultName(handle, provider).catch(ignoreCorrupt) : undefined;
      const listed = names.map((n) => (n === def ? `${n} (default)` : n)).join(', ');
      throw new AppError(
        'ERR_CONNECTION_NOT_FOUND',
        `no connection "${connection}" for provider "${provider}" in this profile${guess ? ` — did you mean "${guess}"?` : names.length > 0 ? `; it has ${listed}` : ''}`,
        names.length > 0
          ? `name one with --connection (e.g. --connection ${guess ?? def ?? names[0]}), or add "${connection}" with \`authsome login ${provider} --connection ${connection}\``
          : `run \`authsome connection list\`, or add it with \`authsome login ${provider} --connection ${connection}\``,
      );
    }
    return rec as unknown as StoredConnection;
  }

  async show(handle: string, provider: string, connection: string): Promise<ConnectionMeta> {
    const rec = await this.#get(handle, provider, connection);
    return this.#meta(rec, await this.#defaultName(handle, provider));
  }

  /** Removes one connection; when it was the default and exactly one other remains, that one becomes the default. */
  async remove(
    handle: string,
    provider: string,
    connection: string,
    before?: (rec: StoredConnection) => Promise<unknown>,
  ): Promise<{ newDefault?: string; defaultCleared?: boolean }> {
    // `before` (revocation at the provider) is a network call: it runs before this change takes its
    // turn, so other changes of the provider's connections do not wait for it.
    if (before) {
      const rec = await this.#get(handle, provider, connection).catch(ignoreCorrupt);
      if (rec) await before(rec);
    }
    return this.#serial(handle, provider, () => this.#removeNow(handle, provider, connection));
  }

  async #removeNow(
    handle: string,
    provider: string,
    connection: string,
  ): Promise<{ newDefault?: string; defaultCleared?: boolean }> {
    // A damaged record can still be removed (that is what the corrupt-record hint tells the user to do).
    await this.#get(handle, provider, connection).catch(ignoreCorrupt);
    const scope = profileScope(this.#store, handle);
    const wasDefault = (await this.#defaultName(handle, provider).catch(ignoreCorrupt)) === connection;
    const others = ((await scope.list(`conn/${provider}/`).catch(ignoreCorrupt)) ?? [])
      .map((r) => r.key.split('/')[2]!)
      .filter((c) => c !== connection);
    const ops: Array<{ type: 'del'; key: string } | { type: 'put'; key: string; value: RecordValue }> = [
      { type: 'del', key: `conn/${provider}/${connection}` },
    ];
    let newDefault: string | undefined;
    if (wasDefault) {
      if (others.length === 1) {
        newDefault = others[0]!;
        ops.push({ type: 'put', key: `default/${provider}`, value: { connection: newDefault } });
      } else {
        ops.push({ type: 'del', key: `default/${provider}` });
      }
    }
    await scope.batch(ops);
    this.#invalidate(handle);
    for (const l of this.#removeListeners) l(handle, provider, connection);
    if (newDefault) return { newDefault };
    // Several remain and none was chosen for the user: say so, requests without a name now get 403.
    return wasDefault && others.length > 1 ? { defaultCleared: true } : {};
  }

  setDefault(handle: string, provider: string, connection: string): Promise<void> {
    return this.#serial(handle, provider, async () => {
      await this.#get(handle, provider, connection);
      await profileScope(this.#store, handle).put(`default/${provider}`, { connection });
      this.#invalidate(handle);
    });
  }

  /** CredentialSource for the proxy: undefined when the profile has no such connection. */
  async resolve(
    profile: string,
    provider: string,
    connection: string | undefined,
  ): Promise<ResolvedCredential | undefined> {
    const cacheKey = `${profile}/${provider}/${connection ?? ''}`;
    const now = Date.now();
    const hit = this.#cache.get(cacheKey);
    const feedUp = this.#feed?.up ?? true;
    if (hit && now < hit.until && feedUp) return usable(hit.value, provider);
    const generation = this.#generation;
    const name = connection ?? (await this.#defaultName(profile, provider));
    let rec = name === undefined ? undefined : await this.stored(profile, provider, name);
    if (rec && this.#refresher) rec = await this.#refresher(profile, rec);
    const value =
      rec && name !== undefined
        ? { connection: name, fields: secretsOf(rec.fields), ...(rec.hosts ? { hosts: rec.hosts } : {}) }
        : name === undefined && (await this.#hasAny(profile, provider))
          ? 'no-default'
          : undefined;
    // Cached briefly, and never past the point where an OAuth token is due for refresh.
    const dueAt = rec?.expiresAt ? Date.parse(rec.expiresAt) - 60_000 : Infinity;
    if (this.#cache.size > 10_000) this.#cache.clear();
    if (generation === this.#generation && feedUp && (this.#feed?.up ?? true))
      this.#cache.set(cacheKey, { until: Math.min(now + CACHE_MS, dueAt), value });
    return usable(value, provider);
  }

  async #hasAny(profile: string, provider: string): Promise<boolean> {
    const rows = await profileScope(this.#store, profile)
      .list(`conn/${provider}/`)
      .catch(() => [{}]); // a damaged record is still a connection the user meant to have
    return rows.length > 0;
  }

  #invalidate(handle: string): void {
    this.#generation++;
    for (const k of this.#cache.keys()) if (k.startsWith(`${handle}/`)) this.#cache.delete(k);
  }

  /** Drops every cached credential of a profile (profile delete). */
  forget(handle: string): void {
    this.#invalidate(handle);
  }
}
