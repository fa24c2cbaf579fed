/**
 * The one error catalogue. Codes are stable (scripts and docs rely on them); messages may change.
 * Each code has one HTTP status (proxy and control API) and one CLI exit code; the tables below are
 * the only mapping. Programmer mistakes throw plain TypeError instead.
 */
export const ERROR_CODES = {
  // input / names
  ERR_INPUT_INVALID: { status: 400, exit: 2 },
  ERR_NAME_INVALID: { status: 400, exit: 2 },
  // proxy
  ERR_PROXY_BAD_REQUEST: { status: 400, exit: 2 },
  ERR_PROXY_ORIGIN_FORM: { status: 400, exit: 2 },
  ERR_PROXY_AUTH_REQUIRED: { status: 407, exit: 4 },
  ERR_PROXY_DESTINATION_DENIED: { status: 403, exit: 5 },
  ERR_PROXY_CONNECTION_DENIED: { status: 403, exit: 5 },
  ERR_PROXY_MISDIRECTED: { status: 421, exit: 2 },
  ERR_PROXY_HEADERS_TOO_LARGE: { status: 431, exit: 2 },
  ERR_PROXY_LOOP: { status: 403, exit: 5 },
  ERR_PROXY_BUSY: { status: 503, exit: 10 },
  ERR_UPSTREAM_FAILED: { status: 502, exit: 7 },
  ERR_UPSTREAM_TLS: { status: 502, exit: 7 },
  ERR_UPSTREAM_TIMEOUT: { status: 504, exit: 7 },
  ERR_UPSTREAM_SECRET_ECHO: { status: 502, exit: 7 },
  ERR_TOKEN_REFRESH_FAILED: { status: 502, exit: 7 },
  // identity
  ERR_AUTH_POP_INVALID: { status: 401, exit: 4 },
  ERR_AUTH_FORBIDDEN: { status: 403, exit: 5 },
  ERR_AUTH_NOT_OWNER: { status: 403, exit: 5 },
  ERR_SESSION_INVALID: { status: 407, exit: 4 },
  // not found / conflicts (not-found and not-yours look the same)
  ERR_PROFILE_NOT_FOUND: { status: 404, exit: 3 },
  ERR_PROFILE_EXISTS: { status: 409, exit: 3 },
  ERR_CONNECTION_NOT_FOUND: { status: 404, exit: 3 },
  ERR_PROVIDER_NOT_FOUND: { status: 404, exit: 3 },
  ERR_PROVIDER_INVALID: { status: 400, exit: 2 },
  ERR_PROVIDER_EXISTS: { status: 409, exit: 3 },
  ERR_SESSION_NOT_FOUND: { status: 404, exit: 3 },
  ERR_NOT_FOUND: { status: 404, exit: 3 },
  // home / init
  ERR_HOME_NOT_INITIALISED: { status: 500, exit: 6 },
  ERR_HOME_EXISTS: { status: 409, exit: 3 },
  ERR_HOME_PERMISSIONS: { status: 500, exit: 6 },
  ERR_IDENTITY_KEY_MISSING: { status: 500, exit: 6 },
  // vault / audit / daemon
  ERR_VAULT_SEALED: { status: 503, exit: 8 },
  ERR_VAULT_CORRUPT: { status: 503, exit: 8 },
  ERR_VAULT_LOCKED: { status: 503, exit: 8 },
  ERR_VAULT_UNAVAILABLE: { status: 503, exit: 8 },
  ERR_AUDIT_UNAVAILABLE: { status: 503, exit: 8 },
  ERR_AUDIT_BROKEN: { status: 500, exit: 9 },
  ERR_DAEMON_UNREACHABLE: { status: 503, exit: 10 },
  ERR_DAEMON_START_FAILED: { status: 503, exit: 10 },
  ERR_CA_UNAVAILABLE: { status: 503, exit: 8 },
  ERR_OAUTH_FAILED: { status: 502, exit: 7 },
  // policy (SPEC section 9)
  ERR_POLICY_INVALID: { status: 400, exit: 2 },
  ERR_POLICY_DENIED: { status: 403, exit: 5 },
  ERR_POLICY_RATE_LIMITED: { status: 429, exit: 5 },
  ERR_POLICY_APPROVAL_REJECTED: { status: 403, exit: 5 },
  ERR_POLICY_APPROVAL_TIMEOUT: { status: 403, exit: 5 },
  ERR_POLICY_HELD_FULL: { status: 503, exit: 10 },
  ERR_APPROVAL_NOT_FOUND: { status: 404, exit: 3 },
  // team mode store (SPEC section 10)
  ERR_STORE_INITIALISED: { status: 409, exit: 3 },
  ERR_STORE_SCHEMA: { status: 500, exit: 8 },
  ERR_STORE_UNAVAILABLE: { status: 503, exit: 8 },
  ERR_NODE_NAME_IN_USE: { status: 409, exit: 3 },
  // bodies read before sending (SPEC section 12)
  ERR_BODY_TOO_LARGE: { status: 413, exit: 2 },
  // dashboard (SPEC section 11)
  ERR_UI_SESSION_INVALID: { status: 401, exit: 4 },
  ERR_INTERNAL: { status: 500, exit: 1 },
} as const satisfies Record<string, { status: number; exit: number }>;

export type ErrorCode = keyof typeof ERROR_CODES;

export class AppError extends Error {
  readonly code: ErrorCode;
  /** What the user should do next; shown by the CLI after the message. */
  readonly hint: string | undefined;

  /** Seconds until a retry may succeed (429 rate limits): the proxy sends it as Retry-After. */
  readonly retryAfterS: number | undefined;

  constructor(
    code: ErrorCode,
    message: string,
    hint?: string,
    options?: { cause?: unknown; retryAfterS?: number },
  ) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'AppError';
    this.code = code;
    this.hint = hint;
    this.retryAfterS = options?.retryAfterS;
  }

  get status(): number {
    return ERROR_CODES[this.code].status;
  }

  get exitCode(): number {
    return ERROR_CODES[this.code].exit;
  }

  toJSON(): { code: ErrorCode; message: string; hint?: string } {
    return this.hint === undefined
      ? { code: this.code, message: this.message }
      : { code: this.code, message: this.message, hint: this.hint };
  }
}

export function isAppError(e: unknown): e is AppError {
  return e instanceof AppError;
}

export function isErrorCode(s: string): s is ErrorCode {
  return Object.hasOwn(ERROR_CODES, s);
}
