import { readFile } from 'node:fs/promises';
import type { Argv } from 'yargs';
import { AppError, ERROR_CODES } from '../../errors.js';
import { assertName } from '../../names.js';
import type { Policy, PolicyRule } from '../../policy/types.js';
import type { HeldRequest } from '../../policy/approvals.js';
import type { PolicyCheck } from '../../daemon/policy-check.js';
import type { DaemonClient } from '../../daemon/client.js';
import { Ctx, type GlobalArgs } from '../context.js';
import { bold, emit, table, type Output } from '../output.js';

/**
 * SPEC section 9's commands: `policy set|show|check|clear`, `approvals`, `approve`, `reject`. The
 * target profile is positional; --profile keeps naming the signer. set, clear, approve and reject
 * sign with the owner key unless --profile names another (which the daemon then refuses).
 */

interface StoredView {
  profile: string;
  policy: Policy | null;
  setAt?: string;
  setBy?: string;
}

async function readPolicyFile(file: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    throw new AppError(
      'ERR_INPUT_INVALID',
      `cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`,
      'give the path of a policy JSON file (docs/policy.md)',
    );
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    // The text is never quoted: it might hold a pasted secret.
    const pos = /position (\d+)/.exec((e as Error).message)?.[1];
    throw new AppError(
      'ERR_POLICY_INVALID',
      `${file}: not valid JSON${pos === undefined ? '' : ` (at character ${pos})`}`,
      'fix the JSON syntax; docs/policy.md documents the format',
    );
  }
}

function summary(profile: string, p: Policy): string {
  const count = (a: PolicyRule['action']) => p.rules.filter((r) => r.action === a).length;
  const kinds = (['allow', 'deny', 'approve'] as const)
    .map((a) => [a, count(a)] as const)
    .filter(([, n]) => n > 0)
    .map(([a, n]) => `${n} ${a}`);
  const rates = p.rules.flatMap((r, i) => (r.rate ? [`rules[${i}] at most ${r.rate}`] : []));
  return [
    `Policy set for profile "${profile}": default ${p.default}, ${p.rules.length} rule${p.rules.length === 1 ? '' : 's'}${kinds.length ? ` (${kinds.join(', ')})` : ''}.`,
    ...(rates.length ? [`Rates: ${rates.join('; ')}.`] : []),
    'It applies from the next request.',
  ].join('\n');
}

function describePolicy(out: Output, v: StoredView): string {
  if (!v.policy)
    return `Profile "${v.profile}" has no policy: every request the proxy would inject for it is allowed.`;
  const p = v.policy;
  const head = `Policy of profile "${v.profile}"${v.setBy ? ` (set ${v.setAt} by ${v.setBy})` : ''}: default ${bold(out, p.default)}`;
  const rows = p.rules.map((r, i) => [
    String(i),
    r.action,
    r.provider ?? '*',
    r.connection ?? '*',
    r.methods?.join(',') ?? '*',
    r.path ?? '*',
    r.exe?.join(',') ?? '*',
    r.rate ?? '-',
    r.note ?? '',
  ]);
  return [
    head,
    ...(p.description ? [p.description] : []),
    p.rules.length
      ? table([
          ['RULE', 'ACTION', 'PROVIDER', 'CONNECTION', 'METHODS', 'PATH', 'EXE', 'RATE', 'NOTE'],
          ...rows,
        ])
      : '(no rules)',
  ].join('\n');
}

function describeCheck(out: Output, c: PolicyCheck): string {
  const by = c.rule === null ? (c.policy ? 'the default' : 'no policy') : `rules[${c.rule}]`;
  return [
    `${bold(out, `${c.method} ${c.url}`)}  →  ${bold(out, c.action)} (${by})${c.applies ? '' : ' — not applied, see why'}`,
    `  profile:    ${c.profile}`,
    `  provider:   ${c.provider ?? '-'}`,
    `  connection: ${c.connection ?? '-'}`,
    `  caller:     ${c.exe ?? 'unknown (give --exe PATH to check an exe rule)'}`,
    ...(c.rate ? [`  rate:       ${c.rate}`] : []),
    `  why:        ${c.reason}`,
  ].join('\n');
}

/** SPEC 9's JSON shape of one held request. */
function heldJson(h: HeldRequest) {
  return {
    id: h.id,
    profile: h.profile,
    provider: h.provider,
    connection: h.connection,
    method: h.method,
    path: h.path,
    exe: h.exe,
    since: h.since,
  };
}

function age(since: string, now = Date.now()): string {
  const s = Math.max(0, Math.round((now - Date.parse(since)) / 1000));
  return s < 120 ? `${s}s` : `${Math.round(s / 60)}m`;
}

