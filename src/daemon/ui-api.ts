import { AppError } from '../errors.js';
import { assertName } from '../names.js';
import { parseDuration } from '../config/settings.js';
import { AUDIT_EVENTS, type AuditRecord } from '../audit/index.js';
import { APPROVAL_ID, approvalNotFound } from '../policy/index.js';
import type { App } from '../app.js';
import { Router, str } from './router.js';
import { checkPolicyRequest } from './policy-check.js';
import { UiAudit } from './ui-audit.js';
import { daemonChecks } from './ui-doctor.js';

/** `approve --for D` through the page: the same bound as the CLI's (policy-routes.ts). */
const MAX_GRANT_MS = 86_400_000;
const CHART_MINUTES = new Set([15, 60, 360, 1440]);

/**
 * The page's API (SPEC section 11). Every route runs as the cookie session's profile with that
 * profile's rights, the same as the PoP-signed control API gives it: its own connections and
 * sessions; policies and held requests of its own profile, or of every profile for the owner; only
 * the owner answers held requests. Nothing here returns a field value, a token or a key.
 */
export function buildUiApi(app: App, audit: UiAudit): Router {
  const r = new Router();
  const isOwner = async (h: string) => (await app.registry.get(h))?.owner === true;
  const visibleTo = (owner: boolean, handle: string) => (rec: AuditRecord) => owner || rec.profile === handle;
  const requireOwner = async (h: string, what: string) => {
    if (!(await isOwner(h)))
      throw new AppError(
        'ERR_AUTH_NOT_OWNER',
        `only the owner profile can ${what}`,
        'open the dashboard as the owner: `authsome ui --profile <owner>`',
      );
  };
  /** Only the owner reads another profile's policy (policy-routes.ts). */
  const readable = async (handle: string, name: string | undefined): Promise<string> => {
    const profile = assertName('profile', name);
    if (profile !== handle) await requireOwner(handle, "read another profile's policy");
    if (!(await app.registry.get(profile)))
      throw new AppError(
        'ERR_PROFILE_NOT_FOUND',
        `no profile "${profile}"`,
        'see the profiles listed on the page',
      );
    return profile;
  };

  r.add('GET', '/ui/api/audit', async ({ handle, query }) => {
    const owner = await isOwner(handle);
    const q = UiAudit.parseQuery(query);
    return { body: { records: await audit.timeline(q, visibleTo(owner, handle)) } };
  });
  r.add('GET', '/ui/api/audit/facets', async ({ handle }) => {
    const owner = await isOwner(handle);
    return { body: { ...(await audit.facets(owner ? 'all' : [handle])), allEvents: AUDIT_EVENTS } };
  });
  r.add('GET', '/ui/api/audit/verify', async () => ({ body: await audit.verify() }));
  r.add('GET', '/ui/api/chart', async ({ handle, query }) => {
    const minutes = Number(query.get('minutes') ?? 60);
    if (!CHART_MINUTES.has(minutes))
      throw new AppError(
        'ERR_INPUT_INVALID',
        'minutes must be 15, 60, 360 or 1440',
        'pick a range on the page',
      );
    return { body: await audit.chart(visibleTo(await isOwner(handle), handle), minutes) };
  });

  r.add('GET', '/ui/api/connections', async ({ handle }) => {
    const last = await audit.lastUsed(handle);
    const conns = await app.connections.list(handle);
    return {
      body: {
        profile: handle,
        connections: conns.map((c) => ({
          provider: c.provider,
          connection: c.connection,
          isDefault: c.isDefault,
          flow: c.flow,
          fields: c.fields,
          createdAt: c.createdAt,
          updatedAt: c.updatedAt,
          lastUsed: last.get(`${c.provider}/${c.connection}`) ?? null,
          expiresAt: c.expiresAt ?? null,
          hosts: c.hosts ?? [],
        })),
      },
    };
  });

  r.add('GET', '/ui/api/sessions', async ({ handle }) => ({
    body: {
      profile: handle,
      sessions: (await app.sessions.list(handle)).map((s) => ({
        id: s.id,
        label: s.label ?? null,
        allow: s.allow ?? null,
        createdAt: new Date(s.createdAt).toISOString(),
        expiresAt: new Date(s.expiresAt).toISOString(),
      })),
    },
  }));
  r.add('POST', '/ui/api/sessions/:id/revoke', async ({ handle, params }) => {
    const id = params['id'] ?? '';
    if (!/^[0-9a-f]{16}$/.test(id))
      throw new AppError('ERR_SESSION_NOT_FOUND', 'no such session', 'reload the list of sessions');
    await app.sessions.revoke(handle, id);
    await app.audit.append({ event: 'session.revoke', profile: handle, detail: { id, via: 'dashboard' } });
    return { body: { revoked: [id] } };
  });

  r.add('GET', '/ui/api/approvals', async ({ handle }) => {
    const owner = await isOwner(handle);
    const held = (await app.policies.approvals.list()).filter((h) => owner || h.profile === handle);
    return { body: { approvals: held, canAnswer: owner, timeoutS: app.settings.policy.approvalTimeoutS } };
  });
  for (const decision of ['approve', 'reject'] as const)
    r.add('POST', `/ui/api/approvals/:id/${decision}`, async ({ handle, params, body }) => {
      await requireOwner(handle, `${decision} held requests`);
      const id = params['id'] ?? '';
      if (!APPROVAL_ID.test(id)) throw approvalNotFound(id);
      const forText = decision === 'approve' ? str(body, 'for') : undefined;
      let forMs: number | undefined;
      if (forText !== undefined) {
        forMs = parseDuration(forText);
        if (forMs <= 0 || forMs > MAX_GRANT_MS)
          throw new AppError(
            'ERR_INPUT_INVALID',
            `"for" ${forText} is out of range`,
            'choose at most 24h; a standing permission belongs in the policy (authsome policy set)',
          );
      }
      const held = await app.policies.approvals.answer(id, decision, handle, forMs);
      return {
        body: {
          ...held,
          result: decision === 'approve' ? 'approved' : 'rejected',
          ...(forText !== undefined ? { for: forText } : {}),
        },
      };
    });

  r.add('GET', '/ui/api/policies', async ({ handle }) => {
    const owner = await isOwner(handle);
    const profiles = owner ? (await app.registry.list()).map((p) => p.handle) : [handle];
    const policies = await Promise.all(
      profiles.map(async (profile) => {
        try {
          const s = await app.policies.stored(profile);
          return s
            ? { profile, policy: s.policy, setAt: s.setAt, setBy: s.setBy }
            : { profile, policy: null };
        } catch (e) {
          return { profile, policy: null, error: e instanceof AppError ? e.message : 'cannot read it' };
        }
      }),
    );
    return { body: { policies } };
  });
  r.add('POST', '/ui/api/policies/:profile/check', async ({ handle, params, body }) => {
    const profile = await readable(handle, params['profile']);
    return {
      body: await checkPolicyRequest(app, profile, {
        method: str(body, 'method'),
        url: str(body, 'url'),
        connection: str(body, 'connection') || undefined,
      }),
    };
  });

  r.add('GET', '/ui/api/doctor', async ({ handle }) => ({
    body: { checks: await daemonChecks(app, audit, handle, await isOwner(handle)) },
  }));

  return r;
}
