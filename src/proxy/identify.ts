import type { Socket } from 'node:net';
import { AppError } from '../errors.js';
import { isValidName } from '../names.js';
import { singleValue } from './headers.js';
import type { SessionInfo, SessionVerifier } from './types.js';

/**
 * Identity comes only from a verified session token in Proxy-Authorization
 * ("Basic base64(handle:token)"), never from any other header (SPEC section 5).
 */
const BASIC = /^basic[ \t]+([A-Za-z0-9+/]+={0,2})[ \t]*$/i;

/** How long a verified token is reused on one client connection before it is checked again. */
export const IDENTITY_RECHECK_MS = 30_000;

function authRequired(message: string): AppError {
  return new AppError(
    'ERR_PROXY_AUTH_REQUIRED',
    message,
    'use the proxy URL printed by `authsome proxy env`, which carries a session token',
  );
}

export function parseProxyAuthorization(value: string | undefined): { handle: string; token: string } {
  if (value === undefined) throw authRequired('proxy authentication required');
  const m = BASIC.exec(value);
  if (!m) throw authRequired('Proxy-Authorization must be Basic base64(<profile>:<session token>)');
  const decoded = Buffer.from(m[1]!, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  const handle = colon < 0 ? '' : decoded.slice(0, colon);
  const token = colon < 0 ? '' : decoded.slice(colon + 1);
  if (!isValidName(handle) || token.length === 0 || token.length > 512) {
    throw authRequired('Proxy-Authorization must be Basic base64(<profile>:<session token>)');
  }
  return { handle, token };
}

/** One verified identity, reused for the inner requests of a tunnel or a keep-alive connection. */
export interface CachedIdentity {
  readonly raw: string;
  readonly session: SessionInfo;
  readonly verifiedAt: number;
  /** The verifier's epoch before this verification: a revocation since then makes it stale. */
  readonly epoch: number;
}

export class Identifier {
  readonly #sessions: SessionVerifier;
  readonly #bySocket = new WeakMap<Socket, CachedIdentity>();

  constructor(sessions: SessionVerifier) {
    this.#sessions = sessions;
  }

  /** Verifies the Proxy-Authorization of these raw headers (407 when missing or wrong). */
  async verify(rawHeaders: readonly string[]): Promise<CachedIdentity> {
    const raw = singleValue(rawHeaders, 'proxy-authorization');
    const { handle, token } = parseProxyAuthorization(raw);
    const epoch = this.#epoch();
    const session = await this.#sessions.verify(handle, token);
    if (!session || session.profile !== handle || session.expiresAt <= Date.now()) {
      // One answer for unknown, expired, revoked and another profile's token.
      throw new AppError(
        'ERR_SESSION_INVALID',
        'the session token is not valid (unknown, expired or revoked)',
        'mint a new one with `authsome proxy env` or `authsome run`',
      );
    }
    return { raw: raw!, session, verifiedAt: Date.now(), epoch };
  }

  /**
   * Per client connection: the same header value within IDENTITY_RECHECK_MS reuses the earlier
   * verification; revocation therefore takes effect within that window on open connections.
   */
  async forSocket(socket: Socket, rawHeaders: readonly string[]): Promise<SessionInfo> {
    const cached = this.#bySocket.get(socket);
    const raw = singleValue(rawHeaders, 'proxy-authorization');
    const now = Date.now();
    if (cached && cached.raw === raw && this.#fresh(cached, now)) return cached.session;
    const fresh = await this.verify(rawHeaders);
    this.#bySocket.set(socket, fresh);
    return fresh.session;
  }

  /** For a tunnel: identity decided at CONNECT, re-verified with the same header after the window. */
  async refresh(id: CachedIdentity): Promise<CachedIdentity> {
    if (this.#fresh(id, Date.now())) return id;
    return this.verify(['proxy-authorization', id.raw]);
  }

  /**
   * A cached verification stands for IDENTITY_RECHECK_MS, until the session expires, and only while no
   * revocation happened since (a revoked session's open connections are also closed at once: live.ts;
   * this covers a revocation whose push was missed). The recheck is what binds a tunnel to its session
   * rather than to its profile's name: a profile deleted and created again has new sessions only.
   */
  #fresh(id: CachedIdentity, now: number): boolean {
    return (
      now - id.verifiedAt < IDENTITY_RECHECK_MS && id.session.expiresAt > now && id.epoch === this.#epoch()
    );
  }

  #epoch(): number {
    return this.#sessions.epoch?.() ?? 0;
  }
}