function heldRow(h: HeldRequest): string[] {
  return [
    h.id,
    h.profile,
    `${h.provider}:${h.connection}`,
    `${h.method} ${h.path}`,
    h.exe ? `${h.exe}${h.pid !== null ? ` (${h.pid})` : ''}` : 'unknown',
    age(h.since),
  ];
}

const HELD_HEAD = ['ID', 'PROFILE', 'CONNECTION', 'REQUEST', 'CALLER', 'AGE'];

interface ApprovalsPage {
  version: number;
  approvals: HeldRequest[];
  released: Array<{ id: string; result: string }>;
}

/** `approvals --follow`: long-polls the daemon; prints each request as it is held (and, for people, released). */
export async function follow(client: Pick<DaemonClient, 'call'>, out: Output): Promise<never> {
  let page = await client.call<ApprovalsPage>('GET', '/v1/approvals');
  const known = new Map<string, HeldRequest>();
  const show = (h: HeldRequest) => {
    process.stdout.write(
      out.json ? JSON.stringify(heldJson(h)) + '\n' : `held      ${heldRow(h).join('  ')}\n`,
    );
  };
  if (!out.json)
    process.stdout.write(
      page.approvals.length
        ? `${table([HELD_HEAD, ...page.approvals.map(heldRow)])}\n-- waiting for more (Ctrl-C to stop); answer with \`authsome approve ID\` or \`authsome reject ID\`\n`
        : 'No requests wait for approval; waiting (Ctrl-C to stop)…\n',
    );
  for (const h of page.approvals) {
    known.set(h.id, h);
    if (out.json) show(h);
  }
  for (;;) {
    page = await client.call<ApprovalsPage>('GET', `/v1/approvals?since=${page.version}&wait=20000`);
    for (const h of page.approvals) {
      if (known.has(h.id)) continue;
      known.set(h.id, h);
      show(h);
    }
    for (const r of page.released) {
      const h = known.get(r.id);
      if (!h) continue;
      known.delete(r.id);
      if (!out.json)
        process.stdout.write(`${r.result.padEnd(9)} ${h.id}  ${h.method} ${h.path} after ${age(h.since)}\n`);
    }
  }
}

