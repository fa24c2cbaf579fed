import { setTimeout as delay } from 'node:timers/promises';
import { Secret } from '../../secret.js';
import { checkEndpoint } from './endpoint.js';
import { OAuthError, cancelled, loginHint } from './errors.js';
import { isSuccess, postForm, replyError, replyFailure } from './http.js';
import type { PostContext } from './http.js';
import { scopeParam, toTokenSet } from './token-set.js';
import type { OAuthClientOptions, TokenSet } from './types.js';

/** RFC 8628 §3.2 device authorization response. Times are in seconds, as the RFC has them. */
export interface DeviceAuthorization {
  deviceCode: Secret;
  userCode: string;
  verificationUri: string;
  verificationUriComplete?: string;
  expiresIn: number;
  interval: number;
}

export interface StartDeviceFlowOptions extends OAuthClientOptions {
  scopes?: string[];
}

export type Sleep = (ms: number, signal?: AbortSignal) => Promise<void>;

export interface DeviceTick {
  attempt: number;
  /** The wait before the next poll. */
  intervalMs: number;
  status: 'authorization_pending' | 'slow_down' | 'retry';
}

export interface PollDeviceOptions extends OAuthClientOptions {
  deviceCode: Secret;
  /** Seconds, from DeviceAuthorization.interval. */
  interval: number;
  /** Seconds; polling stops locally once the device code has expired. */
  expiresIn?: number;
  sleep?: Sleep;
  onTick?: (tick: DeviceTick) => void;
}

const DEVICE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code'; // RFC 8628 §3.4
const DEFAULT_INTERVAL_S = 5; // RFC 8628 §3.2
const MIN_INTERVAL_S = 1; // never hammer a provider that says 0
const MAX_TRANSPORT_FAILURES = 3;
const DISPLAYABLE = /^[\x20-\x7e]{1,64}$/;

const defaultSleep: Sleep = (ms, signal) => delay(ms, undefined, signal === undefined ? {} : { signal });

/** RFC 8628 §3.1: ask for a device code and a user code. */
export async function startDeviceFlow(opts: StartDeviceFlowOptions): Promise<DeviceAuthorization> {
  const url = opts.oauth.deviceUrl;
  if (url === undefined) {
    throw new OAuthError(
      'ERR_INPUT_INVALID',
      `${opts.provider ?? 'this provider'} does not offer the device flow`,
      'choose another --flow',
    );
  }
  const form = new URLSearchParams();
  const scope = scopeParam(opts.scopes ?? opts.oauth.scopes);
  if (scope !== undefined) form.set('scope', scope);
  const ctx: PostContext = { what: 'device authorization endpoint', failCode: 'ERR_OAUTH_FAILED' };
  const reply = await postForm(opts, url, form, ctx);
  if (!isSuccess(reply)) throw replyFailure(reply, ctx, 'the provider refused to start the device login');
  const b = reply.body;
  const malformed = (field: string) =>
    new OAuthError('ERR_OAUTH_FAILED', `the provider's device authorization reply has no valid ${field}`);
  const deviceCode = b['device_code'];
  if (typeof deviceCode !== 'string' || deviceCode === '') throw malformed('device_code');
  // Shown in the terminal: printable ASCII only, so a provider cannot send escape sequences.
  const userCode = b['user_code'];
  if (typeof userCode !== 'string' || !DISPLAYABLE.test(userCode)) throw malformed('user_code');
  const uri = b['verification_uri'] ?? b['verification_url']; // Google spells it "_url"
  if (typeof uri !== 'string') throw malformed('verification_uri');
  const verificationUri = checkEndpoint(uri, 'verification URI', opts.allowInsecureLoopback).href;
  const expiresIn = Number(b['expires_in']);
  if (!Number.isFinite(expiresIn) || expiresIn <= 0) throw malformed('expires_in');
  const interval = b['interval'] === undefined ? DEFAULT_INTERVAL_S : Number(b['interval']);
  if (!Number.isFinite(interval) || interval < 0) throw malformed('interval');
  const out: DeviceAuthorization = {
    deviceCode: new Secret(deviceCode),
    userCode,
    verificationUri,
    expiresIn,
    interval,
  };
  const complete = b['verification_uri_complete'];
  if (typeof complete === 'string') {
    try {
      out.verificationUriComplete = checkEndpoint(
        complete,
        'verification URI',
        opts.allowInsecureLoopback,
      ).href;
    } catch {
      // optional (RFC 8628 §3.3.1): an unusable one is dropped, the plain URI still works
    }
  }
  return out;
}

