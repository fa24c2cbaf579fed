import { readFile } from 'node:fs/promises';
import type { Argv } from 'yargs';
import { AppError } from '../../errors.js';
import { assertName } from '../../names.js';
import type { ProviderDef } from '../../providers/types.js';
import { Ctx, type GlobalArgs } from '../context.js';
import { emit, fitTable, terminalWidth } from '../output.js';
import { readSecrets } from '../prompt.js';

interface ProviderRow {
  name: string;
  displayName: string;
  source: string;
  hosts: string[];
  connections: string[];
}

export function providerCommand(y: Argv<GlobalArgs>): Argv<GlobalArgs> {
  return y.command(
    'provider',
    'provider definitions: which hosts get which credential, in which format',
    (p) =>
      p
        .command(
          'list',
          'bundled and custom providers, with the active profile’s connections',
          {},
          async (argv) => {
            const ctx = new Ctx(argv);
            const res = await (await ctx.client()).call<{ providers: ProviderRow[] }>('GET', '/v1/providers');
            // Fits the terminal: hosts and connections wrap between items (--json is unchanged).
            emit(ctx.out, res, () =>
              fitTable(
                ['PROVIDER', 'SOURCE', 'HOSTS', 'CONNECTIONS'],
                res.providers.map((r) => [[r.name], [r.source], r.hosts, r.connections]),
                { width: terminalWidth(), wrap: [2, 3] },
              ),
            );
          },
        )
        .command(
          'show <name>',
          'one provider definition',
          (a) =>
            a
              .positional('name', { type: 'string', demandOption: true })
              .example('$0 provider show github', 'its hosts, fields and header format'),
          async (argv) => {
            const ctx = new Ctx(argv);
            const name = assertName('provider', (argv as { name?: string }).name);
            const def = await (
              await ctx.client()
            ).call<ProviderDef & { source: string }>('GET', `/v1/providers/${name}`);
            emit(ctx.out, def, () =>
              [
                `${def.displayName} (${def.name}, ${def.source})`,
                `docs:    ${def.docsUrl}`,
                `hosts:   ${def.hosts.map((h) => `${h.host}${h.port && h.port !== 443 ? `:${h.port}` : ''}${h.pathPrefix ?? ''}`).join(', ')}`,
                `fields:  ${def.fields.join(', ')}`,
                `inject:  ${def.inject.map((r) => `${r.type} ${r.name}: ${r.template}`).join('; ')}`,
                ...(def.env?.length
                  ? [`env:     ${def.env.join(', ')} (set to a placeholder by \`authsome run\`)`]
                  : []),
              ].join('\n'),
            );
          },
        )
        .command(
          'add <file>',
          'add a custom provider from a JSON file (owner only: signed with the owner key unless --profile names another)',
          (a) =>
            a
              .positional('file', { type: 'string', demandOption: true })
              .option('force', {
                type: 'boolean',
                describe:
                  'replace a provider of the same name (bundled or custom), or take a host another provider covers',
              })
              .example('$0 provider add ./acme.json', 'docs/providers.md describes the file'),
          async (argv) => {
            const ctx = new Ctx(argv);
            const { file, force } = argv as { file: string; force?: boolean };
            let definition: unknown;
            try {
              definition = JSON.parse(await readFile(file, 'utf8'));
            } catch (e) {
              throw new AppError(
                'ERR_PROVIDER_INVALID',
                `${file}: ${(e as Error).message}`,
                'fix the file: it must be one JSON object',
              );
            }
            const res = await (
              await ctx.ownerClient()
            ).call<{ name: string }>('POST', '/v1/providers', { definition, force: force === true, file });
            emit(ctx.out, res, () => `Added provider "${res.name}".`);
          },
        )
        .command(
          'remove <name>',
          'remove a custom provider (owner only: signed with the owner key unless --profile names another)',
          (a) =>
            a
              .positional('name', { type: 'string', demandOption: true })
              .example('$0 provider remove acme', 'a custom provider added with `provider add`'),
          async (argv) => {
            const ctx = new Ctx(argv);
            const name = assertName('provider', (argv as { name?: string }).name);
            await (await ctx.ownerClient()).call('DELETE', `/v1/providers/${name}`);
            emit(
              ctx.out,
              { name, removed: true },
              () =>
                `Removed provider "${name}". Connections of it (in any profile) stay stored, unused until a provider of that name is added again; \`authsome logout ${name} --connection NAME\` deletes one.`,
            );
          },
        )
        .command(
          'client <name>',
          "register this profile's OAuth client for a provider (secret from a no-echo prompt or stdin)",
          (a) =>
            a
              .positional('name', { type: 'string', demandOption: true })
              .option('client-id', { type: 'string', demandOption: true, describe: 'the OAuth client id' })
              .option('public', {
                type: 'boolean',
                describe: 'a public client: no secret (PKCE / device flow)',
              })
              .example(
                '$0 provider client github --client-id Iv1.abc --public',
                'then: authsome login github --flow device',
              ),
          async (argv) => {
            const ctx = new Ctx(argv);
            const o = argv as { name?: string; clientId?: string; public?: boolean };
            const name = assertName('provider', o.name);
            const [secret] = o.public ? [undefined] : await readSecrets([`${name} OAuth client secret`]);
            const res = await (
              await ctx.client()
            ).call('PUT', `/v1/oauth-clients/${name}`, {
              clientId: o.clientId,
              ...(secret ? { clientSecret: secret } : {}),
            });
            emit(
              ctx.out,
              res,
              () =>
                `Stored the OAuth client for ${name}. Log in with: authsome login ${name} --flow device (or --flow pkce)`,
            );
          },
        )
        .demandCommand(1, 'name a provider subcommand'),
  );
}
