import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Argv } from 'yargs';
import { packageRoot } from '../../config/settings.js';
import { Ctx, type GlobalArgs } from '../context.js';

/**
 * yargs' own completion: `authsome completion` prints a bash script (a zsh one when $SHELL is zsh)
 * that calls back into `authsome --get-yargs-completions …`, so completions always match this
 * version's commands. yargs prints the script and exits 0 before strict parsing sees the word.
 *
 * Where a provider or connection name goes, the names are offered: from the running daemon (the
 * acting profile's providers and connections), never starting it; without one, the bundled
 * provider names. Completion never fails: on any trouble it offers what yargs would.
 */

/** What the word being completed names, from the words before it. */
export type Slot =
  { kind: 'provider' } | { kind: 'connection'; provider: string | undefined } | { kind: 'allow' };

/** Commands whose positionals are [provider, connection] (or [provider] alone). */
const PROVIDER_THEN_CONNECTION: ReadonlyArray<readonly string[]> = [
  ['login'],
  ['logout'],
  ['connection', 'show'],
  ['connection', 'default'],
  ['connection', 'remove'],
];
const PROVIDER_ONLY: ReadonlyArray<readonly string[]> = [
  ['provider', 'show'],
  ['provider', 'remove'],
  ['provider', 'client'],
];
/** login takes its connection only with --connection (a second word there may be a pasted secret). */
const NO_SECOND = new Set(['login']);
const OPTIONS_WITH_VALUES = new Set([
  '--home',
  '--profile',
  '--connection',
  '-c',
  '--allow',
  '--provider',
  '--ttl',
]);

export function completionSlot(words: readonly string[]): Slot | undefined {
  const prev = words.at(-1);
  const positional: string[] = [];
  for (let i = 0; i < words.length; i++) {
    const w = words[i]!;
    if (w === '--') return undefined; // the command of `run -- …`
    if (OPTIONS_WITH_VALUES.has(w)) i++;
    else if (!w.startsWith('-')) positional.push(w);
  }
  const starts = (path: readonly string[]) => path.every((p, i) => positional[i] === p);
  const cmd = [...PROVIDER_THEN_CONNECTION, ...PROVIDER_ONLY].find(starts);
  const provider = cmd ? positional[cmd.length] : undefined;
  if (prev === '--allow') return { kind: 'allow' };
  if (prev === '--provider') return { kind: 'provider' };
  if (prev === '--connection' || prev === '-c') return { kind: 'connection', provider };
  if (prev?.startsWith('-')) return undefined;
  if (!cmd) return undefined;
  const at = positional.length - cmd.length;
  if (at === 0) return { kind: 'provider' };
  if (at === 1 && PROVIDER_THEN_CONNECTION.includes(cmd) && !NO_SECOND.has(cmd.join(' ')))
    return { kind: 'connection', provider };
  return undefined;
}

interface Known {
  providers: string[];
  connections: Array<{ provider: string; connection: string }>;
}

function bundledProviders(): string[] {
  try {
    return readdirSync(join(packageRoot(), 'config', 'providers'))
      .filter((f) => f.endsWith('.json'))
      .map((f) => f.slice(0, -'.json'.length))
      .sort();
  } catch {
    return [];
  }
}

/** From the running daemon (never started here), else the bundled provider names. */
async function known(argv: GlobalArgs): Promise<Known> {
  const fallback = { providers: bundledProviders(), connections: [] };
  try {
    const client = await new Ctx(argv).client(undefined, { start: false });
    if (!client) return fallback;
    const slow = new Promise<undefined>((r) => setTimeout(() => r(undefined), 1500).unref());
    const res = await Promise.race([
      client.call<{ providers: Array<{ name: string; connections: string[] }> }>('GET', '/v1/providers'),
      slow,
    ]);
    if (!res) return fallback;
    return {
      providers: res.providers.map((p) => p.name).sort(),
      connections: res.providers.flatMap((p) =>
        p.connections.map((connection) => ({ provider: p.name, connection })),
      ),
    };
  } catch {
    return fallback;
  }
}

export async function completeNames(slot: Slot, current: string, argv: GlobalArgs): Promise<string[]> {
  const k = await known(argv);
  let out: string[];
  if (slot.kind === 'provider') out = k.providers;
  else if (slot.kind === 'connection')
    out = [
      ...new Set(
        k.connections
          .filter((c) => slot.provider === undefined || c.provider === slot.provider)
          .map((c) => c.connection),
      ),
    ];
  else {
    // --allow provider[:connection],…: complete the last item of the list.
    const head = current.slice(0, current.lastIndexOf(',') + 1);
    const items = [...k.providers, ...k.connections.map((c) => `${c.provider}:${c.connection}`)];
    return items.map((i) => head + i).filter((i) => i.startsWith(current));
  }
  return out.filter((n) => n.startsWith(current));
}

export function completionCommand(y: Argv<GlobalArgs>): Argv<GlobalArgs> {
  return y.completion(
    'completion',
    'print a shell completion script: authsome completion >> ~/.bashrc (or ~/.zshrc)',
  );
}

/**
 * `authsome --get-yargs-completions authsome WORD… CURRENT` (what the completion script runs). Names
 * are answered here, before any command is parsed: given an asynchronous completion function, yargs
 * would go on to parse (and validate) the command being typed while the names are looked up.
 */
export async function printCompletions(
  args: readonly string[],
  build: (argv: string[]) => Argv<GlobalArgs>,
): Promise<void> {
  const at = args.indexOf('--get-yargs-completions');
  const words = args.slice(at + 1); // the program name, the words typed, the word being completed
  const current = words.at(-1) ?? '';
  const slot = completionSlot(words.slice(1, -1));
  // Anything else: yargs' own (synchronous) completion of commands and options, which prints and exits.
  if (!slot) return void (await build([...args]).parseAsync());
  const out = await completeNames(slot, current, globalFlags(words));
  if (out.length) process.stdout.write(`${out.join('\n')}\n`);
}

/** --home and --profile as typed, for reading the right home's daemon. */
function globalFlags(words: readonly string[]): GlobalArgs {
  const value = (flag: string) => {
    const i = words.indexOf(flag);
    return i >= 0 && i + 1 < words.length - 1 ? words[i + 1] : undefined;
  };
  const home = value('--home');
  const profile = value('--profile');
  return { ...(home ? { home } : {}), ...(profile ? { profile } : {}) };
}
