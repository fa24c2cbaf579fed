import { AppError } from '../errors.js';
import { assertName } from '../names.js';
import { parseDuration } from '../config/settings.js';
import { VERSION } from '../version.js';
import type { App } from '../app.js';
import { Router, str, type RouteContext } from './router.js';
import { explainRequest } from './explain.js';
import { narrowAllow } from '../identity/index.js';
import { addPolicyRoutes } from './policy-routes.js';

function fieldsOf(body: Record<string, unknown>): Record<string, string> {
  const f = body['fields'];
  if (!f || typeof f !== 'object' || Array.isArray(f))
    throw new AppError('ERR_INPUT_INVALID', '"fields" must be an object of strings', 'check the request');
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(f)) {
    if (typeof v !== 'string')
      throw new AppError('ERR_INPUT_INVALID', `field "${k}" must be a string`, 'check the request');
    out[k] = v;
  }
  return out;
}

function hostsOf(body: Record<string, unknown>): string[] | undefined {
  const h = body['hosts'];
  if (h === undefined || h === null) return undefined;
  if (!Array.isArray(h) || h.length > 32 || !h.every((x) => typeof x === 'string'))
    throw new AppError(
      'ERR_INPUT_INVALID',
      '"hosts" must be a list of host names',
      'use --host NAME[,NAME…]',
    );
  return h as string[];
}

function parseAllow(v: unknown): Array<{ provider: string; connection?: string }> | undefined {
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v))
    throw new AppError('ERR_INPUT_INVALID', '"allow" must be a list', 'use --allow provider[:connection],…');
  return v.map((item: unknown) => {
    const o = item as { provider?: unknown; connection?: unknown };
    const provider = assertName('provider', o?.provider);
    return o.connection === undefined
      ? { provider }
      : { provider, connection: assertName('connection', o.connection) };
  });
}

