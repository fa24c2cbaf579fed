import { fetch as undiciFetch } from 'undici';
import { applyClientAuth } from './client-auth.js';
import { checkEndpoint } from './endpoint.js';
import { OAuthError, cancelled, safeErrorCode, scrub } from './errors.js';
import type { FetchLike, OAuthClientOptions, OAuthFailCode } from './types.js';

const defaultFetch: FetchLike = (url, init) => undiciFetch(url, init);
const MAX_BODY = 256 * 1024;
/** Form fields that are not secrets; every other value we sent is scrubbed from messages. */
const PUBLIC_FIELDS = new Set(['grant_type', 'client_id', 'scope', 'redirect_uri', 'token_type_hint']);
/** Response fields that are secrets even inside an error reply. */
const SECRET_FIELDS = ['access_token', 'refresh_token', 'id_token', 'device_code', 'code'];

export interface FormReply {
  status: number;
  body: Record<string, unknown>;
  /** Every secret this exchange involved, for scrubbing provider text. */
  secrets: string[];
}

export interface PostContext {
  /** "token endpoint", "device authorization endpoint", … */
  what: string;
  failCode: OAuthFailCode;
}

/**
 * POST application/x-www-form-urlencoded with Accept: application/json (RFC 6749 §3.2, §4.1.3;
 * RFC 8628 §3.1; RFC 7009 §2.1). Redirects are an error: a redirect would carry credentials to a
 * place the provider definition did not name.
 */
export async function postForm(
  opts: OAuthClientOptions,
  rawUrl: string,
  form: URLSearchParams,
  ctx: PostContext,
): Promise<FormReply> {
  const url = checkEndpoint(rawUrl, ctx.what, opts.allowInsecureLoopback, ctx.failCode);
  const headers: Record<string, string> = {
    'content-type': 'application/x-www-form-urlencoded',
    accept: 'application/json',
  };
  applyClientAuth(opts, form, headers);
  const secrets = [...form].filter(([k]) => !PUBLIC_FIELDS.has(k)).map(([, v]) => v);
  if (opts.clientSecret !== undefined) secrets.push(opts.clientSecret.reveal());
  const timeout = AbortSignal.timeout(opts.timeoutMs ?? 30_000);
  const signal = opts.signal === undefined ? timeout : AbortSignal.any([opts.signal, timeout]);
  const fetchImpl = opts.fetchImpl ?? defaultFetch;
  let status: number;
  let text: string;
  let contentType: string;
  try {
    if (opts.signal?.aborted === true) throw cancelled(opts.provider);
    const res = await fetchImpl(url.href, {
      method: 'POST',
      headers,
      body: form.toString(),
      redirect: 'error',
      signal,
    });
    status = res.status;
    contentType = (res.headers.get('content-type') ?? '').toLowerCase();
    text = await res.text();
  } catch (e) {
    if (e instanceof OAuthError) throw e;
    if (opts.signal?.aborted === true) throw cancelled(opts.provider);
    const message = timeout.aborted
      ? `the provider's ${ctx.what} did not answer in time`
      : `could not reach the provider's ${ctx.what} (${url.host})`;
    throw new OAuthError(ctx.failCode, message, 'check the network connection and try again', {
      transport: true,
      cause: e,
    });
  }
  if (text.length > MAX_BODY) {
    throw new OAuthError(ctx.failCode, `the provider's ${ctx.what} sent an oversized reply`, undefined, {
      transport: true,
    });
  }
  const body = parseBody(text, contentType);
  if (body === undefined) {
    // Never quote the body or a parser message: it may hold a token.
    throw new OAuthError(
      ctx.failCode,
      `the provider's ${ctx.what} sent an unreadable reply (HTTP ${status})`,
      undefined,
      {
        transport: true,
      },
    );
  }
  for (const f of SECRET_FIELDS) if (typeof body[f] === 'string') secrets.push(body[f]);
  return { status, body, secrets };
}

/** JSON per RFC 6749 §5.1; GitHub answers form-encoded unless it honours Accept, so take both. */
export function parseBody(text: string, contentType: string): Record<string, unknown> | undefined {
  if (text.trim() === '') return {};
  const looksJson = contentType.includes('json') || /^\s*\{/.test(text);
  if (looksJson) {
    try {
      const v: unknown = JSON.parse(text);
      return typeof v === 'object' && v !== null && !Array.isArray(v)
        ? (v as Record<string, unknown>)
        : undefined;
    } catch {
      return undefined;
    }
  }
  if (
    contentType.includes('x-www-form-urlencoded') ||
    contentType.includes('text/plain') ||
    /^[^\s<]*=/.test(text)
  ) {
    return Object.fromEntries(new URLSearchParams(text.trim()));
  }
  return undefined;
}

/** The provider's §5.2 error code, if the reply is an error (GitHub sends errors with HTTP 200). */
export function replyError(reply: FormReply): string | undefined {
  if (reply.body['error'] === undefined) return undefined;
  return safeErrorCode(reply.body['error']) ?? 'unknown_error';
}

/** An OAuthError describing a failed reply, with the provider's own words scrubbed of secrets. */
export function replyFailure(reply: FormReply, ctx: PostContext, summary: string, hint?: string): OAuthError {
  const raw = replyError(reply);
  const code = raw === undefined ? undefined : scrub(raw, reply.secrets);
  const desc = reply.body['error_description'];
  const parts = [code ?? `HTTP ${reply.status}`];
  if (typeof desc === 'string' && desc.trim() !== '') parts.push(scrub(desc.trim(), reply.secrets));
  const extra = code === undefined ? { transport: reply.status >= 500 } : { oauthError: code };
  return new OAuthError(ctx.failCode, `${summary}: ${parts.join(': ')}`, hint, extra);
}

export function isSuccess(reply: FormReply): boolean {
  return reply.status >= 200 && reply.status < 300 && reply.body['error'] === undefined;
}
