import type { Argv } from 'yargs';
import { ERROR_CODES, type ErrorCode } from '../../errors.js';
import { assertName } from '../../names.js';
import type { Explanation } from '../../daemon/explain.js';
import { Ctx, type GlobalArgs } from '../context.js';
import { bold, emit } from '../output.js';

const VERDICT: Record<Explanation['decision'], string> = {
  inject: 'credential injected',
  tunnel: 'tunnelled untouched',
  forward: 'forwarded without a credential',
  cleartext: 'cleartext: never injected',
  denied: 'refused',
  'no-connection': 'refused: no such connection',
  'no-default': 'refused: no default connection',
  invalid: 'refused: malformed request',
  'policy-denied': "refused by the profile's policy",
};

/**
 * A refusal is reported in full (stdout, exit 0 would hide it from scripts): the exit code is the one
 * the proxy's own refusal would give (errors.md), so `authsome explain URL && …` stops where the
 * request would be refused. Every other verdict exits 0.
 */
const REFUSAL: Partial<Record<Explanation['decision'], ErrorCode>> = {
  denied: 'ERR_PROXY_DESTINATION_DENIED',
  'no-connection': 'ERR_PROXY_CONNECTION_DENIED',
  'no-default': 'ERR_PROXY_CONNECTION_DENIED',
  invalid: 'ERR_PROXY_BAD_REQUEST',
  'policy-denied': 'ERR_POLICY_DENIED',
};

export function describeExplanation(e: Explanation, strong: (s: string) => string = (s) => s): string {
  const lines = [`${strong(e.url)}  →  ${strong(VERDICT[e.decision])}`, `  profile:     ${e.profile}`];
  if (e.destination)
    lines.push(
      `  destination: ${e.destination.scheme}://${e.destination.host}:${e.destination.port}${e.destination.path}`,
    );
  if (e.provider) lines.push(`  provider:    ${e.provider.name} (${e.provider.displayName})`);
  if (e.connection)
    lines.push(
      `  connection:  ${e.connection.name}${e.connection.requested ? ' (from X-Authsome-Connection)' : e.connection.isDefault ? ' (default)' : ''}`,
    );
  for (const h of e.headers) lines.push(`  sets header: ${h.name}: ${h.value}`);
  for (const q of e.query) lines.push(`  sets query:  ${q.name}=${q.value}`);
  if (e.strips.length) lines.push(`  strips:      caller copies of ${e.strips.join(', ')}`);
  if (e.policy)
    lines.push(
      `  policy:      ${e.policy.action}${e.policy.rule === null ? ' (the default)' : ` (rule ${e.policy.rule})`}${e.policy.rate ? `, ${e.policy.rate}` : ''}`,
    );
  lines.push(`  why:         ${e.reason}`);
  if (e.hint) lines.push(`  next:        ${e.hint}`);
  return lines.join('\n');
}

export function explainCommand(y: Argv<GlobalArgs>): Argv<GlobalArgs> {
  return y.command(
    'explain <url>',
    'which provider and connection a request to URL would use, which headers would be set (masked), or why none',
    (a) =>
      a
        .positional('url', {
          type: 'string',
          demandOption: true,
          describe: 'the full URL, e.g. https://api.github.com/user',
        })
        .option('connection', {
          alias: 'c',
          type: 'string',
          describe: 'as if the request sent X-Authsome-Connection: NAME',
        })
        .option('method', {
          alias: 'X',
          type: 'string',
          default: 'GET',
          describe: "the request's method, for the profile's policy",
        })
        .example('$0 explain https://api.github.com/user', 'provider github, Authorization header, masked')
        .example('$0 explain https://api.github.com/user --connection work', 'the "work" connection')
        .example('$0 explain https://api.github.com/repos/acme/x --method DELETE', 'and what the policy says')
        .epilogue(
          'Exit 0 when the request would be injected, forwarded or tunnelled; when it would be refused, the exit code of that refusal (5 forbidden, 2 malformed), with the explanation still printed.',
        ),
    async (argv) => {
      const ctx = new Ctx(argv);
      const { url, connection, method } = argv as { url: string; connection?: string; method?: string };
      const q = new URLSearchParams({ url, method: (method ?? 'GET').toUpperCase() });
      if (connection !== undefined) q.set('connection', assertName('connection', connection));
      const e = await (await ctx.client()).call<Explanation>('GET', `/v1/explain?${q.toString()}`);
      emit(ctx.out, e, () => describeExplanation(e, (s) => bold(ctx.out, s)));
      const refusal = REFUSAL[e.decision];
      if (refusal) process.exitCode = ERROR_CODES[refusal].exit;
    },
  );
}
