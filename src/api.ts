import { AppError } from './errors.js';
import { assertName } from './names.js';
import { readAudit, type AuditFilter } from './audit/reader.js';
import type { AuditRecord } from './audit/types.js';
import type { ConnectionMeta } from './daemon/connections.js';
import type { Explanation } from './daemon/explain.js';
import type { DaemonClient } from './daemon/client.js';
import { Ctx } from './cli/context.js';
import { childEnv, mintSessionEnv } from './cli/session-env.js';

/**
 * The library: what `authsome run`, `connection list`, `audit` and `explain` do, for Node programs
 * (agent frameworks, test harnesses) that start their own child processes. It talks to the daemon
 * over the same PoP-signed control API as the CLI, signing with the profile's key from the home, and
 * shares the CLI's code for it (src/cli/context.ts, src/cli/session-env.ts), minus the printing:
 * every failure is an AppError with a stable `code` and a `hint` saying what to do next. No method
 * returns a secret: a session environment holds a session token, never a credential.
 */

export interface ConnectOptions {
  /** The authsome home (default: $AUTHSOME_HOME, else ~/.authsome). */
  home?: string;
  /** The profile to act as (default: the home's active profile). */
  profile?: string;
  /** Start the daemon when it is not running, as CLI commands do (default true). */
  startDaemon?: boolean;
}

export interface AllowEntry {
  provider: string;
  connection?: string;
}

export interface SessionOptions {
  /** Limit the session to these providers (and connections): "openai,github:work" or a list. */
  allow?: string | readonly AllowEntry[];
  /** Lifetime, e.g. "10m" (default: the daemon's session.defaultTtl, 12h). */
  ttl?: string;
  /** Shown by `authsome proxy revoke` (no id) and in the audit log's session.mint. */
  label?: string;
}

/** A minted session token and the environment `authsome run` would give a child process. */
export interface AuthsomeSession {
  readonly id: string;
  readonly expiresAt: string;
  /** Variables to set: proxy URL with the session token, CA bundle variables, key placeholders… */
  readonly env: Readonly<Record<string, string>>;
  /** Variables to remove: key variables of the profile's providers outside `allow`. */
  readonly unset: readonly string[];
  /** `base` (default process.env) with `env` set and `unset` removed: pass it to spawn(). */
  childEnv(base?: NodeJS.ProcessEnv): NodeJS.ProcessEnv;
  /** Revokes the token now (idempotent). */
  revoke(): Promise<void>;
}

export interface AuditQuery {
  /** Events at or after this time: a Date, an ISO time, or a duration such as "1h". */
  since?: Date | string;
  /** The last N matching events. */
  limit?: number;
  event?: string;
  provider?: string;
  connection?: string;
  /** Events of every profile, not only the connected one's. */
  allProfiles?: boolean;
  /** Include `authsome doctor`'s own records (doctor.probe…), left out by default as in `authsome audit`. */
  probes?: boolean;
}

export interface ExplainOptions {
  /** Explain as if the request named this connection (X-Authsome-Connection). */
  connection?: string;
  /** The request method, for daemons whose answer depends on it (policies, SPEC section 9). */
  method?: string;
}

function allowText(allow: SessionOptions['allow']): string | undefined {
  if (allow === undefined || typeof allow === 'string') return allow;
  return allow
    .map((a) => (a.connection === undefined ? a.provider : `${a.provider}:${a.connection}`))
    .join(',');
}

function sinceDate(since: Date | string): Date {
  if (since instanceof Date) return since;
  const m = /^(\d+)([smhd])$/.exec(since);
  const d = m
    ? new Date(
        Date.now() - Number(m[1]) * { s: 1e3, m: 6e4, h: 3.6e6, d: 8.64e7 }[m[2] as 's' | 'm' | 'h' | 'd'],
      )
    : new Date(since);
  if (Number.isNaN(d.getTime()))
    throw new AppError(
      'ERR_INPUT_INVALID',
      'audit "since" is neither a time nor a duration',
      'use a Date, an ISO time or e.g. "1h"',
    );
  return d;
}

export class Authsome {
  readonly #ctx: Ctx;
  readonly #client: DaemonClient;
  readonly #sessions = new Map<string, AuthsomeSession>();

  private constructor(ctx: Ctx, client: DaemonClient) {
    this.#ctx = ctx;
    this.#client = client;
  }

