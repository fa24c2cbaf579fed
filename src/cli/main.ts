#!/usr/bin/env node
import yargs, { type Argv } from 'yargs';
import { hideBin } from 'yargs/helpers';
import { AppError } from '../errors.js';
import { VERSION } from '../version.js';
import { reportError } from './output.js';
import type { GlobalArgs } from './context.js';
import { initCommand } from './commands/init.js';
import { profileCommand } from './commands/profile.js';
import { loginCommand, connectionCommand } from './commands/connection.js';
import { providerCommand } from './commands/provider.js';
import { proxyCommand } from './commands/proxy.js';
import { runCommand } from './commands/run.js';
import { auditCommand } from './commands/audit.js';
import { caCommand } from './commands/ca.js';
import { daemonCommand } from './commands/daemon.js';
import { doctorCommand } from './commands/doctor.js';
import { explainCommand } from './commands/explain.js';
import { importCommand } from './commands/import.js';
import { completionCommand } from './commands/completion.js';
import { policyCommands } from './commands/policy.js';
import { uiCommand } from './commands/ui.js';
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const COMMANDS = [
  initCommand,
  profileCommand,
  loginCommand,
  connectionCommand,
  providerCommand,
  proxyCommand,
  runCommand,
  auditCommand,
  caCommand,
  daemonCommand,
  doctorCommand,
  explainCommand,
  importCommand,
  policyCommands,
  uiCommand,
  completionCommand,
];

/**
 * yargs repeats what it could not use in its messages: every unknown argument, and the value given to
 * a choice option. A stray value is often a secret pasted onto the command line (`authsome login
 * openai sk-…`), and error output ends up in logs: only unknown option names (given as --name or -n)
 * are repeated, other values are counted or left out, never shown. undefined for other messages.
 */
/** The command word: the first argument that is neither an option nor the value of a global one. */
function commandOf(argv: readonly string[]): string | undefined {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--home' || a === '--profile') i++;
    else if (!a.startsWith('-')) return a;
  }
  return undefined;
}

function redactedParseError(msg: string, argv: readonly string[]): AppError | undefined {
  const invalid = /^Invalid values?:/.exec(msg);
  // yargs' "Invalid values: Argument: flow, Given: "…"" repeats the value given.
  if (invalid)
    return new AppError(
      'ERR_INPUT_INVALID',
      msg.replace(/Given: .*?, Choices:/gs, 'Choices:'),
      'see `authsome <command> --help`',
    );
  const m = /^Unknown arguments?: (.*)$/s.exec(msg);
  if (!m) return undefined;
  const names: string[] = [];
  let hidden = 0;
  const kebab = (a: string): string => a.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
  for (const a of m[1]!.split(', ')) {
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
  const parts = [
    ...(names.length ? [`unknown option${names.length > 1 ? 's' : ''} ${names.join(', ')}`] : []),
    ...(hidden
      ? [`${hidden} unexpected argument${hidden > 1 ? 's' : ''} (not shown, in case one is a secret)`]
      : []),
  ];
  // `authsome run curl -s URL`: the command's own options reached yargs because `--` is missing.
  const runWithoutDashes = commandOf(argv) === 'run' && !argv.includes('--');
  return new AppError(
    'ERR_INPUT_INVALID',
    parts.join('; '),
    runWithoutDashes
      ? 'put the command after --: `authsome run [--allow …] -- curl -s https://…`'
      : hidden
        ? 'secrets are read from stdin or a no-echo prompt, never from the command line; see `authsome <command> --help`'
        : 'see `authsome <command> --help`',
  );
}

export function buildCli(argv: string[]) {
  let y: Argv<GlobalArgs> = yargs(argv)
    .scriptName('authsome')
    .version(VERSION)
    .usage(
      'authsome — a credential-injecting HTTP(S) proxy for agents and dev shells\n\nUsage: $0 <command> [options]',
    )
    .option('home', {
      type: 'string',
      describe: 'authsome home (default $AUTHSOME_HOME or ~/.authsome)',
      global: true,
    })
    .option('profile', { type: 'string', describe: 'act as this profile for this one command', global: true })
    .option('json', { type: 'boolean', describe: 'machine-readable output', global: true })
    .option('color', {
      type: 'boolean',
      default: true,
      describe: 'colour output (--no-color, or NO_COLOR)',
      global: true,
    })
    .parserConfiguration({ 'populate--': true })
    .strict()
    .demandCommand(1, 'name a command (see --help)')
    .recommendCommands()
    .help()
    .alias('help', 'h')
    .epilogue(
      'Exit codes: 0 ok, 1 internal, 2 bad input, 3 not found, 4 identity, 5 forbidden, 6 home not set up, 7 upstream, 8 vault/audit unavailable, 9 audit chain broken, 10 daemon. Docs: docs/cli.md',
    )
    .fail((msg, err) => {
      if (err) throw err;
      throw redactedParseError(msg, argv) ?? new AppError('ERR_INPUT_INVALID', msg, 'see `authsome --help`');
    }) as unknown as Argv<GlobalArgs>;
  for (const c of COMMANDS) y = c(y);
  return y;
}

async function main(): Promise<void> {
  const args = hideBin(process.argv);
  try {
    await buildCli(args).parseAsync();
  } catch (e) {
    process.exitCode = reportError(e, args.includes('--json'));
  }
}

/** True when this file is the process entry (bin symlinks resolved), so tests can import buildCli. */
function isEntry(): boolean {
  try {
    return process.argv[1] !== undefined && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url);
  } catch {
    return false;
  }
}

if (isEntry()) await main();
