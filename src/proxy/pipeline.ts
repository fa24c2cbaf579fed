import type { IncomingMessage } from 'node:http';
import { randomUUID } from 'node:crypto';
import { AppError, isAppError } from '../errors.js';
import type { ProviderDef } from '../providers/types.js';
import type { AuditInput, AuditSink } from '../audit/types.js';
import { checkTenantHost, chooseConnection, requestedConnection } from './connection-choice.js';
import type { ProxyContext, Tunnel } from './context.js';
import type { Authority } from './destination.js';
import { checkRequestHead, requestLineBytes, upstreamRequestHeaders } from './headers.js';
import { renderInjection, responseNeedles, strippedForInjection } from './inject-adapter.js';
import { parseRequest } from './request-target.js';
import type { SessionInfo } from './types.js';
import type { PoolOwner } from './upstream.js';
import { enforcePolicy } from './policy-step.js';

/** A request ready to go upstream: checked, audited, injected. */
export interface Prepared {
  readonly requestId: string;
  readonly authority: Authority;
  readonly secure: boolean;
  /** scheme://host:port of the upstream (what the pool is keyed by). */
  readonly origin: string;
  readonly method: string;
  /** Origin-form target as sent upstream (query injection applied). */
  readonly pathAndQuery: string;
  /** Whose upstream pool carries it (upstream.ts). */
  readonly owner: PoolOwner;
  /** Flat [name, value, ...] list, Host first. */
  readonly headers: string[];
  readonly injected: boolean;
  /** The head announces a body (checkRequestHead). */
  readonly hasBody: boolean;
  /** Injected requests only: what the response must not carry back (secret-scan.ts). */
  readonly needles: readonly Buffer[] | undefined;
  /** For the proxy.secret_echo record. */
  readonly trace: Trace;
}

/**
 * What is known so far about a request, for the proxy.deny record when a step refuses it. A class with
 * every field declared, so all traces share one shape (this is built and read on every request).
 */
export class Trace {
  readonly requestId = randomUUID();
  profile: string | undefined = undefined;
  provider: string | undefined = undefined;
  connection: string | undefined = undefined;
  host: string | undefined = undefined;
  path: string | undefined = undefined;
  /** Policy: the deciding rule (null: the default), and the calling process where it was looked up. */
  rule: number | null | undefined = undefined;
  pid: number | null | undefined = undefined;
  exe: string | null | undefined = undefined;
  /** A step already wrote this request's refusal record (policy.*): no proxy.deny after it. */
  audited = false;
  /** A doctor probe session's request: refused without a credential, audited as doctor.probe. */
  probe = false;
  /** The session that identified the request (refusals are folded per session, deny-fold.ts). */
  session: string | undefined = undefined;
  constructor(readonly method: string | undefined) {}
}

export function newTrace(method: string | undefined): Trace {
  return new Trace(method);
}

async function identify(
  ctx: ProxyContext,
  req: IncomingMessage,
  tunnel: Tunnel | undefined,
): Promise<SessionInfo> {
  if (!tunnel) {
    const session = await ctx.identifier.forSocket(req.socket, req.rawHeaders);
    ctx.limiter.claim(req.socket, session.profile);
    ctx.live.bindSession(req.socket, session);
    return session;
  }
  tunnel.identity = await ctx.identifier.refresh(tunnel.identity);
  return tunnel.identity.session;
}

/**
 * parse → identify → match provider → choose connection → check destination → audit → inject.
 * Nothing goes upstream before this returns, and it returns only after the audit record is durable.
 */
export async function prepare(
  ctx: ProxyContext,
  req: IncomingMessage,
  tunnel: Tunnel | undefined,
  t: Trace,
): Promise<Prepared> {
  const s = ctx.settings;
  const hasBody = checkRequestHead(
    req.rawHeaders,
    s.maxHeaderCount,
    s.maxHeaderSize,
    requestLineBytes(req.method, req.url),
  );
  const { authority, target, secure, host } = parseRequest(req, tunnel);
  t.host = authority.host;
  t.path = target.path;
  const session = await identify(ctx, req, tunnel);
  t.profile = session.profile;
  t.session = session.id;
  t.probe = session.probe === true;
  const requested = requestedConnection(req.rawHeaders);
  // Cleartext and IP literals never match a provider, so they never carry a secret.
  const provider: ProviderDef | undefined =
    secure && authority.kind === 'name'
      ? ctx.deps.providers.match({ host: authority.host, port: authority.port, path: target.path })
      : undefined;
  if (
    !provider &&
    s.strict &&
    !(authority.kind === 'name' && ctx.deps.providers.covers(authority.host, authority.port))
  ) {
    throw new AppError(
      'ERR_PROXY_DESTINATION_DENIED',
      'strict mode: only hosts a provider covers are proxied',
    );
  }
  let pathAndQuery = target.pathAndQuery;
  const headers = ['host', host];
  if (provider) t.provider = provider.name;
  if (provider && t.probe)
    throw new AppError(
      'ERR_PROXY_CONNECTION_DENIED',
      'an `authsome doctor` probe session uses no credential: the proxy answers it itself',
      'use `authsome run` or `authsome proxy env` for real requests',
    );
  const cred = provider && (await chooseConnection(ctx.deps.credentials, session, provider, requested));
  let needles: readonly Buffer[] | undefined;
  if (provider && cred) {
    t.connection = cred.connection;
    checkTenantHost(provider, cred, authority.host);
    await enforcePolicy(ctx, req, tunnel?.client ?? req.socket, t, {
      profile: session.profile,
      provider: provider.name,
      connection: cred.connection,
      path: target.path,
    });
    ctx.policy.precheck(authority);
    const injection = renderInjection(provider, cred.fields, pathAndQuery);
    needles = responseNeedles(provider, cred.fields);
    await auditInject(ctx, t);
    headers.push(...upstreamRequestHeaders(req.rawHeaders, { injected: strippedForInjection(provider) }));
    for (const [name, value] of injection.headers) headers.push(name, value);
    pathAndQuery = injection.pathAndQuery;
  } else {
    ctx.policy.precheck(authority);
    headers.push(...upstreamRequestHeaders(req.rawHeaders));
  }
  const origin = `${secure ? 'https' : 'http'}://${authority.host}:${authority.port}`;
  return {
    requestId: t.requestId,
    authority,
    secure,
    origin,
    method: req.method ?? 'GET',
    pathAndQuery,
    owner: { profile: session.profile, provider: cred && provider?.name, connection: cred?.connection },
    headers,
    injected: cred !== undefined,
    hasBody,
    needles,
    trace: t,
  };
}

