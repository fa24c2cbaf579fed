import type { Argv } from 'yargs';
import { AppError } from '../../errors.js';
import { assertName } from '../../names.js';
import { exactHosts, tenantHostsProblem, tenantWildcards } from '../../providers/host.js';
import type { ConnectionMeta } from '../../daemon/connections.js';
import { Ctx, type GlobalArgs } from '../context.js';
import { emit, table } from '../output.js';
import { readSecrets } from '../prompt.js';
import { oauthLogin } from '../oauth-login.js';

type ConnArgs = GlobalArgs & { provider: string; connection?: string; flow?: string; name?: string };

function connectionOpt<T>(a: Argv<T>) {
  return a.option('connection', {
    alias: 'c',
    type: 'string',
    default: 'default',
    describe: 'connection name inside the provider',
  });
}

function describeConn(c: ConnectionMeta): string {
  return [
    `provider:   ${c.provider}`,
    `connection: ${c.connection}${c.isDefault ? ' (default)' : ''}`,
    `flow:       ${c.flow}`,
    `fields:     ${c.fields.join(', ')} (values are never shown)`,
    `created:    ${c.createdAt}`,
    `updated:    ${c.updatedAt}`,
    ...(c.expiresAt ? [`expires:    ${c.expiresAt}`] : []),
    ...(c.hosts
      ? [`bound to:   ${c.hosts.join(', ')} (sent to no other host of the provider's wildcard)`]
      : []),
  ].join('\n');
}

/** `logout` and `connection remove` are the same act. */
function removeConnection(logout: boolean) {
  return async (argv: GlobalArgs): Promise<void> => {
    const ctx = new Ctx(argv);
    const { provider, connection = 'default' } = argv as ConnArgs;
    const path = `/v1/connections/${assertName('provider', provider)}/${assertName('connection', connection)}${logout ? '?logout=1' : ''}`;
    const res = await (
      await ctx.client()
    ).call<{ newDefault?: string; defaultCleared?: boolean; revokedAtProvider?: boolean }>('DELETE', path);
    emit(ctx.out, res, () =>
      [
        `Removed ${provider} connection "${connection}".`,
        res.revokedAtProvider ? 'Revoked at the provider.' : '',
        res.newDefault ? `"${res.newDefault}" is now the default.` : '',
        res.defaultCleared
          ? `${provider} has no default connection now: pick one with \`authsome connection default ${provider} <name>\` (until then, requests must name one with X-Authsome-Connection).`
          : '',
      ]
        .filter(Boolean)
        .join(' '),
    );
  };
}

export function loginCommand(y: Argv<GlobalArgs>): Argv<GlobalArgs> {
  return y
    .command(
      'login <provider>',
      'store a credential as a connection; the secret is read from a no-echo prompt or stdin, never argv',
      (a) =>
        connectionOpt(a.positional('provider', { type: 'string', demandOption: true }))
          .option('flow', {
            type: 'string',
            choices: ['api-key', 'device', 'pkce'],
            default: 'api-key',
            describe: 'api-key: paste a key; device or pkce: OAuth sign-in in the browser',
          })
          .option('scopes', { type: 'string', describe: 'OAuth scopes (device/pkce flows)' })
          .option('host', {
            type: 'string',
            describe:
              'for providers whose hosts belong to many tenants (*.myshopify.com…): your own host(s), comma-separated; the connection is sent to no other',
          })
          .example('printf \'%s\\n\' "$TOKEN" | $0 login github --connection work', 'from stdin'),
      async (argv) => {
        const ctx = new Ctx(argv);
        const { provider, connection = 'default', flow = 'api-key' } = argv as ConnArgs;
        assertName('provider', provider);
        assertName('connection', connection);
        // --host may be repeated or comma-separated.
        const hostArg = (argv as { host?: string | string[] }).host;
        const hosts = (Array.isArray(hostArg) ? hostArg : hostArg === undefined ? [] : [hostArg])
          .flatMap((h) => String(h).split(','))
          .map((h) => h.trim())
          .filter(Boolean);
        if (hosts.length > 0 && flow !== 'api-key')
          throw new AppError(
            'ERR_INPUT_INVALID',
            `--host is for --flow api-key only`,
            'providers whose hosts belong to many tenants take an API key: authsome login PROVIDER --host …',
          );
        const client = await ctx.client();
        if (flow === 'device' || flow === 'pkce') {
          const res = await oauthLogin(client, ctx.out, {
            provider,
            connection,
            flow,
            scopes: (argv as { scopes?: string }).scopes,
          });
          emit(
            ctx.out,
            res,
            () => `Logged in: ${provider} connection "${connection}" in profile "${client.handle}".`,
          );
          return;
        }
        const def = await client.call<{
          name: string;
          fields: string[];
          displayName: string;
          hosts: Array<{ host: string }>;
        }>('GET', `/v1/providers/${provider}`);
        // Checked before the prompt (the daemon checks again): no secret typed in vain.
        const problem = tenantHostsProblem(def, hosts.length ? hosts : undefined);
        if (problem)
          throw new AppError('ERR_INPUT_INVALID', problem, `run \`authsome provider show ${provider}\``);
        const values = await readSecrets(def.fields.map((f) => `${def.displayName} ${f.replace(/_/g, ' ')}`));
        const fields = Object.fromEntries(def.fields.map((f, i) => [f, values[i]!]));
        const res = await client.call<ConnectionMeta & { replaced?: boolean }>(
          'PUT',
          `/v1/connections/${provider}/${connection}`,
          {
            fields,
            flow,
            ...(hosts.length ? { hosts } : {}),
          },
        );
        // A tenant provider's connection without --host works on its exact hosts only: say so.
        const unbound =
          !res.hosts?.length && tenantWildcards(def).length > 0
            ? `\nIt is used for ${exactHosts(def).join(', ')} only; to use it on your ${tenantWildcards(def).join(' or ')} host, log in again with --host.`
            : '';
        emit(
          ctx.out,
          res,
          () =>
            `${res.replaced ? 'Replaced the stored values of' : 'Stored'} ${provider} connection "${connection}" in profile "${client.handle}"${res.isDefault ? ' (default)' : ''}.${unbound}`,
        );
      },
    )
    .command(
      'logout <provider>',
      'remove a connection (and revoke at the provider where it can)',
      (a) => connectionOpt(a.positional('provider', { type: 'string', demandOption: true })),
      removeConnection(true),
    );
}

