import type { Argv } from 'yargs';
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
        .example('$0 explain https://api.github.com/user', 'provider github, Authorization header, masked')
        .example('$0 explain https://api.github.com/user --connection work', 'the "work" connection'),
    async (argv) => {
      const ctx = new Ctx(argv);
      const { url, connection } = argv as { url: string; connection?: string };
      const q = new URLSearchParams({ url });
      if (connection !== undefined) q.set('connection', assertName('connection', connection));
      const e = await (await ctx.client()).call<Explanation>('GET', `/v1/explain?${q.toString()}`);
      emit(ctx.out, e, () => describeExplanation(e, (s) => bold(ctx.out, s)));
    },
  );
}
