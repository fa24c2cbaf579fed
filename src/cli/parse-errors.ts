import { AppError } from '../errors.js';
import { closest } from '../names.js';

/**
 * yargs' parse failures, rewritten for people. yargs repeats what it could not use in its messages:
 * every unknown argument, and the value given to a choice option. A stray value is often a secret
 * pasted onto the command line (`authsome login openai sk-…`), and error output ends up in logs: only
 * unknown option names (given as --name or -n) and the names of known subcommands are ever repeated;
 * other values are counted or left out, never shown.
 *
 * `help` is the --help text of the command being parsed when it failed (yargs' showHelp at that
 * level): its first line is the command's usage line, its Examples and Commands sections are ours.
 */

/** The usage line, the first example and the subcommands read from a command's --help text. */
export interface CommandHelp {
  /** The words of the command: [] for the top level, ['connection', 'show'] … */
  path: string[];
  /** `authsome connection show <provider> [name]`; undefined at the top level. */
  usage: string | undefined;
  example: string | undefined;
  subcommands: string[];
}

function section(help: string, title: string): string[] {
  const start = help.search(new RegExp(`^${title}:$`, 'm'));
  if (start < 0) return [];
  return (help.slice(start).split('\n\n')[0] ?? '').split('\n').slice(1);
}

export function readHelp(help: string): CommandHelp {
  const first = help.split('\n', 1)[0]?.trim() ?? '';
  // The top level's first line is the tagline ("authsome — …"), not a usage line.
  const isUsage = /^authsome( [a-z][a-z-]*)*( [<[].*)?$/.test(first);
  const path = isUsage
    ? first
        .split(/\s+/)
        .slice(1)
        .filter((w) => /^[a-z][a-z-]*$/.test(w))
    : [];
  const example = section(help, 'Examples')
    .map((l) => l.trim().split(/\s{2,}/)[0] ?? '')
    .find((l) => l.startsWith('authsome '));
  const subcommands: string[] = [];
  for (const line of section(help, 'Commands')) {
    const words = (line.trim().split(/\s{2,}/)[0] ?? '').split(/\s+/);
    if (words[0] !== 'authsome' || words.length < path.length + 2) continue;
    if (path.some((p, i) => words[i + 1] !== p)) continue;
    const sub = words[path.length + 1]!;
    if (/^[a-z][a-z-]*$/.test(sub)) subcommands.push(sub);
  }
  return { path, usage: isUsage ? first : undefined, example, subcommands };
}

/** Positional words of argv: neither options nor the value of a global option that takes one. */
function positionals(argv: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') break;
    if (a === '--home' || a === '--profile' || a === '--daemon' || a === '--daemon-ca') i++;
    else if (!a.startsWith('-')) out.push(a);
  }
  return out;
}

function usageHint(h: CommandHelp): string {
  const parts = [
    ...(h.usage ? [`usage: ${h.usage}`] : []),
    ...(h.example ? [`for example: ${h.example}`] : []),
  ];
  const more = `\`authsome ${h.path.length ? `${h.path.join(' ')} ` : ''}--help\` says more`;
  return [...parts, more].join('; ');
}

function subcommandList(h: CommandHelp): string {
  return h.subcommands.length ? `: ${h.subcommands.join(', ')}` : '';
}

