import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import { AppError } from '../errors.js';
import { decide, type Decision, type HoldOutcome } from '../policy/index.js';
import type { ProxyContext } from './context.js';
import { auditBestEffort, traceRecord, type Trace } from './pipeline.js';

/**
 * The policy step of the pipeline (SPEC section 9): after the connection is chosen, before the
 * injection's audit record. Only requests the proxy would inject get here. A refusal writes its own
 * policy.* record (the trace is marked, so no proxy.deny follows) and throws the error the caller sees.
 */
export async function enforcePolicy(
  ctx: ProxyContext,
  req: IncomingMessage,
  client: Socket,
  t: Trace,
  facts: { profile: string; provider: string; connection: string; path: string },
): Promise<void> {
  const gate = ctx.deps.policy;
  if (!gate) return;
  const policy = await gate.get(facts.profile);
  if (policy === undefined && !gate.attributeAll) return;
  if (gate.attributeAll || policy?.namesExe) {
    const caller = await callerOf(ctx, client);
    t.pid = caller.pid;
    t.exe = caller.exe;
  }
  if (policy === undefined) return;
  const method = req.method ?? 'GET';
  const d = decide(policy, { ...facts, method, exe: t.exe });
  t.rule = d.ruleIndex;
  if (d.action === 'deny') return refuse(ctx, t, facts.profile, d);
  if (d.action === 'allow') return d.rate ? rate(ctx, t, facts, d) : undefined;
  if (await gate.granted(facts.profile, facts.connection, method, facts.path)) return;
  return approval(ctx, req, t, { ...facts, method }, d);
}

/**
 * At CONNECT: when this profile's requests will need the calling process, start looking for it now,
 * so the lookup (a few ms of /proc reading) overlaps the TLS handshake instead of the first request.
 */
export function prefetchCaller(ctx: ProxyContext, client: Socket, profile: string): void {
  const gate = ctx.deps.policy;
  if (!gate) return;
  if (gate.attributeAll) return void callerOf(ctx, client);
  gate.get(profile).then(
    (p) => p?.namesExe && void callerOf(ctx, client),
    () => undefined, // a damaged policy is refused by the request itself
  );
}

/** The calling process of this client connection: looked up once, kept with the connection. */
export function callerOf(
  ctx: ProxyContext,
  client: Socket,
): Promise<{ pid: number | null; exe: string | null }> {
  let found = ctx.callers.get(client);
  if (!found) {
    found = ctx.deps.callers?.find(client) ?? Promise.resolve({ pid: null, exe: null });
    ctx.callers.set(client, found);
  }
  return found;
}

function refuse(ctx: ProxyContext, t: Trace, profile: string, d: Decision): never {
  t.audited = true;
  ctx.stats.denied++;
  const err =
    d.reason === 'needs-normalising'
      ? new AppError(
          'ERR_POLICY_DENIED',
          'the policy names paths, and this path would need normalising to be read (dot or empty segments, needless percent-encoding, backslashes)',
          'send the path in its plain form',
        )
      : new AppError(
          'ERR_POLICY_DENIED',
          d.ruleIndex === null
            ? "this profile's policy denies the request (its default)"
            : `this profile's policy denies the request (rule ${d.ruleIndex})`,
          `see \`authsome policy check ${profile} METHOD URL\``,
        );
  ctx.denials.deny(
    traceRecord(t, {
      event: 'policy.deny',
      profile,
      status: err.status,
      reason: d.reason === 'needs-normalising' ? 'needs-normalising' : err.code,
    }),
    t.session,
  );
  throw err;
}

async function rate(
  ctx: ProxyContext,
  t: Trace,
  facts: { profile: string; connection: string },
  d: Decision,
): Promise<void> {
  const gate = ctx.deps.policy!;
  const r = await gate.takeRate(facts.profile, facts.connection, d);
  if (r.ok) return;
  t.audited = true;
  ctx.stats.denied++;
  const err = new AppError(
    'ERR_POLICY_RATE_LIMITED',
    `this profile's policy allows ${d.rate!.text} here (rule ${d.ruleIndex}); try again in ${r.retryAfterS} s`,
    'wait for Retry-After, or ask the owner to raise the rate',
    { retryAfterS: r.retryAfterS },
  );
  gate.rateLimited(
    facts.profile,
    d,
    traceRecord(t, {
      event: 'policy.rate_limited',
      profile: facts.profile,
      status: err.status,
      reason: err.code,
    }),
  );
  throw err;
}

/**
 * An `approve` rule: the request is held, its client connection open and unread, until the owner
 * answers or the timeout passes. The client going away takes it off the list.
 */
async function approval(
  ctx: ProxyContext,
  req: IncomingMessage,
  t: Trace,
  facts: { profile: string; provider: string; connection: string; path: string; method: string },
  d: Decision,
): Promise<void> {
  const gate = ctx.deps.policy!;
  const { held, outcome } = await gate.hold({
    profile: facts.profile,
    provider: facts.provider,
    connection: facts.connection,
    method: facts.method,
    path: facts.path,
    exe: t.exe ?? null,
    pid: t.pid ?? null,
    rule: d.ruleIndex,
  });
  auditBestEffort(
    ctx,
    traceRecord(t, { event: 'policy.approval_wait', profile: facts.profile, detail: { id: held.id } }),
  );
  // A held request waits as long as the owner takes: the idle timeout must not cut it meanwhile.
  const socket = req.socket;
  const idle = socket.timeout;
  socket.setTimeout(0);
  const gone = (): void => void gate.cancel(held.id);
  socket.once('close', gone);
  let result: HoldOutcome;
  try {
    result = await outcome;
  } finally {
    socket.off('close', gone);
    if (!socket.destroyed && idle !== undefined) socket.setTimeout(idle);
  }
  const detail = { id: held.id };
  if (result.result === 'approved') {
    auditBestEffort(
      ctx,
      traceRecord(t, {
        event: 'policy.approved',
        profile: facts.profile,
        detail: {
          ...detail,
          by: result.by,
          ...(result.forMs !== null ? { for_s: Math.round(result.forMs / 1000) } : {}),
        },
      }),
    );
    return;
  }
  t.audited = true;
  ctx.stats.denied++;
  const err =
    result.result === 'cancelled'
      ? new AppError(
          'ERR_POLICY_APPROVAL_REJECTED',
          'the client went away while the request waited for approval',
        )
      : result.result === 'timeout'
        ? new AppError(
            'ERR_POLICY_APPROVAL_TIMEOUT',
            'the request waited for approval and no one answered in time',
            `ask the owner to watch \`authsome approvals --follow\`, then send it again`,
          )
        : new AppError(
            'ERR_POLICY_APPROVAL_REJECTED',
            result.reason === 'shutdown'
              ? 'the request waited for approval and the daemon stopped'
              : result.reason === 'profile-deleted'
                ? 'the request waited for approval and its profile was deleted'
                : result.reason === 'node-lost'
                  ? 'the request waited for approval and the other nodes took this node for stopped'
                  : 'the owner rejected the request',
            'ask the owner (authsome approvals) before sending it again',
          );
  auditBestEffort(
    ctx,
    traceRecord(t, {
      event: result.result === 'timeout' ? 'policy.approval_timeout' : 'policy.rejected',
      profile: facts.profile,
      status: err.status,
      reason:
        result.result === 'timeout'
          ? err.code
          : result.result === 'cancelled'
            ? 'client-gone'
            : result.reason,
      detail: { ...detail, ...(result.result === 'rejected' && result.by ? { by: result.by } : {}) },
    }),
  );
  throw err;
}