export function connectionCommand(y: Argv<GlobalArgs>): Argv<GlobalArgs> {
  return y.command('connection', 'named credential records of a provider inside the active profile', (c) =>
    c
      .command(
        'list',
        'list connections (metadata only)',
        (a) => a.option('provider', { type: 'string' }),
        async (argv) => {
          const ctx = new Ctx(argv);
          const provider = (argv as { provider?: string }).provider;
          const client = await ctx.client();
          const q = provider ? `?provider=${encodeURIComponent(assertName('provider', provider))}` : '';
          const res = await client.call<{ connections: ConnectionMeta[] }>('GET', `/v1/connections${q}`);
          emit(ctx.out, { profile: client.handle, connections: res.connections }, () =>
            res.connections.length === 0
              ? `No connections in profile "${client.handle}". Add one: authsome login <provider> --connection <name>`
              : table([
                  ['PROVIDER', 'CONNECTION', 'DEFAULT', 'FLOW', 'UPDATED'],
                  ...res.connections.map((x) => [
                    x.provider,
                    x.connection,
                    x.isDefault ? '*' : '',
                    x.flow,
                    x.updatedAt,
                  ]),
                ]),
          );
        },
      )
      .command(
        'show <provider>',
        'show one connection (never the secret)',
        (a) => connectionOpt(a.positional('provider', { type: 'string', demandOption: true })),
        async (argv) => {
          const ctx = new Ctx(argv);
          const { provider, connection = 'default' } = argv as ConnArgs;
          const res = await (
            await ctx.client()
          ).call<ConnectionMeta>(
            'GET',
            `/v1/connections/${assertName('provider', provider)}/${assertName('connection', connection)}`,
          );
          emit(ctx.out, res, () => describeConn(res));
        },
      )
      .command(
        'default <provider> <name>',
        "make a connection the provider's default",
        (a) =>
          a
            .positional('provider', { type: 'string', demandOption: true })
            .positional('name', { type: 'string', demandOption: true }),
        async (argv) => {
          const ctx = new Ctx(argv);
          const { provider, name = '' } = argv as ConnArgs;
          const res = await (
            await ctx.client()
          ).call('PUT', `/v1/defaults/${assertName('provider', provider)}`, {
            connection: assertName('connection', name),
          });
          emit(ctx.out, res, () => `Default ${provider} connection: ${name}`);
        },
      )
      .command(
        'remove <provider>',
        'remove a connection',
        (a) => connectionOpt(a.positional('provider', { type: 'string', demandOption: true })),
        removeConnection(false),
      )
      .demandCommand(1, 'name a connection subcommand'),
  );
}
