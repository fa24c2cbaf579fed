import type { Argv } from 'yargs';
import { AppError } from '../../errors.js';
import { existsSync } from 'node:fs';
import { runningDaemon, startDaemon, stopDaemon } from '../../daemon/lifecycle.js';
import { initHome } from './init.js';
import { LISTEN_OPTION } from './daemon.js';
import { Ctx, type GlobalArgs } from '../context.js';
import { emit, table } from '../output.js';
import { mintSessionEnv, shellQuote } from '../session-env.js';

type EnvArgs = GlobalArgs & { allow?: string; ttl?: string };

function howTo(port: number): string {
  return [
    `authsome proxy listening on 127.0.0.1:${port}`,
    '',
    'Point tools at it:',
    '  shell:   eval "$(authsome proxy env)"          # HTTPS_PROXY, CA bundle, placeholders',
    '  one cmd: authsome run -- <command> …            # token minted for the command, revoked after',
    "  curl:    curl https://api.github.com/user        # after eval; add -H 'X-Authsome-Connection: work'",
    '  Node:    fetch/undici work under `authsome run` (NODE_OPTIONS preload); node:https/axios need an agent (docs/integrations.md)',
    '  Python:  requests/httpx/urllib follow HTTPS_PROXY and REQUESTS_CA_BUNDLE / SSL_CERT_FILE',
    '  git:     git clone https://… follows HTTPS_PROXY and GIT_SSL_CAINFO',
  ].join('\n');
}

export function proxyCommand(y: Argv<GlobalArgs>): Argv<GlobalArgs> {
  return y.command('proxy', 'the credential-injecting proxy and its session tokens', (p) =>
    p
      .command(
        'start',
        'start serving and print how to point tools at it',
        (a) =>
          a
            .option('foreground', { type: 'boolean', describe: 'run in this terminal (Ctrl-C stops)' })
            .option('port', { type: 'number', describe: 'proxy port for --foreground (0 = free port)' })
            .option('init', {
              type: 'boolean',
              describe: 'initialise the home first when it is new (owner profile "default")',
            })
            .option('listen', LISTEN_OPTION),
        async (argv) => {
          const ctx = new Ctx(argv);
          const { foreground, port, init, listen } = argv as {
            foreground?: boolean;
            port?: number;
            init?: boolean;
            listen?: string;
          };
          if (port !== undefined && !foreground)
            throw new AppError(
              'ERR_INPUT_INVALID',
              '--port applies to --foreground only',
              'add --foreground, or give the background daemon its port with AUTHSOME_PROXY_PORT',
            );
          if (init && !existsSync(ctx.paths.clientConfig)) {
            await initHome(ctx, ctx.profileFlag ?? 'default');
            process.stderr.write(
              `initialised ${ctx.paths.home} (owner profile "${ctx.profileFlag ?? 'default'}")\n`,
            );
            // init started a background daemon; the foreground one takes over the store.
            if (foreground) await stopDaemon(ctx.paths);
          }
          const running = foreground ? await runningDaemon(ctx.paths) : undefined;
          if (running) {
            emit(
              ctx.out,
              { running: true, proxyPort: running.proxyPort, pid: running.pid },
              () =>
                `${howTo(running.proxyPort)}\n\n(already running in the background, pid ${running.pid}; stop it with \`authsome daemon stop\`)`,
            );
            return;
          }
          if (foreground) {
            const { serve } = await import('../../daemon/serve.js');
            const addr = await serve(ctx.paths.home, {
              ...(port !== undefined ? { proxyPort: port } : {}),
              ...(listen !== undefined ? { listen } : {}),
            });
            process.stderr.write(howTo(addr.proxyPort) + '\n');
            return;
          }
          const info = await startDaemon(ctx.paths, undefined, listen ? ['--listen', listen] : []);
          emit(
            ctx.out,
            {
              running: true,
              proxyPort: info.proxyPort,
              pid: info.pid,
              ...(info.listen ? { listen: info.listen } : {}),
            },
            () =>
              howTo(info.proxyPort) +
              (info.listen
                ? `\n\nRemote callers: proxy https://${info.listen.host}:${info.listen.proxyPort}, control https://${info.listen.host}:${info.listen.controlPort} (authsome --daemon https://${info.listen.host}:${info.listen.controlPort} …)`
                : ''),
          );
        },
      )
      .command(
        'env',
        'mint a session token and print export lines (use: eval "$(authsome proxy env)")',
        (a) =>
          a
            .option('allow', { type: 'string', describe: 'limit the token to provider[:connection],…' })
            .option('ttl', { type: 'string', describe: 'token lifetime, e.g. 1h (default 12h)' }),
        async (argv) => {
          const ctx = new Ctx(argv);
          const o = argv as EnvArgs;
          const s = await mintSessionEnv(ctx, { allow: o.allow, ttl: o.ttl, label: 'proxy env' });
          emit(ctx.out, { id: s.id, expiresAt: s.expiresAt, env: s.env, unset: s.unset }, () =>
            [
              `# authsome session ${s.id} for profile ${s.client.handle}, expires ${s.expiresAt}; revoke: authsome proxy revoke ${s.id}`,
              ...Object.entries(s.env).map(([k, v]) => `export ${k}=${shellQuote(v)}`),
              // Key variables of providers outside --allow: not for this session.
              ...(s.unset.length ? [`unset ${s.unset.join(' ')}`] : []),
            ].join('\n'),
          );
        },
      )
      .command(
        'revoke [id]',
        'revoke a session token by id (or --all of this profile)',
        (a) => a.positional('id', { type: 'string' }).option('all', { type: 'boolean' }),
        async (argv) => {
          const ctx = new Ctx(argv);
          const { id, all } = argv as { id?: string; all?: boolean };
          if (all && id !== undefined)
            throw new AppError(
              'ERR_INPUT_INVALID',
              'give a session id or --all, not both',
              '`authsome proxy revoke <id>` revokes one; `authsome proxy revoke --all` every one of the profile',
            );
          const client = await ctx.client();
          if (all) {
            const r = await client.call<{ revokedCount: number }>('DELETE', '/v1/sessions');
            emit(
              ctx.out,
              r,
              () => `Revoked ${r.revokedCount} session token(s) of profile "${client.handle}".`,
            );
            return;
          }
          if (!id) {
            const r = await client.call<{
              sessions: Array<{ id: string; label?: string; expiresAt: number; createdAt: number }>;
            }>('GET', '/v1/sessions');
            emit(ctx.out, r, () =>
              r.sessions.length === 0
                ? 'No active session tokens. (Pass an id, or --all.)'
                : table([
                    ['ID', 'LABEL', 'EXPIRES'],
                    ...r.sessions.map((x) => [x.id, x.label ?? '', new Date(x.expiresAt).toISOString()]),
                  ]) + '\n\nrevoke one: authsome proxy revoke <id>',
            );
            return;
          }
          if (!/^[0-9a-f]{16}$/.test(id))
            throw new AppError(
              'ERR_INPUT_INVALID',
              `${JSON.stringify(id)} is not a session id (16 hex digits)`,
              'run `authsome proxy revoke` to list them',
            );
          await client.call('DELETE', `/v1/sessions/${encodeURIComponent(id)}`);
          emit(ctx.out, { revoked: [id] }, () => `Revoked session ${id}.`);
        },
      )
      .demandCommand(1, 'name a proxy subcommand'),
  );
}
