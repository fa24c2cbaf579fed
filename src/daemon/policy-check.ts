import { realpath } from 'node:fs/promises';
import { AppError, isAppError } from '../errors.js';
import { assertName } from '../names.js';
import { pathProblem, type PolicyAction } from '../policy/index.js';
import { parseAuthority, parseOriginTarget } from '../proxy/destination.js';
import type { App } from '../app.js';

/**
 * `authsome policy check PROFILE METHOD URL`: what the profile's policy decides for one request,
 * by the same decide() the proxy calls, with nothing sent. The provider comes from the URL (the
 * proxy's own matcher), the connection from --connection or the profile's default, the caller from
 * --exe (resolved to its real path, as `policy set` does with rules); without --exe the caller is
 * unknown, as for a process that cannot be attributed.
 */
export interface PolicyCheck {
  profile: string;
  method: string;
  url: string;
  provider: string | null;
  connection: string | null;
  exe: string | null;
  /** Whether a policy is set for the profile. */
  policy: boolean;
  /** False when the proxy would inject nothing here: the policy is not consulted then. */
  applies: boolean;
  action: PolicyAction;
  /** The deciding rule's index; null when the default decided. */
  rule: number | null;
  /** The deciding allow rule's rate, e.g. "60/min" (no token is taken by a check). */
  rate?: string;
  reason: string;
}

const METHOD = /^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,32}$/;

function input(message: string, hint: string): AppError {
  return new AppError('ERR_INPUT_INVALID', message, hint);
}

export async function checkPolicyRequest(
  app: App,
  profile: string,
  body: {
    method?: string | undefined;
    url?: string | undefined;
    connection?: string | undefined;
    exe?: string | undefined;
  },
): Promise<PolicyCheck> {
  const { method, url } = body;
  if (method === undefined || !METHOD.test(method))
    throw input('"method" must be an HTTP method such as GET', 'authsome policy check PROFILE GET https://…');
  if (url === undefined) throw input('"url" is required', 'authsome policy check PROFILE GET https://…');
  const m = /^([a-zA-Z][a-zA-Z0-9+.-]*):\/\/([^/?#]*)([^#]*)$/.exec(url);
  if (!m) throw input('the URL must be absolute, e.g. https://api.github.com/user', 'give the full URL');
  const scheme = m[1]!.toLowerCase();
  const rest = m[3]! === '' ? '/' : m[3]!.startsWith('?') ? `/${m[3]!}` : m[3]!;
  let host: string;
  let port: number;
  let path: string;
  let named: boolean;
  try {
    const a = parseAuthority(m[2]!, scheme === 'https' ? 443 : 80);
    ({ host, port } = a);
    named = a.kind === 'name';
    path = parseOriginTarget(rest).path;
  } catch (e) {
    if (!isAppError(e)) throw e;
    // The proxy answers 400 before any policy is read; say so instead of guessing a decision.
    throw input(
      `the proxy refuses this URL (400 ${e.code}): ${e.message}`,
      'check the URL as the program sends it',
    );
  }
  const stored = await app.policies.get(profile);
  const exe = body.exe === undefined ? null : await realpath(body.exe).catch(() => body.exe!);
  const base = { profile, method, url, exe, policy: stored !== undefined };
  const def = scheme === 'https' && named ? app.providers.match({ host, port, path }) : undefined;
  const conns = def ? await app.connections.list(profile, def.name) : [];
  const connection =
    body.connection !== undefined
      ? assertName('connection', body.connection)
      : (conns.find((c) => c.isDefault)?.connection ?? null);
  const exists = conns.some((c) => c.connection === connection);
  if (!def) {
    const why =
      scheme !== 'https'
        ? `plain ${scheme}:// is never injected`
        : `no provider covers ${host}:${port}${path}`;
    return {
      ...base,
      provider: null,
      connection,
      applies: false,
      action: 'allow',
      rule: null,
      reason: `${why}: the proxy injects no credential here, so no policy applies`,
    };
  }
  const d = await app.policies.decide(profile, {
    provider: def.name,
    connection: connection ?? undefined,
    method,
    path,
    exe,
  });
  const who =
    d.ruleIndex === null
      ? stored
        ? `the default (${stored.policy.default})`
        : 'no policy is set'
      : `rules[${d.ruleIndex}]`;
  const reason =
    d.reason === 'needs-normalising'
      ? `the path ${pathProblem(path) ?? 'needs normalising'}, and the policy names paths: refused (ERR_POLICY_DENIED)`
      : d.action === 'deny'
        ? `${who} denies it: 403 ERR_POLICY_DENIED, nothing upstream`
        : d.action === 'approve'
          ? `${who} holds it until the owner approves or rejects it (authsome approvals)`
          : `${who} allows it${d.rate ? `, at most ${d.rate.text}` : ''}`;
  return {
    ...base,
    provider: def.name,
    connection,
    applies: exists,
    action: d.action,
    rule: d.ruleIndex,
    ...(d.rate ? { rate: d.rate.text } : {}),
    reason: exists
      ? reason
      : `${reason}; but profile "${profile}" has no ${connection === null ? `default ${def.name} connection` : `${def.name} connection "${connection}"`}, so the proxy would inject nothing`,
  };
}
