import { mkdir, chmod } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { createPublicKey, type KeyObject } from 'node:crypto';
import type { Argv } from 'yargs';
import { AppError } from '../../errors.js';
import { assertName } from '../../names.js';
import { generateIdentity, writeIdentityKey, readIdentityKey } from '../../identity/index.js';
import { startDaemon } from '../../daemon/lifecycle.js';
import type { DaemonInfo } from '../../daemon/daemon-file.js';
import { DaemonClient } from '../../daemon/client.js';
import { Ctx, type GlobalArgs } from '../context.js';
import { emit } from '../output.js';

export function publicJwkOf(key: KeyObject): Record<string, unknown> {
  const jwk = createPublicKey(key).export({ format: 'jwk' });
  return { kty: jwk.kty, crv: jwk.crv, x: jwk.x };
}

/** Creates the home step by step (each step skipped when done, so an interrupted init can be re-run). */
export async function initHome(ctx: Ctx, profile: string): Promise<DaemonInfo> {
  const p = ctx.paths;
  if (existsSync(p.clientConfig)) {
    const c = await ctx.readConfig();
    throw new AppError(
      'ERR_HOME_EXISTS',
      `${p.home} is already initialised (owner "${c.owner}")`,
      'it is ready to use (`authsome profile list` shows its profiles); to add one: `authsome profile create NAME`',
    );
  }
  for (const dir of [p.home, p.serverDir, p.clientDir, p.identitiesDir])
    await mkdir(dir, { recursive: true, mode: 0o700 });
  await chmod(p.home, 0o700);
  if (!existsSync(p.masterKey))
    await (await import('../../vault/master-key.js')).createMasterKey(p.masterKey);
  if (!existsSync(p.caCert)) await (await import('../../ca/root.js')).createCa(p.caDir);
  const keyPath = p.identityKey(profile);
  if (!existsSync(keyPath)) await writeIdentityKey(keyPath, (await generateIdentity()).privateKeyPem);
  const key = await readIdentityKey(keyPath);
  const info = await startDaemon(p);
  await new DaemonClient(info, profile, key).call('POST', '/v1/bootstrap', {
    handle: profile,
    publicJwk: publicJwkOf(key),
  });
  await ctx.writeConfig({ activeProfile: profile, owner: profile });
  return info;
}

export function initCommand(y: Argv<GlobalArgs>): Argv<GlobalArgs> {
  return y.command(
    'init',
    'create the home (master key, store, CA) and the first profile, which becomes the owner',
    (a) => a.example('$0 init --profile me', 'first profile named "me"'),
    async (argv) => {
      const ctx = new Ctx(argv);
      ctx.refuseInSession('init');
      const profile = assertName('profile', (argv as GlobalArgs).profile ?? 'default');
      const info = await initHome(ctx, profile);
      const p = ctx.paths;
      emit(
        ctx.out,
        {
          home: p.home,
          profile,
          owner: true,
          controlPort: info.controlPort,
          proxyPort: info.proxyPort,
          ca: p.caCert,
        },
        () =>
          [
            `Initialised ${p.home}`,
            `  profile "${profile}" (owner, active)`,
            `  daemon pid ${info.pid}: proxy on 127.0.0.1:${info.proxyPort}`,
            `  local CA: ${p.caCert}`,
            '',
            'Next:',
            `  authsome login github --connection personal     # paste a token when asked`,
            `  authsome run -- curl https://api.github.com/user  # the proxy injects it`,
          ].join('\n'),
      );
    },
  );
}
