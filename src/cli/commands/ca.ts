import { existsSync } from 'node:fs';
import { copyFile, rm } from 'node:fs/promises';
import { spawnSync } from 'node:child_process';
import type { Argv } from 'yargs';
import { AppError } from '../../errors.js';
import { Ctx, type GlobalArgs } from '../context.js';
import { emit } from '../output.js';
import { confirm } from '../prompt.js';
import { ensureTrustFiles } from '../../ca/trust-files.js';
import type { CaStatus } from '../../daemon/ca-manager.js';

const DEBIAN_TARGET = '/usr/local/share/ca-certificates/authsome-local-ca.crt';

/** Says what will change, asks (never silent), runs it, and fails clearly when it did not work. */
async function applyPlan(
  plan: { text: string; run: () => number | null | Promise<number | null> },
  yes: boolean,
): Promise<void> {
  process.stderr.write(`This will: ${plan.text}\n`);
  if (!yes && !(await confirm('Proceed?'))) {
    throw new AppError(
      'ERR_INPUT_INVALID',
      'not confirmed; nothing was changed',
      'run it in a terminal and answer y, or pass --yes',
    );
  }
  const status = await plan.run();
  if (status !== 0) {
    throw new AppError(
      'ERR_INTERNAL',
      `the trust-store command failed (exit ${status})`,
      'run it as a user allowed to change the system trust store (sudo)',
    );
  }
}

export function caCommand(y: Argv<GlobalArgs>): Argv<GlobalArgs> {
  return y.command('ca', 'the local CA that signs intercepted provider hosts', (c) =>
    c
      .command(
        'path',
        'print the path of the local CA certificate(s) to trust (both roots while a `ca rotate` overlaps)',
        {},
        async (argv) => {
          const ctx = new Ctx(argv);
          if (!existsSync(ctx.paths.caCert))
            throw new AppError('ERR_CA_UNAVAILABLE', `no CA at ${ctx.paths.caCert}`, 'run `authsome init`');
          const { roots, bundle } = await ensureTrustFiles(ctx.paths.caDir);
          emit(ctx.out, { path: roots, bundle }, () => roots);
        },
      )
      .command(
        'install',
        'trust the CA system-wide (asks first; `run` does not need this)',
        (a) => a.option('yes', { type: 'boolean', describe: 'do not ask' }),
        async (argv) => {
          const ctx = new Ctx(argv);
          ctx.refuseInSession('ca install');
          const ca = ctx.paths.caCert;
          if (!existsSync(ca))
            throw new AppError('ERR_CA_UNAVAILABLE', `no CA at ${ca}`, 'run `authsome init`');
          const plan =
            process.platform === 'darwin'
              ? {
                  text: `security add-trusted-cert -r trustRoot -k ~/Library/Keychains/login.keychain-db ${ca}`,
                  run: () =>
                    spawnSync(
                      'security',
                      [
                        'add-trusted-cert',
                        '-r',
                        'trustRoot',
                        '-k',
                        `${process.env['HOME']}/Library/Keychains/login.keychain-db`,
                        ca,
                      ],
                      { stdio: 'inherit' },
                    ).status,
                }
              : existsSync('/usr/sbin/update-ca-certificates')
                ? {
                    text: `copy ${ca} to ${DEBIAN_TARGET}, then run update-ca-certificates`,
                    run: async () => (
                      await copyFile(ca, DEBIAN_TARGET),
                      spawnSync('update-ca-certificates', [], { stdio: 'inherit' }).status
                    ),
                  }
                : undefined;
          if (!plan)
            throw new AppError(
              'ERR_INPUT_INVALID',
              'no supported trust store found (Debian/Ubuntu update-ca-certificates or macOS keychain)',
              `trust ${ca} by hand; \`authsome run\` works without it`,
            );
          await applyPlan(plan, (argv as { yes?: boolean }).yes === true);
          emit(ctx.out, { installed: true, path: ca }, () => 'CA installed in the system trust store.');
        },
      )
      .command(
        'uninstall',
        'remove the CA from the system trust store (asks first)',
        (a) => a.option('yes', { type: 'boolean', describe: 'do not ask' }),
        async (argv) => {
          const ctx = new Ctx(argv);
          ctx.refuseInSession('ca uninstall');
          const plan =
            process.platform === 'darwin'
              ? {
                  text: `security remove-trusted-cert ${ctx.paths.caCert}`,
                  run: async () =>
                    spawnSync('security', ['remove-trusted-cert', ctx.paths.caCert], { stdio: 'inherit' })
                      .status,
                }
              : existsSync(DEBIAN_TARGET)
                ? {
                    text: `remove ${DEBIAN_TARGET}, then run update-ca-certificates --fresh`,
                    run: async () => (
                      await rm(DEBIAN_TARGET),
                      spawnSync('update-ca-certificates', ['--fresh'], { stdio: 'inherit' }).status
                    ),
                  }
                : undefined;
          if (!plan) {
            emit(
              ctx.out,
              { installed: false },
              () => 'The authsome CA is not in the system trust store; nothing to do.',
            );
            return;
          }
          await applyPlan(plan, (argv as { yes?: boolean }).yes === true);
          emit(ctx.out, { installed: false, removed: true }, () => 'CA removed from the system trust store.');
        },
      )
      .command(
        'rotate',
        'make a new local CA; clients trust both CAs during the overlap, then the new one signs every leaf (owner only)',
        (a) =>
          a
            .option('overlap', {
              type: 'string',
              describe:
                'how long both CAs are trusted before the new one takes over, e.g. 12h (default: the session lifetime limit, session.maxTtl); 0 switches at once',
            })
            .option('finish', { type: 'boolean', describe: 'end the overlap of a rotation in progress now' })
            .example(
              '$0 ca rotate',
              'new CA; the switch comes when every session minted before it has expired',
            )
            .example('$0 ca rotate --finish', 'switch now'),
        async (argv) => {
          const ctx = new Ctx(argv);
          const o = argv as { overlap?: string; finish?: boolean };
          if (o.finish && o.overlap !== undefined)
            throw new AppError(
              'ERR_INPUT_INVALID',
              '--finish ends a rotation in progress; --overlap starts one',
              'give one of them: `authsome ca rotate --overlap 12h`, or `authsome ca rotate --finish`',
            );
          const client = await ctx.ownerClient();
          const s = await client.call<CaStatus>(
            'POST',
            '/v1/ca/rotate',
            o.finish ? { finish: true } : { ...(o.overlap !== undefined ? { overlap: o.overlap } : {}) },
          );
          const installed = existsSync(DEBIAN_TARGET)
            ? `\nThe CA is installed system-wide: run \`authsome ca install\` again ${s.rotation ? 'before the switch' : 'now'}.`
            : '';
          emit(ctx.out, s, () =>
            s.rotation
              ? `New CA ${s.rotation.next.slice(0, 16)}… made. Until ${s.rotation.switchAt} clients trust both CAs (${ctx.paths.caDir}/roots.pem, bundle.pem) and leaves are still signed by the current one; then the new CA signs every leaf and the old one is dropped (\`authsome ca rotate --finish\` switches now).${installed}`
              : `The CA ${s.fingerprint.slice(0, 16)}… signs every leaf now; the old CA is no longer trusted or kept.${installed}`,
          );
        },
      )
      .demandCommand(1, 'name a ca subcommand'),
  );
}
