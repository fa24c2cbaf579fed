import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { Argv } from 'yargs';
import { AppError, isAppError } from '../../errors.js';
import { assertName } from '../../names.js';
import { mask } from '../../secret.js';
import type { DaemonClient } from '../../daemon/client.js';
import { Ctx, type GlobalArgs } from '../context.js';
import { emit, table } from '../output.js';
import { confirm } from '../prompt.js';
import { PLACEHOLDER } from '../session-env.js';
import {
  assignConnections,
  describeSource,
  detect,
  envCandidates,
  parseDotenv,
  type Candidate,
  type ProviderInfo,
} from '../import/detect.js';
import { leftovers } from '../import/leftovers.js';
import { tenantWildcards } from '../../providers/host.js';

type ImportArgs = GlobalArgs & {
  dotenv?: string[];
  env?: boolean;
  yes?: boolean;
  connection?: string;
  dryRun?: boolean;
};

/** Providers with env names; field lists are fetched only for the ones a candidate matched. */
async function providerInfo(client: DaemonClient, cands: readonly Candidate[]): Promise<ProviderInfo[]> {
  const { providers } = await client.call<{ providers: Array<{ name: string; env: string[] }> }>(
    'GET',
    '/v1/providers',
  );
  const rough = providers.map((p) => ({ name: p.name, env: p.env, fields: ['?'] }));
  const first = detect(cands, rough, PLACEHOLDER);
  const involved = new Set([
    ...first.findings.map((f) => f.provider),
    ...first.skipped.flatMap((s) => s.provider ?? []),
  ]);
  const out: ProviderInfo[] = [];
  for (const p of rough) {
    if (!involved.has(p.name)) continue;
    const def = await client.call<{ fields: string[]; hosts: Array<{ host: string }> }>(
      'GET',
      `/v1/providers/${p.name}`,
    );
    out.push({ ...p, fields: def.fields, tenantHosts: tenantWildcards(def).length > 0 });
  }
  return out;
}

async function candidates(o: ImportArgs): Promise<Candidate[]> {
  const all: Candidate[] = o.env === false ? [] : envCandidates(process.env);
  for (const f of o.dotenv ?? []) {
    const file = resolve(f);
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (e) {
      throw new AppError(
        'ERR_INPUT_INVALID',
        `cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`,
        'check the --dotenv path',
      );
    }
    all.push(...parseDotenv(text, file));
  }
  return all;
}

