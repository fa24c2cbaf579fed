import { isAppError } from '../errors.js';
import { mask } from '../secret.js';
import { tenantWildcards } from '../providers/host.js';
import { parseTemplate, type TemplateArg } from '../providers/template.js';
import type { CredentialFields, ProviderDef } from '../providers/types.js';
import { parseAuthority, parseOriginTarget, type HostKind } from '../proxy/destination.js';
import { checkTenantHost, chooseConnection } from '../proxy/connection-choice.js';
import type { ResolvedCredential } from '../proxy/types.js';
import type { App } from '../app.js';
import type { Decision as PolicyDecision, PolicyAction } from '../policy/index.js';

/**
 * `authsome explain URL`: what the proxy would do with one request from this profile, decided by the
 * same canonicaliser and provider matcher the proxy uses. Values are masked with mask(): no field
 * value ever leaves the daemon. A session minted with --allow can only narrow the answer.
 */
export type Decision =
  | 'inject'
  | 'tunnel'
  | 'forward'
  | 'cleartext'
  | 'denied'
  | 'no-connection'
  | 'no-default'
  | 'invalid'
  | 'policy-denied';

export interface Explanation {
  url: string;
  profile: string;
  decision: Decision;
  reason: string;
  hint?: string;
  destination?: { scheme: string; host: string; port: number; path: string };
  provider?: { name: string; displayName: string };
  connection?: { name: string; isDefault: boolean; requested: boolean };
  /** What the proxy sets, values masked. */
  headers: Array<{ name: string; value: string }>;
  query: Array<{ name: string; value: string }>;
  /** Caller-sent headers the proxy removes before forwarding. */
  strips: string[];
  /** The profile's policy on this request (SPEC section 9), where the proxy would inject. */
  policy?: { action: PolicyAction; rule: number | null; rate?: string; reason: string };
}

function maskedField(fields: CredentialFields, name: string): string {
  const s = Object.hasOwn(fields, name) ? fields[name] : undefined;
  return s ? mask(s.reveal()) : `<missing field ${name}>`;
}

function maskedValue(template: string, fields: CredentialFields): string {
  const parsed = parseTemplate(template);
  if (!parsed.ok) return '<invalid template>';
  const arg = (a: TemplateArg) => (a.kind === 'lit' ? `'${a.text}'` : maskedField(fields, a.name));
  return parsed.parts
    .map((p) =>
      p.kind === 'lit'
        ? p.text
        : p.kind === 'field'
          ? maskedField(fields, p.name)
          : `base64(${p.args.map(arg).join(' + ')})`,
    )
    .join('');
}

