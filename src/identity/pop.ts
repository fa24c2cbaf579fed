import { createHash, randomBytes, type KeyObject } from 'node:crypto';
// jose's subpath entry points: the root index pulls in JWE, JWKS and the rest (~170 modules), which
// every CLI command would pay for at start-up.
import { decodeProtectedHeader } from 'jose/decode/protected_header';
import { compactVerify } from 'jose/jws/compact/verify';
import { decodeJwt } from 'jose/jwt/decode';
import { SignJWT } from 'jose/jwt/sign';
import type { JWK } from 'jose';
import { AppError } from '../errors.js';
import { isValidName } from '../names.js';

/** PoP tokens for the control API (SPEC sections 2 and 4). */

export const POP_TYP = 'authsome-pop+jwt';
const POP_ALG = 'EdDSA';
const DEFAULT_MAX_AGE_SEC = 60;
const FUTURE_SKEW_SEC = 5;
const DEFAULT_MAX_JTI = 100_000;
const TOKEN_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;
const JTI_SHAPE = /^[A-Za-z0-9_-]{16,64}$/;

export type PopRejectReason =
  | 'missing'
  | 'scheme'
  | 'malformed'
  | 'header'
  | 'sub'
  | 'unknown-sub'
  | 'signature'
  | 'claims'
  | 'iat-future'
  | 'too-old'
  | 'before-start'
  | 'expired'
  | 'htm'
  | 'htu'
  | 'bh'
  | 'replay'
  | 'jti-cache-full';

/**
 * The one error every rejection throws: callers learn nothing about which check failed.
 * `reason` is for server-side logs and tests only; toJSON (inherited) never includes it.
 */
export class PopError extends AppError {
  readonly reason: PopRejectReason;
  constructor(reason: PopRejectReason, options?: { cause?: unknown }) {
    super(
      'ERR_AUTH_POP_INVALID',
      'proof-of-possession token rejected',
      'check that this profile is registered with the daemon, its key file is the one it was created with, and the clock is right',
      options,
    );
    this.reason = reason;
  }
}

export function bodyHash(body: Uint8Array | string | undefined): string {
  return createHash('sha256')
    .update(body ?? new Uint8Array())
    .digest('base64url');
}

export interface SignPopInput {
  key: KeyObject;
  handle: string;
  method: string;
  url: string;
  body: Uint8Array | string | undefined;
  /** Milliseconds since the epoch; defaults to Date.now(). */
  now?: number;
}

/** Client side: the value for `Authorization: PoP <token>`. */
export async function signPop(input: SignPopInput): Promise<string> {
  // Fractional seconds (RFC 7519 NumericDate allows them): a token made in the same second as a
  // daemon restart, but before it, must still be told apart from one made after (see verify).
  const iat = (input.now ?? Date.now()) / 1000;
  const hash = input.url.indexOf('#');
  return new SignJWT({
    sub: input.handle,
    iat,
    exp: iat + DEFAULT_MAX_AGE_SEC,
    jti: randomBytes(16).toString('base64url'),
    htm: input.method.toUpperCase(),
    htu: hash === -1 ? input.url : input.url.slice(0, hash),
    bh: bodyHash(input.body),
  })
    .setProtectedHeader({ alg: POP_ALG, typ: POP_TYP })
    .sign(input.key);
}

export interface PopVerifierOptions {
  lookupKey: (handle: string) => Promise<JWK | undefined>;
  /** When this daemon started (ms). The jti cache is in memory, so older tokens are refused. */
  startedAtMs: number;
  clock?: () => number;
  maxAgeSec?: number;
  maxJtiEntries?: number;
}

export interface PopRequest {
  method: string;
  url: string;
  body: Uint8Array;
}

export class PopVerifier {
  readonly #lookupKey: (handle: string) => Promise<JWK | undefined>;
  readonly #startedAtSec: number;
  readonly #clock: () => number;
  readonly #maxAgeSec: number;
  readonly #maxJti: number;
  /** jti -> ms after which the token is dead anyway (its exp), so the entry may go. */
  readonly #seen = new Map<string, number>();

  constructor(opts: PopVerifierOptions) {
    this.#lookupKey = opts.lookupKey;
    this.#startedAtSec = opts.startedAtMs / 1000;
    this.#clock = opts.clock ?? Date.now;
    this.#maxAgeSec = opts.maxAgeSec ?? DEFAULT_MAX_AGE_SEC;
    this.#maxJti = opts.maxJtiEntries ?? DEFAULT_MAX_JTI;
  }