/** Durable before send (SPEC section 8 promise 3): a failed write fails the request with 503. */
async function auditInject(ctx: ProxyContext, t: Trace): Promise<void> {
  try {
    await ctx.deps.audit.append(traceRecord(t, { event: 'proxy.inject', profile: t.profile! }));
  } catch (e) {
    throw isAppError(e) && e.code === 'ERR_AUDIT_UNAVAILABLE'
      ? e
      : new AppError(
          'ERR_AUDIT_UNAVAILABLE',
          'the audit log cannot be written, so nothing was sent',
          'check the disk holding AUTHSOME_HOME',
          { cause: e },
        );
  }
  ctx.stats.injected++;
}

export type EventFields = Pick<AuditInput, 'event' | 'profile'> &
  Pick<Partial<AuditInput>, 'status' | 'reason' | 'detail'>;

/** The audit record of a request: what the trace knows so far, plus the event's own fields. */
export function traceRecord(t: Trace, base: EventFields): AuditInput {
  const rec: AuditInput = { event: base.event, profile: base.profile, request_id: t.requestId };
  if (t.provider !== undefined) rec.provider = t.provider;
  if (t.connection !== undefined) rec.connection = t.connection;
  if (t.method !== undefined) rec.method = t.method;
  if (t.host !== undefined) rec.host = t.host;
  if (t.path !== undefined) rec.path = t.path;
  if (t.rule !== undefined) rec.rule = t.rule;
  if (t.pid !== undefined) rec.pid = t.pid;
  if (t.exe !== undefined) rec.exe = t.exe;
  if (base.status !== undefined) rec.status = base.status;
  if (base.reason !== undefined) rec.reason = base.reason;
  if (base.detail !== undefined) rec.detail = base.detail;
  return rec;
}

/** Denials and echoes are recorded, but a failing audit log (or a throwing sink) must not crash. */
export function auditBestEffort(ctx: { deps: { audit: AuditSink } }, rec: AuditInput): void {
  try {
    ctx.deps.audit.append(rec).catch(() => undefined);
  } catch {
    // a synchronous throw from the sink is as harmless as a rejection
  }
}

/** An upstream echoed the injected secret (blocked or redacted); best effort, like a denial. */
export function auditEcho(
  ctx: ProxyContext,
  t: Trace,
  where: 'header' | 'body' | 'frame',
  status: number,
): void {
  auditBestEffort(
    ctx,
    traceRecord(t, {
      event: 'proxy.secret_echo',
      profile: t.profile ?? '-',
      status,
      reason: where === 'header' ? 'ERR_UPSTREAM_SECRET_ECHO' : 'redacted',
      detail: { where },
    }),
  );
}

/**
 * An injected request that failed after its proxy.inject record (best effort): the destination
 * refused at dial time (DNS rebinding, address filter), the upstream's certificate, a connect or
 * read failure, a timeout. Without it the log would show only the injection. An echo already has
 * its own proxy.secret_echo record.
 */
export function auditAfterInject(ctx: ProxyContext, t: Trace, err: AppError): void {
  if (err.code === 'ERR_UPSTREAM_SECRET_ECHO') return;
  const event = err.code.startsWith('ERR_PROXY_') ? 'proxy.deny' : 'proxy.error';
  if (event === 'proxy.deny') ctx.stats.denied++;
  auditBestEffort(
    ctx,
    traceRecord(t, { event, profile: t.profile ?? '-', status: err.status, reason: err.code }),
  );
}

/**
 * A refused request is recorded (best effort), bounded and folded per caller and reason (deny-fold.ts);
 * `authsome doctor`'s probes as doctor.probe, so they stay out of the default `authsome audit` view.
 * `source`: the client's address, which tells refusals without a session token apart (with one, the
 * session does).
 */
export function auditDeny(ctx: ProxyContext, t: Trace, err: AppError, source: string | undefined): void {
  if (t.audited) return; // the policy step counted and recorded its own refusal
  ctx.stats.denied++;
  if (err.code === 'ERR_AUDIT_UNAVAILABLE') return;
  const event = t.probe ? 'doctor.probe' : 'proxy.deny';
  ctx.denials.deny(
    traceRecord(t, { event, profile: t.profile ?? '-', status: err.status, reason: err.code }),
    t.session ?? source,
  );
}

/** The folder's writer: denials are best effort, like every record but the injection's. */
export function denyWriter(ctx: { deps: { audit: AuditSink } }): (rec: AuditInput) => void {
  return (rec) => auditBestEffort(ctx, rec);
}