export function importCommand(y: Argv<GlobalArgs>): Argv<GlobalArgs> {
  return y.command(
    'import',
    'find API keys in this shell and dotenv files, show them masked, and on confirmation move each into a connection',
    (a) =>
      a
        .option('dotenv', {
          type: 'string',
          array: true,
          describe: 'also scan this dotenv file (repeatable)',
        })
        .option('env', {
          type: 'boolean',
          default: true,
          describe: 'scan this shell’s environment (--no-env to skip)',
        })
        .option('connection', {
          alias: 'c',
          type: 'string',
          default: 'default',
          describe: 'connection name for imported keys (a second key of one provider gets NAME-2)',
        })
        .option('yes', {
          alias: 'y',
          type: 'boolean',
          describe: 'import without asking (required without a terminal)',
        })
        .option('dry-run', { type: 'boolean', describe: 'only show what would be imported' })
        .example('$0 import --dotenv .env', 'asks before importing')
        .example('$0 import --dotenv .env --no-env --yes --connection work', 'scripted'),
    async (argv) => {
      const ctx = new Ctx(argv);
      const o = argv as ImportArgs;
      const base = assertName('connection', o.connection ?? 'default');
      const client = await ctx.client();
      const cands = await candidates(o);
      const { findings, skipped } = detect(cands, await providerInfo(client, cands), PLACEHOLDER);
      const existing = new Set(
        (
          await client.call<{ connections: Array<{ provider: string; connection: string }> }>(
            'GET',
            '/v1/connections',
          )
        ).connections.map((c) => `${c.provider}/${c.connection}`),
      );
      const planned = assignConnections(findings, base);
      const todo = planned.filter((f) => !existing.has(`${f.provider}/${f.connection}`));
      for (const f of planned.filter((x) => existing.has(`${x.provider}/${x.connection}`))) {
        for (const s of f.sources)
          skipped.push({
            source: s,
            provider: f.provider,
            reason: `connection "${f.connection}" of ${f.provider} exists already (never overwritten): use --connection NAME`,
          });
      }
      const row = (f: (typeof planned)[number]) => ({
        provider: f.provider,
        connection: f.connection,
        value: mask(f.value),
        via: f.via,
        sources: f.sources.map(describeSource),
      });
      const skippedOut = skipped.map((s) => ({
        source: describeSource(s.source),
        provider: s.provider ?? null,
        reason: s.reason,
      }));
      const human: string[] = [];
      if (todo.length > 0)
        human.push(
          `Found ${todo.length} key(s) to import into profile "${client.handle}":`,
          table([
            ['PROVIDER', 'CONNECTION', 'VALUE (masked)', 'FOUND IN', 'MATCHED BY'],
            ...todo.map((f) => [
              f.provider,
              f.connection,
              mask(f.value),
              f.sources.map(describeSource).join(', '),
              f.via,
            ]),
          ]),
        );
      if (skipped.length > 0)
        human.push(
          '',
          'Skipped:',
          ...skippedOut.map((s) => `  ${s.source}${s.provider ? ` [${s.provider}]` : ''}: ${s.reason}`),
        );
      if (todo.length === 0) {
        emit(ctx.out, { profile: client.handle, imported: [], skipped: skippedOut, remaining: [] }, () =>
          [
            `No keys to import${o.dotenv?.length ? '' : ' (add --dotenv FILE to scan a dotenv file)'}.`,
            ...human,
          ].join('\n'),
        );
        return;
      }
      if (!ctx.out.json) process.stderr.write(human.join('\n') + '\n\n');
      if (o.dryRun) {
        emit(
          ctx.out,
          { profile: client.handle, wouldImport: todo.map(row), skipped: skippedOut },
          () => 'Dry run: nothing was imported.',
        );
        return;
      }
      const yes = o.yes === true || (await confirm(`Import ${todo.length} key(s) into the vault?`));
      if (!yes)
        throw new AppError(
          'ERR_INPUT_INVALID',
          'not confirmed: nothing was imported',
          process.stdin.isTTY
            ? 'run it again and answer y'
            : 'no terminal to ask on: pass --yes to import, or --dry-run to only look',
        );
      const imported: Array<ReturnType<typeof row>> = [];
      const failed: Array<{ provider: string; connection: string; error: string; exit: number }> = [];
      for (const f of todo) {
        try {
          await client.call('PUT', `/v1/connections/${f.provider}/${f.connection}`, {
            fields: { [f.field]: f.value },
            flow: 'api-key',
          });
          imported.push(row(f));
        } catch (e) {
          if (!isAppError(e)) throw e;
          failed.push({
            provider: f.provider,
            connection: f.connection,
            error: `${e.message} [${e.code}]`,
            exit: e.exitCode,
          });
        }
      }
      const done = todo.filter((f) =>
        imported.some((i) => i.provider === f.provider && i.connection === f.connection),
      );
      const left = leftovers(
        done.flatMap((f) => f.sources),
        done.map((f) => f.value),
      );
      emit(ctx.out, { profile: client.handle, imported, failed, skipped: skippedOut, remaining: left }, () =>
        [
          ...imported.map((i) => `Imported ${i.provider} → connection "${i.connection}" (${i.value}).`),
          ...failed.map((f) => `FAILED ${f.provider} → "${f.connection}": ${f.error}`),
          ...(left.length
            ? [
                '',
                'Plaintext copies remain. The proxy injects these keys now, so remove them:',
                ...left.map((l) => `  ${l.where}\n    → ${l.fix}`),
              ]
            : []),
          '',
          'Next: authsome connection list · authsome run -- <command> (the proxy injects the keys)',
        ].join('\n'),
      );
      if (failed[0]) process.exitCode = failed[0].exit;
    },
  );
}