  /** Resolves to the proven handle, or throws PopError. Store failures in lookupKey propagate as they are. */
  async verify(authorization: string | undefined, req: PopRequest): Promise<{ handle: string }> {
    if (authorization === undefined) throw new PopError('missing');
    // Auth schemes are case-insensitive (RFC 9110 section 11.1).
    const m = /^pop ([^ ]+)$/i.exec(authorization);
    if (!m) throw new PopError('scheme');
    const token = m[1]!;
    if (!TOKEN_SHAPE.test(token)) throw new PopError('malformed');

    let header: Record<string, unknown>;
    let unverified: Record<string, unknown>;
    try {
      header = decodeProtectedHeader(token) as Record<string, unknown>;
      unverified = decodeJwt(token) as Record<string, unknown>;
    } catch (cause) {
      throw new PopError('malformed', { cause });
    }
    // An allowlist, not a denylist: jwk/jku/x5c/x5u/kid/crit and anything new are all refused,
    // because the only key we trust is the one our registry holds for `sub`.
    const names = Object.keys(header);
    if (
      header['alg'] !== POP_ALG ||
      header['typ'] !== POP_TYP ||
      names.some((k) => k !== 'alg' && k !== 'typ')
    ) {
      throw new PopError('header');
    }
    // base64 decoders ignore the spare low bits of the last character, so without this check a
    // flipped spare bit gives a second, different string carrying the same valid signature.
    const sig = token.slice(token.lastIndexOf('.') + 1);
    const sigBytes = Buffer.from(sig, 'base64url');
    if (sigBytes.length !== 64 || sigBytes.toString('base64url') !== sig) throw new PopError('malformed');
    const sub = unverified['sub'];
    if (!isValidName(sub)) throw new PopError('sub');
    const jwk = await this.#lookupKey(sub);
    if (jwk === undefined) throw new PopError('unknown-sub');

    let claims: Record<string, unknown>;
    try {
      // Signature only: every claim is checked below, against our clock with sub-second precision.
      const { payload } = await compactVerify(token, jwk, { algorithms: [POP_ALG] });
      claims = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(payload)) as Record<
        string,
        unknown
      >;
    } catch (cause) {
      throw new PopError('signature', { cause });
    }
    if (claims === null || typeof claims !== 'object' || Array.isArray(claims)) throw new PopError('claims');
    const nowMs = this.#clock();
    const now = nowMs / 1000;
    const { iat, exp, jti, htm, htu, bh } = claims;
    if (
      claims['sub'] !== sub ||
      typeof iat !== 'number' ||
      typeof exp !== 'number' ||
      !Number.isFinite(iat) ||
      !Number.isFinite(exp)
    ) {
      throw new PopError('claims');
    }
    if (typeof jti !== 'string' || !JTI_SHAPE.test(jti)) throw new PopError('claims');
    if (iat > now + FUTURE_SKEW_SEC) throw new PopError('iat-future');
    if (exp > iat + this.#maxAgeSec) throw new PopError('claims');
    if (now - iat > this.#maxAgeSec) throw new PopError('too-old');
    if (iat < this.#startedAtSec) throw new PopError('before-start');
    if (exp <= now) throw new PopError('expired');
    if (htm !== req.method.toUpperCase()) throw new PopError('htm');
    if (htu !== req.url) throw new PopError('htu');
    if (bh !== bodyHash(req.body)) throw new PopError('bh');
    // No await from here to the set: two concurrent verifications of one token cannot both pass.
    this.#remember(jti, exp * 1000, nowMs);
    return { handle: sub };
  }

  /** Number of remembered jti values (for tests and metrics). */
  get seenCount(): number {
    return this.#seen.size;
  }

  #remember(jti: string, expiresMs: number, nowMs: number): void {
    // Insertion order is roughly expiry order, so dropping dead entries from the front is cheap.
    for (const [k, until] of this.#seen) {
      if (until > nowMs) break;
      this.#seen.delete(k);
    }
    if (this.#seen.has(jti)) throw new PopError('replay');
    if (this.#seen.size >= this.#maxJti) {
      for (const [k, until] of this.#seen) if (until <= nowMs) this.#seen.delete(k);
      // Evicting a live jti would reopen it to replay; refusing new tokens is the safe side.
      if (this.#seen.size >= this.#maxJti) throw new PopError('jti-cache-full');
    }
    this.#seen.set(jti, expiresMs);
  }
}
