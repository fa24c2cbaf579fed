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

interface TeamArgs {
  store?: string;
  join?: string;
  masterKey?: string;
  node?: string;
}

/** `init --join`: a further node's home, server side only (SPEC section 10). */
async function joinNode(ctx: Ctx, o: TeamArgs & { join: string }): Promise<void> {
  if (o.masterKey === undefined)
    throw new AppError(
      'ERR_INPUT_INVALID',
      '--join needs --master-key FILE',
      'copy server/master.key from the first node (mode 600), then: authsome init --join URL --master-key FILE',
    );
  const { loadSettings } = await import('../../config/settings.js');
  const { joinTeamStore } = await import('../../daemon/team-init.js');
  const settings = loadSettings(ctx.paths.home);
  const r = await joinTeamStore(ctx.paths, settings.store, o.join, o.masterKey, o.node);
  emit(ctx.out, { home: ctx.paths.home, node: r.node, store: r.location, ca: r.caCert }, () =>
    [
      `Joined ${r.location} as node "${r.node}" (home ${ctx.paths.home}; server side only, no profile key)`,
      `  team CA: ${r.caCert}`,
      '',
      'Next: start it, serving remote callers over TLS on the name they use for this machine:',
      `  authsome daemon start --listen <this-host-name>`,
      'People then reach it from their own CLI home with --daemon https://<this-host-name>:7998 (docs/team.md).',
    ].join('\n'),
  );
}

export function initCommand(y: Argv<GlobalArgs>): Argv<GlobalArgs> {
  return y.command(
    'init',
    'create the home (master key, store, CA) and the first profile, which becomes the owner',
    (a) =>
      a
        .option('store', {
          type: 'string',
          describe:
            'team mode: keep the vault in this empty PostgreSQL database (postgres://user@host:port/db)',
        })
        .option('join', {
          type: 'string',
          describe: "team mode: make a further node's home on this database (server side only)",
        })
        .option('master-key', { type: 'string', describe: "with --join: the team's master key file" })
        .option('node', {
          type: 'string',
          describe: "team mode: this node's name (default: from the host name)",
        })
        .conflicts('store', 'join')
        .example('$0 init --profile me', 'first profile named "me"')
        .example('$0 init --store postgres://authsome@db:5432/authsome', 'the first node of a team')
        .example(
          '$0 init --join postgres://authsome@db:5432/authsome --master-key ./master.key --node b',
          'a further node',
        ),
    async (argv) => {
      const ctx = new Ctx(argv);
      ctx.refuseInSession('init');
      const o = argv as TeamArgs;
      if (o.join !== undefined) return joinNode(ctx, { ...o, join: o.join });
      if (o.masterKey !== undefined)
        throw new AppError(
          'ERR_INPUT_INVALID',
          '--master-key goes with --join',
          'authsome init --join URL --master-key FILE',
        );
      if (o.node !== undefined && o.store === undefined)
        throw new AppError(
          'ERR_INPUT_INVALID',
          '--node goes with --store or --join',
          'a LevelDB home has no node name',
        );
      const profile = assertName('profile', (argv as GlobalArgs).profile ?? 'default');
      let team: { node: string; location: string } | undefined;
      if (o.store !== undefined) {
        if (existsSync(ctx.paths.clientConfig)) await initHome(ctx, profile); // says: already initialised
        const { loadSettings } = await import('../../config/settings.js');
        const { initTeamStore } = await import('../../daemon/team-init.js');
        team = await initTeamStore(ctx.paths, loadSettings(ctx.paths.home).store, o.store, o.node);
      }
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
          ...(team ? { node: team.node, store: team.location } : {}),
        },
        () =>
          [
            `Initialised ${p.home}`,
            ...(team
              ? [`  team mode: node "${team.node}" on ${team.location} (add nodes: authsome init --join)`]
              : []),
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