  /** Opens the home and signs as its active profile (or `profile`); starts the daemon unless told not to. */
  static async connect(opts: ConnectOptions = {}): Promise<Authsome> {
    const ctx = new Ctx({
      ...(opts.home !== undefined ? { home: opts.home } : {}),
      ...(opts.profile !== undefined ? { profile: opts.profile } : {}),
      json: true,
    });
    if (opts.startDaemon === false) {
      const client = await ctx.client(undefined, { start: false });
      if (!client)
        throw new AppError(
          'ERR_DAEMON_UNREACHABLE',
          `the daemon of ${ctx.paths.home} is not running`,
          'start it with `authsome daemon start`, or connect with startDaemon: true',
        );
      return new Authsome(ctx, client);
    }
    return new Authsome(ctx, await ctx.client());
  }

  /** The profile this instance signs as. */
  get profile(): string {
    return this.#client.handle;
  }

  get home(): string {
    return this.#ctx.paths.home;
  }

  /** The proxy's port on 127.0.0.1. */
  get proxyPort(): number {
    return this.#client.info.proxyPort;
  }

  /** Mints a session token and builds the environment `authsome run` gives its child. */
  async sessionEnv(opts: SessionOptions = {}): Promise<AuthsomeSession> {
    const client = this.#client;
    const s = await mintSessionEnv(
      { paths: this.#ctx.paths, client: async () => client },
      { allow: allowText(opts.allow), ttl: opts.ttl, label: opts.label ?? 'library' },
    );
    let revoked = false;
    const sessions = this.#sessions;
    const session: AuthsomeSession = {
      id: s.id,
      expiresAt: s.expiresAt,
      env: Object.freeze({ ...s.env }),
      unset: Object.freeze([...s.unset]),
      childEnv: (base) => childEnv(s, base),
      async revoke() {
        if (revoked) return;
        try {
          await client.call('DELETE', `/v1/sessions/${s.id}`);
        } catch (e) {
          // Already gone (revoked elsewhere, or expired and purged): the goal is reached.
          if (!(e instanceof AppError && e.code === 'ERR_SESSION_NOT_FOUND')) throw e;
        }
        revoked = true;
        sessions.delete(s.id);
      },
    };
    sessions.set(s.id, session);
    return session;
  }

  /** The profile's connections: metadata only, never a secret. */
  async connections(opts: { provider?: string } = {}): Promise<ConnectionMeta[]> {
    const q = opts.provider ? `?provider=${encodeURIComponent(assertName('provider', opts.provider))}` : '';
    return (await this.#client.call<{ connections: ConnectionMeta[] }>('GET', `/v1/connections${q}`))
      .connections;
  }

  /**
   * Audit events, oldest first, read from the home's audit.log as `authsome audit` does (the hash chain
   * is checked by `authsome audit verify`, not here). Default: the connected profile's events only.
   */
  async audit(q: AuditQuery = {}): Promise<AuditRecord[]> {
    if (q.limit !== undefined && (!Number.isSafeInteger(q.limit) || q.limit < 0))
      throw new AppError(
        'ERR_INPUT_INVALID',
        'audit "limit" must be a whole number, 0 or more',
        'e.g. { limit: 20 }',
      );
    const filter: AuditFilter = {
      ...(q.allProfiles ? {} : { profile: this.profile }),
      ...(q.event !== undefined ? { event: q.event } : {}),
      ...(q.provider !== undefined ? { provider: q.provider } : {}),
      ...(q.connection !== undefined ? { connection: q.connection } : {}),
      ...(q.since !== undefined ? { since: sinceDate(q.since) } : {}),
      ...(q.limit !== undefined ? { limit: q.limit } : {}),
      ...(q.probes === true || q.event === 'doctor.probe' ? {} : { hideProbes: true }),
    };
    return readAudit(this.#ctx.paths.auditLog, filter);
  }

  /** What the proxy would do with a request to `url` from this profile (values masked), or why nothing. */
  async explain(url: string, opts: ExplainOptions = {}): Promise<Explanation> {
    const q = new URLSearchParams({ url });
    if (opts.connection !== undefined) q.set('connection', assertName('connection', opts.connection));
    if (opts.method !== undefined) q.set('method', opts.method.toUpperCase());
    return this.#client.call<Explanation>('GET', `/v1/explain?${q.toString()}`);
  }

  /** Revokes every session this instance minted and has not revoked yet. The daemon keeps running. */
  async close(): Promise<void> {
    const open = [...this.#sessions.values()];
    const results = await Promise.allSettled(open.map((s) => s.revoke()));
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
  }
}
