import type { Secret } from '../../secret.js';
import type { OAuthConfig } from '../types.js';

/** RFC 6749 §5.1, as stored: expires_in becomes an absolute time so a stored set needs no clock. */
export interface TokenSet {
  accessToken: Secret;
  refreshToken?: Secret;
  /** Milliseconds since the epoch (from expires_in and the injected clock). */
  expiresAt?: number;
  scope?: string;
  tokenType?: string;
}

/** The slice of a fetch Response we read; undici's and the global fetch both fit. */
export interface FetchResponseLike {
  readonly status: number;
  readonly headers: { get(name: string): string | null };
  text(): Promise<string>;
}

export interface FetchInitLike {
  method: string;
  headers: Record<string, string>;
  body: string;
  redirect: 'error';
  signal: AbortSignal;
}

export type FetchLike = (url: string, init: FetchInitLike) => Promise<FetchResponseLike>;

/** What every call to a provider's OAuth endpoint takes. */
export interface OAuthClientOptions {
  oauth: OAuthConfig;
  clientId: string;
  clientSecret?: Secret;
  /** Default: undici's fetch. */
  fetchImpl?: FetchLike;
  /**
   * Permit plain http:// to a literal loopback address (127.0.0.0/8, [::1]) — the tests' fake
   * server. Plain http to anything else is refused whatever this says.
   */
  allowInsecureLoopback?: boolean;
  /** Clock in ms since the epoch; default Date.now. */
  now?: () => number;
  /** Per-request timeout; default 30 s. */
  timeoutMs?: number;
  /** Provider name, used only in messages and hints (`authsome login <provider>`). */
  provider?: string;
  signal?: AbortSignal;
}

export type OAuthFailCode = 'ERR_OAUTH_FAILED' | 'ERR_TOKEN_REFRESH_FAILED';
