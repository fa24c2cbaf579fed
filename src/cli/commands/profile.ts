import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import type { Argv } from 'yargs';
import { AppError } from '../../errors.js';
import { assertName } from '../../names.js';
import { generateIdentity, writeIdentityKey, readIdentityKey } from '../../identity/index.js';
import { Ctx, type GlobalArgs } from '../context.js';
import { emit, table } from '../output.js';
import { publicJwkOf } from './init.js';

type NameArgs = GlobalArgs & { name: string };

export function profileCommand(y: Argv<GlobalArgs>): Argv<GlobalArgs> {
  return y.command('profile', 'identity handles: each has its own key and its own credential set', (p) =>
    p
      .command(
        'create <name>',
        'create a profile (owner only: signed with the owner key unless --profile names another); its records are unreachable from other profiles',
        (a) =>
          a
            .positional('name', { type: 'string', demandOption: true })
            .example('$0 profile create agent-pr-bot', 'a profile for one agent'),
        async (argv) => {
          const ctx = new Ctx(argv);
          const name = assertName('profile', (argv as NameArgs).name);
          const client = await ctx.ownerClient();
          const keyPath = ctx.paths.identityKey(name);
          const fresh = !existsSync(keyPath);
          if (fresh) await writeIdentityKey(keyPath, (await generateIdentity()).privateKeyPem);
          try {
            await client.call('POST', '/v1/profiles', {
              handle: name,
              publicJwk: publicJwkOf(await readIdentityKey(keyPath)),
            });
          } catch (e) {
            if (fresh) await rm(keyPath, { force: true });
            throw e;
          }
          emit(
            ctx.out,
            { profile: name, created: true },
            () =>
              `Created profile "${name}". Use it with --profile ${name}, or make it active: authsome profile use ${name}`,
          );
        },
      )
      .command('list', 'list profiles', {}, async (argv) => {
        const ctx = new Ctx(argv);
        const cfg = await ctx.readConfig();
        const res = await (
          await ctx.client()
        ).call<{ profiles: Array<{ handle: string; owner: boolean; createdAt: number }> }>(
          'GET',
          '/v1/profiles',
        );
        const rows = res.profiles.map((p) => ({ ...p, active: p.handle === cfg.activeProfile }));
        emit(ctx.out, { profiles: rows }, () =>
          table([
            ['PROFILE', 'ROLE', 'ACTIVE', 'CREATED'],
            ...rows.map((p) => [
              p.handle,
              p.owner ? 'owner' : '-',
              p.active ? '*' : '',
              new Date(p.createdAt).toISOString(),
            ]),
          ]),
        );
      })
      .command(
        'use <name>',
        'make a profile the active one',
        (a) =>
          a
            .positional('name', { type: 'string', demandOption: true })
            .example('$0 profile use agent-pr-bot', 'later commands act as agent-pr-bot'),
        async (argv) => {
          const ctx = new Ctx(argv);
          ctx.refuseInSession('profile use');
          const name = assertName('profile', (argv as NameArgs).name);
          const cfg = await ctx.readConfig();
          // Proves the profile exists and this machine holds its key before switching.
          await (await ctx.client(name)).call('GET', '/v1/status');
          await ctx.writeConfig({ ...cfg, activeProfile: name });
          emit(ctx.out, { activeProfile: name }, () => `Active profile: ${name}`);
        },
      )
      .command('current', 'print the active profile', {}, async (argv) => {
        const ctx = new Ctx(argv);
        const cfg = await ctx.readConfig();
        const name = ctx.profileFlag ?? cfg.activeProfile;
        emit(ctx.out, { profile: name, owner: name === cfg.owner }, () => name);
      })
      .command(
        'delete <name>',
        'delete a profile, every record under it and its key (owner only: signed with the owner key unless --profile names another)',
        (a) =>
          a
            .positional('name', { type: 'string', demandOption: true })
            .example('$0 profile delete scratch', 'its connections and key go too'),
        async (argv) => {
          const ctx = new Ctx(argv);
          const name = assertName('profile', (argv as NameArgs).name);
          const cfg = await ctx.readConfig();
          if (name === cfg.owner)
            throw new AppError(
              'ERR_AUTH_FORBIDDEN',
              'the owner profile cannot be deleted',
              'delete the whole home instead if you mean it',
            );
          const res = await (
            await ctx.ownerClient()
          ).call<{ records: number }>('DELETE', `/v1/profiles/${name}`);
          await rm(ctx.paths.identityKey(name), { force: true });
          const wasActive = cfg.activeProfile === name;
          if (wasActive) await ctx.writeConfig({ ...cfg, activeProfile: cfg.owner });
          emit(
            ctx.out,
            {
              profile: name,
              deleted: true,
              records: res.records,
              activeProfile: wasActive ? cfg.owner : cfg.activeProfile,
            },
            () =>
              `Deleted profile "${name}" (${res.records} records) and its key.${wasActive ? `\nIt was the active profile: the active profile is now "${cfg.owner}" (the owner).` : ''}`,
          );
        },
      )
      .demandCommand(1, 'name a profile subcommand'),
  );
}