function unknownArguments(list: string, argv: readonly string[], h: CommandHelp): AppError {
  const names: string[] = [];
  let hidden = 0;
  const kebab = (a: string): string => a.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
  for (const a of list.split(', ')) {
    const flag = a.length === 1 ? `-${a}` : `--${a}`;
    const given = (f: string): boolean => argv.some((x) => x === f || x.startsWith(`${f}=`));
    if (given(flag)) names.push(flag);
    else if (a.length > 1 && given(`--${kebab(a)}`))
      continue; // yargs' camelCase twin of a named one
    else hidden++;
  }
  // A long unknown option name may itself be a pasted secret (--sk-…): named only when short.
  for (let i = 0; i < names.length; i++)
    if (names[i]!.length > 24) names[i] = `(an option of ${names[i]!.length} characters)`;
  // `authsome run curl -s URL`: the command's own options reached yargs because `--` is missing.
  const words = positionals(argv);
  if (words[0] === 'run' && !argv.includes('--'))
    return new AppError(
      'ERR_INPUT_INVALID',
      [
        ...(names.length ? [`unknown option${names.length > 1 ? 's' : ''} ${names.join(', ')}`] : []),
        ...(hidden ? [`${hidden} unexpected argument${hidden > 1 ? 's' : ''} (not shown)`] : []),
      ].join('; '),
      'put the command after --: `authsome run [--allow …] -- curl -s https://…`',
    );
  // `authsome audit verfy`: a group whose default command took the misspelt subcommand as a stray
  // argument. The word itself is never printed; a known subcommand close to it may be suggested.
  const next = words[h.path.length];
  const inPath = h.path.every((p, i) => words[i] === p);
  if (hidden > 0 && inPath && next !== undefined && !h.subcommands.includes(next)) {
    const guess = closest(next, h.subcommands);
    if (guess)
      return new AppError(
        'ERR_INPUT_INVALID',
        `unknown ${h.path.join(' ')} subcommand — did you mean \`authsome ${[...h.path, guess].join(' ')}\`?`,
        `${h.path.join(' ')} subcommands${subcommandList(h)}; \`authsome ${h.path.join(' ')} --help\` says more`,
      );
  }
  const parts = [
    ...(names.length ? [`unknown option${names.length > 1 ? 's' : ''} ${names.join(', ')}`] : []),
    ...(hidden
      ? [`${hidden} unexpected argument${hidden > 1 ? 's' : ''} (not shown, in case one is a secret)`]
      : []),
  ];
  return new AppError(
    'ERR_INPUT_INVALID',
    parts.join('; '),
    hidden
      ? `secrets are read from stdin or a no-echo prompt, never from the command line; ${usageHint(h)}`
      : usageHint(h),
  );
}

/** The AppError for a yargs failure message; `help` is the failing command's --help text. */
export function parseError(msg: string, argv: readonly string[], help: string): AppError {
  const h = readHelp(help);
  const invalid = /^Invalid values?:/.exec(msg);
  // yargs' "Invalid values: Argument: flow, Given: "…"" repeats the value given.
  if (invalid)
    return new AppError('ERR_INPUT_INVALID', msg.replace(/Given: .*?, Choices:/gs, 'Choices:'), usageHint(h));
  const unknown = /^Unknown arguments?: (.*)$/s.exec(msg);
  if (unknown) return unknownArguments(unknown[1]!, argv, h);
  // yargs' recommendCommands: the suggestion is one of our own command names, never the typed word.
  const mean = /^Did you mean ([a-z][a-z-]*)\?$/.exec(msg);
  if (mean) {
    const where = h.path.length ? `${h.path.join(' ')} subcommand` : 'command';
    return new AppError(
      'ERR_INPUT_INVALID',
      `unknown ${where} — did you mean \`authsome ${[...h.path, mean[1]].join(' ')}\`?`,
      h.path.length
        ? `${h.path.join(' ')} subcommands${subcommandList(h)}`
        : '`authsome --help` lists the commands',
    );
  }
  if (/^Not enough non-option arguments/.test(msg)) {
    const needs = (h.usage ?? '').match(/<[^>]+>/g) ?? [];
    return new AppError(
      'ERR_INPUT_INVALID',
      `\`authsome ${h.path.join(' ')}\` needs ${needs.length ? needs.join(' ') : 'more arguments'}`,
      usageHint(h),
    );
  }
  const missing = /^Missing required arguments?: (.*)$/s.exec(msg);
  if (missing) {
    const flags = missing[1]!.split(', ').map((f) => `--${f}`);
    return new AppError(
      'ERR_INPUT_INVALID',
      `\`authsome ${h.path.join(' ')}\` needs ${flags.join(', ')}`,
      usageHint(h),
    );
  }
  // Our own demandCommand messages ("name a connection subcommand"): say which there are.
  if (/^name a .*(sub)?command/.test(msg))
    return new AppError(
      'ERR_INPUT_INVALID',
      h.path.length
        ? `name a ${h.path.join(' ')} subcommand${subcommandList(h)}`
        : 'name a command (`authsome --help` lists them)',
      h.path.length
        ? `for example: authsome ${[...h.path, h.subcommands[0] ?? '--help'].join(' ')}`
        : 'for example: authsome init, then authsome login <provider>',
    );
  return new AppError('ERR_INPUT_INVALID', msg, usageHint(h));
}