export function policyCommands(y: Argv<GlobalArgs>): Argv<GlobalArgs> {
  return y
    .command(
      'policy',
      'what a profile may do with its credentials: rules, rates, approval (docs/policy.md)',
      (p) =>
        p
          .command(
            'set <target> <file>',
            "validate a policy file and store it as the target profile's policy (owner only); applies from the next request",
            (a) =>
              a
                .positional('target', {
                  type: 'string',
                  demandOption: true,
                  describe: 'the profile the policy binds (--profile names the signer)',
                })
                .positional('file', { type: 'string', demandOption: true, describe: 'the policy JSON file' })
                .example(
                  '$0 policy set agent-pr-bot agent.json',
                  'bind agent-pr-bot by the rules in agent.json',
                ),
            async (argv) => {
              const ctx = new Ctx(argv);
              const { target, file } = argv as { target: string; file: string };
              const profile = assertName('profile', target);
              const policy = await readPolicyFile(file);
              const res = await (
                await ctx.ownerClient()
              ).call<{ profile: string; policy: Policy; warnings: string[] }>(
                'PUT',
                `/v1/policies/${profile}`,
                policy,
              );
              if (!ctx.out.json) for (const w of res.warnings) process.stderr.write(`warning: ${w}\n`);
              emit(ctx.out, res, () => summary(profile, res.policy));
            },
          )
          .command(
            'show <target>',
            "the target profile's policy, normalised (--json: the policy itself, or null when none is set)",
            (a) =>
              a
                .positional('target', {
                  type: 'string',
                  demandOption: true,
                  describe: 'the profile whose policy (--profile names the signer)',
                })
                .example('$0 policy show agent-pr-bot --json', 'the stored policy, or null'),
            async (argv) => {
              const ctx = new Ctx(argv);
              const profile = assertName('profile', (argv as { target: string }).target);
              const res = await (await ctx.client()).call<StoredView>('GET', `/v1/policies/${profile}`);
              emit(ctx.out, res.policy, () => describePolicy(ctx.out, res));
            },
          )
          .command(
            'check <target> <method> <url>',
            "what the target profile's policy decides for one request, and by which rule; nothing is sent",
            (a) =>
              a
                .positional('target', {
                  type: 'string',
                  demandOption: true,
                  describe: 'the profile whose policy (--profile names the signer)',
                })
                .positional('method', { type: 'string', demandOption: true, describe: 'GET, POST, …' })
                .positional('url', { type: 'string', demandOption: true, describe: 'the full URL' })
                .option('connection', {
                  alias: 'c',
                  type: 'string',
                  describe: "as if the request named this connection (default: the provider's default)",
                })
                .option('exe', {
                  type: 'string',
                  describe: 'as if this executable sent it (default: an unknown caller)',
                })
                .example(
                  '$0 policy check agent DELETE https://api.github.com/repos/acme/x',
                  'deny, by rules[1]',
                )
                .epilogue(
                  'Exit 0 when the request would be allowed or held for approval; 5 when the policy would deny it.',
                ),
            async (argv) => {
              const ctx = new Ctx(argv);
              const o = argv as {
                target: string;
                method: string;
                url: string;
                connection?: string;
                exe?: string;
              };
              const profile = assertName('profile', o.target);
              const res = await (
                await ctx.client()
              ).call<PolicyCheck>('POST', `/v1/policies/${profile}/check`, {
                method: o.method,
                url: o.url,
                ...(o.connection !== undefined ? { connection: o.connection } : {}),
                ...(o.exe !== undefined ? { exe: o.exe } : {}),
              });
              emit(ctx.out, res, () => describeCheck(ctx.out, res));
              if (res.applies && res.action === 'deny') process.exitCode = ERROR_CODES.ERR_POLICY_DENIED.exit;
            },
          )
          .command(
            'clear <target>',
            "remove the target profile's policy (owner only): its requests are no longer restricted",
            (a) =>
              a
                .positional('target', {
                  type: 'string',
                  demandOption: true,
                  describe: 'the profile whose policy (--profile names the signer)',
                })
                .example('$0 policy clear agent-pr-bot', 'everything it may inject is allowed again'),
            async (argv) => {
              const ctx = new Ctx(argv);
              const profile = assertName('profile', (argv as { target: string }).target);
              const res = await (
                await ctx.ownerClient()
              ).call<{ profile: string; cleared: boolean }>('DELETE', `/v1/policies/${profile}`);
              emit(ctx.out, res, () =>
                res.cleared
                  ? `Cleared the policy of profile "${profile}": from the next request it is unrestricted.`
                  : `Profile "${profile}" had no policy.`,
              );
            },
          )
          .demandCommand(1, 'name a policy command: set, show, check or clear'),
    )
    .command(
      'approvals',
      'requests held for approval, oldest first (owner: all; another profile: its own)',
      (a) =>
        a
          .option('follow', {
            alias: 'f',
            type: 'boolean',
            describe: 'keep showing requests as they are held',
          })
          .epilogue(
            '--json: an array of {id, profile, provider, connection, method, path, exe, since}; with --follow, one such object per line as each request is held.',
          ),
      async (argv) => {
        const ctx = new Ctx(argv);
        const client = await ctx.ownerClient();
        if ((argv as { follow?: boolean }).follow) await follow(client, ctx.out);
        const page = await client.call<ApprovalsPage>('GET', '/v1/approvals');
        emit(ctx.out, page.approvals.map(heldJson), () =>
          page.approvals.length
            ? table([HELD_HEAD, ...page.approvals.map(heldRow)])
            : 'No requests wait for approval.',
        );
      },
    )
    .command(
      'approve <id>',
      'let a held request go on (owner only); --for also lets the same request through for that long',
      (a) =>
        a
          .positional('id', { type: 'string', demandOption: true, describe: 'from `authsome approvals`' })
          .example('$0 approve k3x9q2m4b7da --for 10m', 'release it, and the same request for 10 minutes')
          .option('for', {
            type: 'string',
            describe:
              'also let the same profile, connection, method and path through for this long (e.g. 10m, at most 24h)',
          }),
      async (argv) => {
        const ctx = new Ctx(argv);
        const o = argv as { id: string; for?: string };
        const res = await (
          await ctx.ownerClient()
        ).call<HeldRequest & { for?: string }>(
          'POST',
          `/v1/approvals/${encodeURIComponent(o.id)}/approve`,
          o.for !== undefined ? { for: o.for } : {},
        );
        emit(
          ctx.out,
          res,
          () =>
            `Approved ${res.id}: ${res.method} ${res.path} (${res.profile}, ${res.provider}:${res.connection})${res.for ? `; the same request goes through for ${res.for}` : ''}.`,
        );
      },
    )
    .command(
      'reject <id>',
      'refuse a held request (owner only): its caller gets 403 ERR_POLICY_APPROVAL_REJECTED',
      (a) =>
        a
          .positional('id', { type: 'string', demandOption: true, describe: 'from `authsome approvals`' })
          .example('$0 reject k3x9q2m4b7da', 'its caller gets 403'),
      async (argv) => {
        const ctx = new Ctx(argv);
        const id = (argv as { id: string }).id;
        const res = await (
          await ctx.ownerClient()
        ).call<HeldRequest>('POST', `/v1/approvals/${encodeURIComponent(id)}/reject`);
        emit(
          ctx.out,
          res,
          () =>
            `Rejected ${res.id}: ${res.method} ${res.path} (${res.profile}, ${res.provider}:${res.connection}).`,
        );
      },
    );
}