/**
 * RFC 8628 §3.4–3.5: poll the token endpoint until the user approves. authorization_pending keeps
 * polling, slow_down adds 5 s to the interval for all later polls, expired_token and access_denied
 * end the login; unreachable endpoints back off exponentially (§3.5) and give up after 3 tries.
 */
export async function pollDeviceToken(opts: PollDeviceOptions): Promise<TokenSet> {
  const now = opts.now ?? Date.now;
  const sleep = opts.sleep ?? defaultSleep;
  const deadline = opts.expiresIn === undefined ? Infinity : now() + opts.expiresIn * 1000;
  const start = Number.isFinite(opts.interval) ? opts.interval : DEFAULT_INTERVAL_S;
  let intervalMs = Math.max(MIN_INTERVAL_S, start) * 1000;
  let waitMs = intervalMs;
  let failures = 0;
  const ctx: PostContext = { what: 'token endpoint', failCode: 'ERR_OAUTH_FAILED' };
  const hint = loginHint(opts.provider);
  for (let attempt = 1; ; attempt++) {
    await sleepOrCancel(sleep, waitMs, opts);
    if (now() >= deadline) {
      throw new OAuthError(
        'ERR_OAUTH_FAILED',
        'the device code expired before the login was approved',
        hint,
        { oauthError: 'expired_token' },
      );
    }
    const form = new URLSearchParams({ grant_type: DEVICE_GRANT, device_code: opts.deviceCode.reveal() });
    let reply;
    try {
      reply = await postForm(opts, opts.oauth.tokenUrl, form, ctx);
      failures = 0;
    } catch (e) {
      if (!(e instanceof OAuthError) || !e.transport || ++failures > MAX_TRANSPORT_FAILURES) throw e;
      waitMs = Math.min(intervalMs * 2 ** failures, 60_000);
      opts.onTick?.({ attempt, intervalMs: waitMs, status: 'retry' });
      continue;
    }
    if (isSuccess(reply)) return toTokenSet(reply.body, now(), 'ERR_OAUTH_FAILED');
    const error = replyError(reply);
    if (error === 'authorization_pending' || error === 'slow_down') {
      if (error === 'slow_down') intervalMs += 5000;
      waitMs = intervalMs;
      opts.onTick?.({ attempt, intervalMs, status: error });
      continue;
    }
    if (error === 'expired_token') {
      throw new OAuthError(
        'ERR_OAUTH_FAILED',
        'the device code expired before the login was approved',
        hint,
        { oauthError: error },
      );
    }
    if (error === 'access_denied') {
      throw new OAuthError(
        'ERR_OAUTH_FAILED',
        'the login was denied at the provider',
        `${hint} and approve the request`,
        { oauthError: error },
      );
    }
    throw replyFailure(reply, ctx, 'the device login failed', hint);
  }
}

async function sleepOrCancel(sleep: Sleep, ms: number, opts: PollDeviceOptions): Promise<void> {
  const { signal } = opts;
  // A function, not a property test: TS would narrow `aborted` to false after the first check.
  const aborted = () => signal?.aborted === true;
  if (aborted()) throw cancelled(opts.provider);
  try {
    await sleep(ms, signal);
  } catch (e) {
    if (aborted()) throw cancelled(opts.provider);
    throw e;
  }
  if (aborted()) throw cancelled(opts.provider);
}