function splitUrl(raw: string): { scheme: string; authority: string; rest: string } | undefined {
  const m = /^([a-zA-Z][a-zA-Z0-9+.-]*):\/\/([^/?#]*)([^#]*)/.exec(raw);
  return m ? { scheme: m[1]!.toLowerCase(), authority: m[2]!, rest: m[3]! } : undefined;
}

export async function explainRequest(
  app: App,
  profile: string,
  url: string,
  requested: string | undefined,
  method = 'GET',
): Promise<Explanation> {
  const base: Base = { url, profile, headers: [], query: [], strips: [] };
  const parts = splitUrl(url);
  const secure = parts?.scheme === 'https' || parts?.scheme === 'wss';
  if (!parts || (!secure && parts.scheme !== 'http' && parts.scheme !== 'ws')) {
    return {
      ...base,
      decision: 'invalid',
      reason: 'not an absolute http(s):// URL',
      hint: 'give the full URL, e.g. https://api.github.com/user',
    };
  }
  let dest: NonNullable<Explanation['destination']>;
  let kind: HostKind;
  try {
    const a = parseAuthority(parts.authority, secure ? 443 : 80);
    const rest = parts.rest === '' ? '/' : parts.rest.startsWith('?') ? `/${parts.rest}` : parts.rest;
    dest = { scheme: parts.scheme, host: a.host, port: a.port, path: parseOriginTarget(rest).path };
    kind = a.kind;
  } catch (e) {
    if (!isAppError(e)) throw e;
    return {
      ...base,
      decision: 'invalid',
      reason: `the proxy refuses this request (400): ${e.message}`,
      hint: 'send a canonical URL: lower-case DNS name, no userinfo, no percent-encoded host, no dot segments',
    };
  }
  const withDest = { ...base, destination: dest };
  // The address filter and the loop check apply to every destination, provider or not.
  const refused = await app.proxy.checkDestination({ host: dest.host, port: dest.port, kind }).then(
    () => undefined,
    (err: unknown) => (isAppError(err) && err.code.startsWith('ERR_PROXY_') ? err : undefined),
  );
  if (refused) {
    return {
      ...withDest,
      decision: 'denied',
      reason: `the proxy refuses this destination (${refused.status} ${refused.code}): ${refused.message}`,
      hint: refused.hint ?? 'reach it directly: add it to NO_PROXY',
    };
  }
  if (!secure) {
    const would =
      kind === 'name' ? app.providers.match({ host: dest.host, port: 443, path: dest.path }) : undefined;
    return {
      ...withDest,
      decision: 'cleartext',
      reason: would
        ? `plain ${dest.scheme}:// is forwarded without a credential: the proxy never injects over cleartext (over https, provider ${would.name} would apply)`
        : `plain ${dest.scheme}:// is forwarded without a credential: the proxy never injects over cleartext`,
      ...(would ? { hint: `use https://${dest.host}${dest.path}` } : {}),
    };
  }
  const def =
    kind === 'name' ? app.providers.match({ host: dest.host, port: dest.port, path: dest.path }) : undefined;
  if (!def) {
    const covered = kind === 'name' && app.providers.covers(dest.host, dest.port);
    if (covered) {
      return {
        ...withDest,
        decision: 'forward',
        reason: `a provider covers ${dest.host}:${dest.port}, but not the path ${dest.path}: the request is intercepted and forwarded without a credential`,
      };
    }
    if (app.settings.proxy.strict) {
      return {
        ...withDest,
        decision: 'denied',
        reason: `no provider covers ${dest.host}:${dest.port}, and the proxy runs in strict mode: 403 ERR_PROXY_DESTINATION_DENIED`,
        hint: 'add NO_PROXY for it, or add a provider: authsome provider add FILE',
      };
    }
    return {
      ...withDest,
      decision: 'tunnel',
      reason:
        kind === 'name'
          ? `no provider covers ${dest.host}:${dest.port}: the request is tunnelled untouched (no interception, no credential)`
          : 'an IP literal never matches a provider: the request is tunnelled untouched (no credential)',
      hint: 'to inject a credential here, add a provider that declares this host: authsome provider add FILE',
    };
  }
  return withProvider(app, withDest, def, requested, method);
}

type Base = Omit<Explanation, 'decision' | 'reason'>;

async function withProvider(
  app: App,
  e: Base,
  def: ProviderDef,
  requested: string | undefined,
  method: string,
): Promise<Explanation> {
  const provider = { name: def.name, displayName: def.displayName };
  const strips = [
    ...new Set(def.inject.filter((r) => r.type === 'header').map((r) => r.name.toLowerCase())),
    'x-authsome-connection',
  ];
  const names = (await app.connections.list(e.profile, def.name)).map((c) => c.connection);
  const others = names.length ? ` (this profile has: ${names.join(', ')})` : '';
  const at = { ...e, provider, strips };
  // The proxy's own choice, for a session without --allow: explain can never disagree with it.
  let cred: ResolvedCredential | undefined;
  try {
    cred = await chooseConnection(
      app.connections,
      { id: 'explain', profile: e.profile, allow: undefined, expiresAt: Number.MAX_SAFE_INTEGER },
      def,
      requested,
    );
  } catch (err) {
    if (!isAppError(err) || err.code !== 'ERR_PROXY_CONNECTION_DENIED') throw err;
    const what =
      requested !== undefined
        ? `no ${def.name} connection "${requested}"`
        : names.length === 0
          ? `no ${def.name} connection`
          : `no default ${def.name} connection`;
    return {
      ...at,
      decision: requested === undefined && names.length > 0 ? 'no-default' : 'no-connection',
      reason: `profile "${e.profile}" has ${what}${others}: the proxy answers 403 ERR_PROXY_CONNECTION_DENIED and sends nothing upstream`,
      hint:
        requested === undefined && names.length > 0
          ? `authsome connection default ${def.name} ${names[0]}`
          : `authsome login ${def.name}${requested !== undefined ? ` --connection ${requested}` : ''}`,
    };
  }
  if (!cred) {
    // Only with no connection of this provider at all (connections without a default are a 403 above).
    return {
      ...at,
      decision: 'forward',
      reason: `profile "${e.profile}" has no ${def.name} connection: the request is intercepted and forwarded without a credential`,
      hint: `authsome login ${def.name}${tenantWildcards(def).length ? ' --host <your host>' : ''}`,
    };
  }
  const conns = await app.connections.list(e.profile, def.name);
  const isDefault = conns.some((c) => c.connection === cred.connection && c.isDefault);
  const host = e.destination?.host ?? '';
  try {
    checkTenantHost(def, cred, host);
  } catch (err) {
    if (!isAppError(err)) throw err;
    return {
      ...at,
      connection: { name: cred.connection, isDefault, requested: requested !== undefined },
      decision: 'denied',
      reason: `${err.message}: the proxy answers 403 ERR_PROXY_CONNECTION_DENIED and sends nothing upstream`,
      ...(err.hint ? { hint: err.hint } : {}),
    };
  }
  const headers = def.inject
    .filter((r) => r.type === 'header')
    .map((r) => ({ name: r.name, value: maskedValue(r.template, cred.fields) }));
  const query = def.inject
    .filter((r) => r.type === 'query')
    .map((r) => ({ name: r.name, value: maskedValue(r.template, cred.fields) }));
  const how = [
    ...headers.map((h) => `header ${h.name}`),
    ...query.map((q) => `query parameter ${q.name}`),
  ].join(', ');
  // The same decide() the proxy calls, with the caller unknown (explain is not the agent's process).
  const d = await app.policies.decide(e.profile, {
    provider: def.name,
    connection: cred.connection,
    method,
    path: e.destination?.path ?? '/',
    exe: null,
  });
  const policy = (await app.policies.get(e.profile))
    ? {
        action: d.action,
        rule: d.ruleIndex,
        ...(d.rate ? { rate: d.rate.text } : {}),
        reason: policyReason(d),
      }
    : undefined;
  const chosen = { name: cred.connection, isDefault, requested: requested !== undefined };
  if (d.action === 'deny')
    return {
      ...at,
      connection: chosen,
      decision: 'policy-denied',
      ...(policy ? { policy } : {}),
      reason: `provider ${def.name}, connection "${cred.connection}": ${policyReason(d)}`,
      hint: `authsome policy show ${e.profile}`,
    };
  return {
    ...at,
    headers,
    query,
    ...(policy ? { policy } : {}),
    connection: chosen,
    decision: 'inject',
    reason: `provider ${def.name} covers ${e.destination?.host}:${e.destination?.port}; connection "${cred.connection}"${isDefault && requested === undefined ? ' (the default)' : ''} sets ${how}, after an audit record (proxy.inject) is written`,
  };
}

/** One line on what the policy's decision means for the request. */
function policyReason(d: PolicyDecision): string {
  const who = d.ruleIndex === null ? 'the default' : `rule ${d.ruleIndex}`;
  if (d.reason === 'needs-normalising')
    return 'the policy names paths and this one would need normalising: 403 ERR_POLICY_DENIED, nothing upstream';
  if (d.action === 'deny') return `the policy denies it (${who}): 403 ERR_POLICY_DENIED, nothing upstream`;
  if (d.action === 'approve')
    return `the policy holds it (${who}) until the owner answers (authsome approvals), then sends it or answers 403`;
  return `the policy allows it (${who})${d.rate ? `, at most ${d.rate.text} (429 past it)` : ''}`;
}
