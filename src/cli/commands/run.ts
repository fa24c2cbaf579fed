import { spawn } from 'node:child_process';
import { constants } from 'node:os';
import type { Argv } from 'yargs';
import { AppError } from '../../errors.js';
import { Ctx, type GlobalArgs } from '../context.js';
import { childEnv, mintSessionEnv } from '../session-env.js';

const FORWARDED: NodeJS.Signals[] = ['SIGTERM', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2'];

export function runCommand(y: Argv<GlobalArgs>): Argv<GlobalArgs> {
  return y.command(
    'run',
    'run a command behind the proxy with a session token that lives as long as it does',
    (a) =>
      a
        .usage('$0 run [--profile P] [--allow provider[:connection],…] -- CMD [ARGS…]')
        .option('allow', { type: 'string', describe: 'limit the token to provider[:connection],…' })
        .option('ttl', { type: 'string', describe: 'upper bound on the token lifetime (default 12h)' })
        .example('$0 run -- curl https://api.github.com/user', '')
        .example('$0 run --profile agent-pr-bot --allow github -- node agent.js', ''),
    async (argv) => {
      const ctx = new Ctx(argv);
      const cmd = (argv['--'] as string[] | undefined) ?? (argv._ as string[]).slice(1).map(String);
      if (cmd.length === 0)
        throw new AppError(
          'ERR_INPUT_INVALID',
          'no command given',
          'put it after --: authsome run -- curl https://…',
        );
      const o = argv as { allow?: string; ttl?: string };
      const s = await mintSessionEnv(ctx, {
        allow: o.allow,
        ttl: o.ttl,
        label: `run ${cmd[0]}`.slice(0, 64),
      });
      const code = await new Promise<number>((resolve, reject) => {
        const child = spawn(cmd[0]!, cmd.slice(1), { stdio: 'inherit', env: childEnv(s) });
        // SIGINT from a terminal reaches the child through its process group; we only stay alive.
        const onInt = () => undefined;
        const forward = (sig: NodeJS.Signals) => child.kill(sig);
        process.on('SIGINT', onInt);
        for (const sig of FORWARDED) process.on(sig, forward);
        const cleanup = () => {
          process.off('SIGINT', onInt);
          for (const sig of FORWARDED) process.off(sig, forward);
        };
        child.once('error', (e: NodeJS.ErrnoException) => {
          cleanup();
          if (e.code !== 'ENOENT') return reject(e);
          // 127, as a shell would: the command itself was not found.
          process.stderr.write(
            `authsome: command not found: ${cmd[0]}\n  next: check the command name and your PATH\n`,
          );
          resolve(127);
        });
        child.once('exit', (c, sig) => {
          cleanup();
          resolve(c ?? 128 + (sig ? (constants.signals[sig] ?? 0) : 0));
        });
      }).finally(async () => {
        await s.client.call('DELETE', `/v1/sessions/${s.id}`).catch(() => undefined);
      });
      process.exitCode = code;
    },
  );
}
