import { AppError } from '../../errors.js';
import type { ErrorCode } from '../../errors.js';

/**
 * An OAuth failure. `oauthError` is the RFC 6749 §5.2 / RFC 8628 §3.5 error code the provider sent
 * (e.g. "invalid_grant"), undefined when the failure was ours or the network's; `transport` is true
 * when the endpoint could not be reached or answered nothing usable (worth a retry later).
 */
export class OAuthError extends AppError {
  readonly oauthError: string | undefined;
  readonly transport: boolean;

  constructor(
    code: ErrorCode,
    message: string,
    hint?: string,
    extra: { oauthError?: string; transport?: boolean; cause?: unknown } = {},
  ) {
    super(code, message, hint, extra.cause === undefined ? undefined : { cause: extra.cause });
    this.name = 'OAuthError';
    this.oauthError = extra.oauthError;
    this.transport = extra.transport ?? false;
  }
}

export function loginHint(provider: string | undefined): string {
  return `run \`authsome login ${provider ?? '<provider>'}\` again`;
}

/** Ctrl-C (or any abort) while a flow waits: the CLI prints "cancelled" and exits cleanly. */
export function cancelled(provider?: string): OAuthError {
  return new OAuthError('ERR_OAUTH_FAILED', 'cancelled', `${loginHint(provider)} when ready`);
}

/**
 * Provider-supplied text (error codes, error_description) is shown to the user, so it is cut to
 * printable ASCII, capped, and any known secret — in any encoding a test or a log might reveal it —
 * is replaced. A provider that echoes the refresh token in its error must not leak it through us.
 */
export function scrub(text: string, secrets: readonly string[], max = 200): string {
  let out = text;
  for (const s of secrets) {
    if (s.length < 4) continue;
    const b = Buffer.from(s);
    for (const form of [
      s,
      encodeURIComponent(s),
      b.toString('base64'),
      b.toString('base64url'),
      b.toString('hex'),
    ]) {
      out = out.split(form).join('[redacted]');
    }
  }
  out = out.replace(/[^\x20-\x7e]/g, ' ');
  return out.length > max ? `${out.slice(0, max)}…` : out;
}

/** RFC 6749 §5.2 error codes are ASCII without quotes or backslash; anything else is not echoed. */
export function safeErrorCode(value: unknown): string | undefined {
  return typeof value === 'string' && /^[\x20\x21\x23-\x5b\x5d-\x7e]{1,64}$/.test(value) ? value : undefined;
}
