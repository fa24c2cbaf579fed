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

/**
 * `connection show|remove` and `logout` take the connection as a second argument, as `connection
 * default` does (`authsome connection remove github work`), or with --connection; the default
 * connection is called "default". No yargs default here: a name given both ways must agree.
 */
function connectionArg<T>(a: Argv<T>) {
  return a
    .positional('provider', { type: 'string', demandOption: true })
    .positional('name', { type: 'string', describe: 'connection name (default: "default")' })
    .option('connection', {
      alias: 'c',
      type: 'string',
      describe: 'connection name inside the provider (the same as the second argument)',
    });
}

function connectionOf(argv: ConnArgs): string {
  const { name, connection } = argv;
  if (name !== undefined && connection !== undefined && name !== connection)
    throw new AppError(
      'ERR_INPUT_INVALID',
      'two different connection names were given (one as an argument, one with --connection)',
      'give the connection once: `authsome connection show <provider> <connection>`',
    );
  return assertName('connection', name ?? connection ?? 'default');
}

/**
 * A long value in the connection's place may be a secret pasted there (lower-case hex keys are
 * valid names): when no such connection exists, the daemon's answer names it, so it is not repeated.
 */
async function unlessSecretLike<T>(provider: string, connection: string, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (e) {
    if (!(e instanceof AppError) || e.code !== 'ERR_CONNECTION_NOT_FOUND' || connection.length <= 16) throw e;
    throw new AppError(
      'ERR_CONNECTION_NOT_FOUND',
      `no ${provider} connection of that name in this profile (the name, ${connection.length} characters, is not repeated in case it is a secret)`,
      `list them with \`authsome connection list --provider ${provider}\`; secrets are read from stdin or a no-echo prompt, never from the command line`,
    );
  }
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
    const { provider } = argv as ConnArgs;
    const connection = connectionOf(argv as ConnArgs);
    const path = `/v1/connections/${assertName('provider', provider)}/${connection}${logout ? '?logout=1' : ''}`;
    const client = await ctx.client();
    const res = await unlessSecretLike(provider, connection, () =>
      client.call<{ newDefault?: string; defaultCleared?: boolean; revokedAtProvider?: boolean }>(
        'DELETE',
        path,
      ),
    );
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
          .example('$0 login github --connection work', 'asks for the token (no echo)')
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
      'logout <provider> [name]',
      'remove a connection (and revoke at the provider where it can)',
      (a) =>
        connectionArg(a)
          .example('$0 logout github work', 'remove the "work" GitHub connection')
          .example('$0 logout github', 'remove the connection called "default"'),
      removeConnection(true),
    );
}

export function connectionCommand(y: Argv<GlobalArgs>): Argv<GlobalArgs> {
  return y.command('connection', 'named credential records of a provider inside the active profile', (c) =>
    c
      .command(
        'list',
        'list connections (metadata only)',
        (a) => a.option('provider', { type: 'string', describe: 'only this provider' }),
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
        'show <provider> [name]',
        'show one connection (never the secret)',
        (a) => connectionArg(a).example('$0 connection show github work', 'the "work" GitHub connection'),
        async (argv) => {
          const ctx = new Ctx(argv);
          const { provider } = argv as ConnArgs;
          const connection = connectionOf(argv as ConnArgs);
          const client = await ctx.client();
          const res = await unlessSecretLike(provider, connection, () =>
            client.call<ConnectionMeta>(
              'GET',
              `/v1/connections/${assertName('provider', provider)}/${connection}`,
            ),
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
            .positional('name', { type: 'string', demandOption: true })
            .example(
              '$0 connection default github work',
              'requests without X-Authsome-Connection use "work"',
            ),
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
        'remove <provider> [name]',
        'remove a connection',
        (a) =>
          connectionArg(a).example('$0 connection remove github work', 'remove the "work" GitHub connection'),
        removeConnection(false),
      )
      .demandCommand(1, 'name a connection subcommand'),
  );
}
