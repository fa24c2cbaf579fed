import { realpath } from 'node:fs/promises';
import { AppError } from '../errors.js';
import { assertName } from '../names.js';
import { parseDuration } from '../config/settings.js';
import {
  APPROVAL_ID,
  approvalNotFound,
  parsePolicy,
  procAvailable,
  resolveExePaths,
  type HeldRequest,
} from '../policy/index.js';
import type { App } from '../app.js';
import { str, type Router } from './router.js';
import { checkPolicyRequest } from './policy-check.js';

/** `approve ID --for D`: at most a day; a standing permission belongs in the policy itself. */
const MAX_GRANT_MS = 86_400_000;
/** Long-poll of `approvals --follow`: well inside the control server's 30 s request timeout. */
const MAX_WAIT_MS = 20_000;

/**
 * Control API of SPEC section 9. Only the owner sets, clears, approves and rejects; a profile may
 * read and check its own policy, and list its own held requests.
 *
 * "Never the held request's own profile": a non-owner profile can never answer a held request,
 * its own included, so an agent cannot approve itself. The owner may answer any held request, its
 * own profile's too: the owner key can clear the policy anyway, so refusing it would add nothing
 * but an approve rule no one could ever satisfy. Run agents as other profiles (docs/policy.md).
 */
export function addPolicyRoutes(r: Router, app: App): void {
  const isOwner = async (h: string) => (await app.registry.get(h))?.owner === true;
  const requireOwner = async (h: string, what: string) => {
    if (!(await isOwner(h)))
      throw new AppError(
        'ERR_AUTH_NOT_OWNER',
        `only the owner profile can ${what}`,
        'run this as the owner: --profile <owner>',
      );
  };
  /** The target profile, which must exist; only the owner or the profile itself may read it. */
  const target = async (handle: string, name: string | undefined, mayBeSelf: boolean): Promise<string> => {
    const profile = assertName('profile', name);
    if (!(mayBeSelf && profile === handle))
      await requireOwner(handle, mayBeSelf ? "read another profile's policy" : 'set or clear policies');
    if (!(await app.registry.get(profile)))
      throw new AppError(
        'ERR_PROFILE_NOT_FOUND',
        `no profile "${profile}"`,
        'list them with `authsome profile list`',
      );
    return profile;
  };

  r.add('PUT', '/v1/policies/:profile', async ({ handle, params, body }) => {
    const profile = await target(handle, params['profile'], false);
    const parsed = parsePolicy(body);
    const { policy, warnings } = await resolveExePaths(parsed, { realpath, hasProc: procAvailable() });
    policy.rules.forEach((rule, i) => {
      if (rule.provider !== undefined && !app.providers.get(rule.provider))
        warnings.push(
          `rules[${i}].provider: no provider "${rule.provider}" is known; the rule matches nothing until one is added`,
        );
    });
    await app.policies.set(profile, policy, handle);
    await app.audit.append({
      event: 'policy.set',
      profile,
      detail: { by: handle, rules: policy.rules.length, default: policy.default },
    });
    return { body: { profile, policy, warnings } };
  });

  r.add('DELETE', '/v1/policies/:profile', async ({ handle, params }) => {
    const profile = await target(handle, params['profile'], false);
    const cleared = await app.policies.clear(profile);
    if (cleared) await app.audit.append({ event: 'policy.clear', profile, detail: { by: handle } });
    return { body: { profile, cleared } };
  });

  r.add('GET', '/v1/policies/:profile', async ({ handle, params }) => {
    const profile = await target(handle, params['profile'], true);
    const s = await app.policies.stored(profile);
    return {
      body: s ? { profile, policy: s.policy, setAt: s.setAt, setBy: s.setBy } : { profile, policy: null },
    };
  });

  r.add('POST', '/v1/policies/:profile/check', async ({ handle, params, body }) => {
    const profile = await target(handle, params['profile'], true);
    return {
      body: await checkPolicyRequest(app, profile, {
        method: str(body, 'method'),
        url: str(body, 'url'),
        connection: str(body, 'connection'),
        exe: str(body, 'exe'),
      }),
    };
  });

  // Held approvals. `since` and `wait` make it a long-poll: it answers once the list has changed
  // since that version (or after `wait` ms), so `approvals --follow` sees holds as they happen.
  r.add('GET', '/v1/approvals', async ({ handle, query }) => {
    const owner = await isOwner(handle);
    const sinceText = query.get('since');
    const since = sinceText !== null && /^\d{1,15}$/.test(sinceText) ? Number(sinceText) : undefined;
    const wait = Math.min(Number(query.get('wait') ?? 0) || 0, MAX_WAIT_MS);
    if (since !== undefined) await app.policies.waitForChange(since, wait);
    const mine = (h: HeldRequest) => owner || h.profile === handle;
    const held = (await app.policies.approvals.list()).filter(mine);
    return {
      body: {
        version: app.policies.version,
        approvals: held,
        // Only releases of requests this caller may see.
        released:
          since === undefined
            ? []
            : app.policies.releasedSince(since).filter((x) => owner || x.profile === handle),
      },
    };
  });

  const answer = (decision: 'approve' | 'reject') =>
    r.add('POST', `/v1/approvals/:id/${decision}`, async ({ handle, params, body }) => {
      await requireOwner(handle, `${decision} held requests`);
      const id = params['id'] ?? '';
      if (!APPROVAL_ID.test(id)) throw approvalNotFound(id);
      let forMs: number | undefined;
      const forText = decision === 'approve' ? str(body, 'for') : undefined;
      if (forText !== undefined) {
        forMs = parseDuration(forText);
        if (forMs <= 0 || forMs > MAX_GRANT_MS)
          throw new AppError(
            'ERR_INPUT_INVALID',
            `--for ${forText} is out of range`,
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
  answer('approve');
  answer('reject');
}