export function buildRoutes(app: App): Router {
  const r = new Router();
  const isOwner = async (h: string) => (await app.registry.get(h))?.owner === true;
  // Providers decide where secrets go, for every profile: only the owner changes them.
  const requireOwner = async (h: string) => {
    if (!(await isOwner(h)))
      throw new AppError(
        'ERR_AUTH_NOT_OWNER',
        'only the owner profile can change providers',
        'run this as the owner: --profile <owner>',
      );
  };

  r.add('POST', '/v1/bootstrap', async ({ handle, body }) => {
    await app.registry.bootstrapOwner(handle, body['publicJwk']);
    await app.audit.append({ event: 'profile.create', profile: handle, detail: { owner: true } });
    return { status: 201, body: { profile: handle, owner: true } };
  });

  r.add('GET', '/v1/status', async ({ handle }) => ({
    body: {
      version: VERSION,
      pid: process.pid,
      startedAt: app.startedAt.toISOString(),
      controlPort: app.controlPort(),
      proxyPort: app.proxyPort(),
      profile: handle,
      owner: await isOwner(handle),
      sealed: false,
      // The last durable audit record: `audit verify` checks that the log still holds it.
      audit: app.audit.head,
      // Team mode: which node answered, and where remote callers reach its proxy (SPEC section 10).
      node: app.node ?? null,
      store: app.engine,
      remote: app.remote ?? null,
    },
  }));

  // profiles
  r.add('GET', '/v1/profiles', async ({ handle }) => {
    const all = await app.registry.list();
    const visible = (await isOwner(handle)) ? all : all.filter((p) => p.handle === handle);
    return {
      body: { profiles: visible.map((p) => ({ handle: p.handle, owner: p.owner, createdAt: p.createdAt })) },
    };
  });
  r.add('POST', '/v1/profiles', async ({ handle, body }) => {
    const name = assertName('profile', str(body, 'handle'));
    await app.registry.register(handle, name, body['publicJwk'], () => app.deleteProfileData(name));
    await app.audit.append({ event: 'profile.create', profile: name, detail: { by: handle } });
    return { status: 201, body: { profile: name } };
  });
  r.add('DELETE', '/v1/profiles/:name', async ({ handle, params }) => {
    const name = assertName('profile', params['name']);
    let removed = 0;
    await app.registry.remove(handle, name, async () => {
      removed = await app.deleteProfileData(name);
    });
    // Requests the profile signed before its entry went may still land (a session minted, a login
    // stored): one more pass, now that nothing new can be authenticated for it.
    removed += await app.deleteProfileData(name).catch(() => 0); // best effort: the profile is gone
    await app.audit.append({
      event: 'profile.delete',
      profile: name,
      detail: { by: handle, records: removed },
    });
    return { body: { profile: name, records: removed } };
  });

  // connections (every call scoped to the verified caller)
  r.add('GET', '/v1/connections', async ({ handle, query }) => ({
    body: { connections: await app.connections.list(handle, query.get('provider') ?? undefined) },
  }));
  r.add('GET', '/v1/connections/:provider/:connection', async ({ handle, params }) => ({
    body: await app.connections.show(handle, params['provider']!, params['connection']!),
  }));
  r.add('PUT', '/v1/connections/:provider/:connection', async ({ handle, params, body }) => {
    const provider = params['provider']!;
    const connection = params['connection']!;
    const flow = str(body, 'flow') ?? 'api-key';
    const out = await app.connections.put(handle, provider, connection, fieldsOf(body), flow, hostsOf(body));
    await app.audit.append({
      event: 'connection.add',
      profile: handle,
      provider,
      connection,
      detail: { flow, replaced: !out.created },
    });
    if (flow !== 'api-key' || out.created)
      await app.audit.append({ event: 'login', profile: handle, provider, connection, detail: { flow } });
    return {
      status: out.created ? 201 : 200,
      body: { ...(await app.connections.show(handle, provider, connection)), replaced: !out.created },
    };
  });
  r.add('DELETE', '/v1/connections/:provider/:connection', async ({ handle, params, query }) => {
    const provider = params['provider']!;
    const connection = params['connection']!;
    const logout = query.get('logout') === '1';
    let revoked = false;
    const out = await app.connections.remove(handle, provider, connection, async (rec) => {
      // Revoke at the provider first (RFC 7009) where it can; the local record goes either way.
      if (logout) revoked = await app.oauth.revoke(handle, rec);
    });
    await app.audit.append({ event: 'connection.remove', profile: handle, provider, connection });
    if (logout)
      await app.audit.append({ event: 'logout', profile: handle, provider, connection, detail: { revoked } });
    if (out.newDefault)
      await app.audit.append({
        event: 'connection.default',
        profile: handle,
        provider,
        connection: out.newDefault,
      });
    return { body: { provider, connection, removed: true, revokedAtProvider: revoked, ...out } };
  });
  r.add('PUT', '/v1/defaults/:provider', async ({ handle, params, body }) => {
    const provider = params['provider']!;
    const connection = assertName('connection', str(body, 'connection'));
    await app.connections.setDefault(handle, provider, connection);
    await app.audit.append({ event: 'connection.default', profile: handle, provider, connection });
    return { body: { provider, connection, isDefault: true } };
  });

  // sessions (proxy tokens)
  r.add('POST', '/v1/sessions', async ({ handle, body }) => {
    const ttlText = str(body, 'ttl') ?? app.settings.session.defaultTtl;
    const ttlMs = parseDuration(ttlText);
    if (ttlMs <= 0 || ttlMs > parseDuration(app.settings.session.maxTtl)) {
      throw new AppError(
        'ERR_INPUT_INVALID',
        `ttl ${ttlText} is out of range`,
        `choose at most ${app.settings.session.maxTtl}`,
      );
    }
    let allow = parseAllow(body['allow']);
    for (const a of allow ?? []) app.providers.require(a.provider);
    const label = str(body, 'label');
    // Minted inside another session (a nested `run`): no wider and no longer-lived than that one.
    const parentToken = str(body, 'parent');
    const parentById = str(body, 'parentId');
    let lifetime = ttlMs;
    let parentId: string | undefined;
    if (parentToken !== undefined || parentById !== undefined) {
      // By token (it proves the caller holds it), else by id (the proxy URL was not in its environment).
      const parent =
        parentToken !== undefined
          ? await app.sessions.verify(handle, parentToken)
          : (await app.sessions.list(handle)).find((m) => m.id === parentById);
      if (!parent)
        throw new AppError(
          'ERR_SESSION_INVALID',
          'the session this command runs in is not valid any more (expired or revoked)',
          'start the outer `authsome run` again',
        );
      allow = narrowAllow(parent.allow, allow)?.slice();
      lifetime = Math.min(ttlMs, parent.expiresAt - Date.now());
      parentId = parent.id;
    }
    // `authsome doctor`'s probe session: no credential ever, refusals audited as doctor.probe.
    const probe = body['probe'] === true;
    const minted = await app.sessions.mint({
      profile: handle,
      ttlMs: lifetime,
      ...(allow ? { allow } : {}),
      ...(label ? { label } : {}),
      ...(probe ? { probe } : {}),
    });
    await app.audit.append({
      event: 'session.mint',
      profile: handle,
      detail: {
        id: minted.id,
        ttl: ttlText,
        ...(parentId !== undefined ? { parent: parentId } : {}),
        ...(probe ? { probe } : {}),
        ...(allow
          ? {
              allow: allow
                .map((a) => (a.connection ? `${a.provider}:${a.connection}` : a.provider))
                .join(','),
            }
          : {}),
      },
    });
    return {
      status: 201,
      body: { id: minted.id, token: minted.token, expiresAt: new Date(minted.expiresAt).toISOString() },
    };
  });
  r.add('GET', '/v1/sessions', async ({ handle }) => ({
    body: { sessions: await app.sessions.list(handle) },
  }));
  r.add('DELETE', '/v1/sessions/:id', async ({ handle, params }) => {
    const revoked = await app.sessions.revoke(handle, params['id']!);
    await app.audit.append({
      event: 'session.revoke',
      profile: handle,
      detail: { id: params['id']!, ...(revoked.probe ? { probe: true } : {}) },
    });
    return { body: { revoked: [params['id']] } };
  });
  r.add('DELETE', '/v1/sessions', async ({ handle }) => {
    const n = await app.sessions.revokeAll(handle);
    await app.audit.append({ event: 'session.revoke', profile: handle, detail: { all: true, count: n } });
    return { body: { revokedCount: n } };
  });

  // providers
  r.add('GET', '/v1/providers', async ({ handle }) => {
    const conns = await app.connections.names(handle);
    return {
      body: {
        providers: app.providers.list().map((p) => ({
          name: p.def.name,
          displayName: p.def.displayName,
          source: p.source,
          env: p.def.env ?? [],
          hosts: p.def.hosts.map(
            (h) => `${h.host}${h.port && h.port !== 443 ? `:${h.port}` : ''}${h.pathPrefix ?? ''}`,
          ),
          connections: conns.filter((c) => c.provider === p.def.name).map((c) => c.connection),
        })),
      },
    };
  });
  r.add('GET', '/v1/providers/:name', async ({ params }) => {
    const def = app.providers.require(params['name']!);
    return { body: { ...def, source: app.providers.sourceOf(def.name) } };
  });
  r.add('POST', '/v1/providers', async ({ handle, body }) => {
    await requireOwner(handle);
    const def = await app.providers.addCustom(
      body['definition'],
      body['force'] === true,
      str(body, 'file') ?? 'request',
    );
    await app.audit.append({ event: 'provider.add', profile: handle, provider: def.name });
    return { status: 201, body: { name: def.name } };
  });
  r.add('DELETE', '/v1/providers/:name', async ({ handle, params }) => {
    await requireOwner(handle);
    const name = assertName('provider', params['name']);
    await app.providers.removeCustom(name);
    await app.audit.append({ event: 'provider.remove', profile: handle, provider: name });
    return { body: { name, removed: true } };
  });

  // OAuth: client registration and login flows (secrets stay in the daemon)
  r.add('PUT', '/v1/oauth-clients/:provider', async ({ handle, params, body }) => {
    const provider = assertName('provider', params['provider']);
    const clientId = str(body, 'clientId');
    if (!clientId) throw new AppError('ERR_INPUT_INVALID', 'clientId is required', 'pass --client-id');
    await app.oauth.setClient(handle, provider, clientId, str(body, 'clientSecret'));
    return { body: { provider, clientId, confidential: body['clientSecret'] !== undefined } };
  });
  r.add('POST', '/v1/oauth/flows', async ({ handle, body }) => {
    const provider = assertName('provider', str(body, 'provider'));
    const connection = assertName('connection', str(body, 'connection') ?? 'default');
    const flow = str(body, 'flow');
    if (flow !== 'device' && flow !== 'pkce')
      throw new AppError(
        'ERR_INPUT_INVALID',
        'flow must be device or pkce',
        'use --flow device or --flow pkce',
      );
    const scopes = str(body, 'scopes')?.split(/[ ,]+/).filter(Boolean);
    return { status: 201, body: await app.oauth.startFlow(handle, provider, connection, flow, scopes) };
  });
  r.add('GET', '/v1/oauth/flows/:id', async ({ handle, params }) => ({
    body: app.oauth.flowStatus(handle, params['id']!),
  }));
  r.add('DELETE', '/v1/oauth/flows/:id', async ({ handle, params }) => {
    app.oauth.cancel(handle, params['id']!);
    return { body: { cancelled: true } };
  });

  // the local CA: status for any profile; rotation for the owner only (it changes what every client trusts)
  r.add('GET', '/v1/ca', async () => ({ body: await app.ca.status() }));
  r.add('POST', '/v1/ca/rotate', async ({ handle, body }) => {
    if (!(await isOwner(handle)))
      throw new AppError(
        'ERR_AUTH_NOT_OWNER',
        'only the owner profile can rotate the CA',
        'run it as the owner: --profile <owner>',
      );
    if (app.engine === 'postgres')
      throw new AppError(
        'ERR_INPUT_INVALID',
        'ca rotate is not supported in team mode yet: the CA is shared by every node, sealed in the store',
        'see docs/team.md ("The CA")',
      );
    if (body['finish'] === true) return { body: await app.ca.finish(handle) };
    const text = str(body, 'overlap') ?? app.settings.session.maxTtl;
    const overlapMs = /^0+[smhd]?$/.test(text) ? 0 : parseDuration(text);
    return { status: 201, body: await app.ca.rotate(handle, overlapMs) };
  });

  // explain (issue 7): what the proxy would do with one URL for this profile; values masked, never a secret
  r.add('GET', '/v1/explain', async ({ handle, query }) => {
    const url = query.get('url');
    if (!url)
      throw new AppError(
        'ERR_INPUT_INVALID',
        'the "url" query parameter is required',
        'authsome explain https://api.github.com/user',
      );
    const c = query.get('connection');
    const method = query.get('method') ?? 'GET';
    if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,32}$/.test(method))
      throw new AppError(
        'ERR_INPUT_INVALID',
        '"method" must be an HTTP method such as GET',
        'e.g. --method POST',
      );
    return {
      body: await explainRequest(
        app,
        handle,
        url,
        c === null ? undefined : assertName('connection', c),
        method,
      ),
    };
  });

  addPolicyRoutes(r, app); // SPEC section 9: policies and held approvals

  return r;
}

export type { RouteContext };
