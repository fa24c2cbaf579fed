#!/usr/bin/env node
import yargs, { type Argv } from 'yargs';
import { hideBin } from 'yargs/helpers';
import { VERSION } from '../version.js';
import { reportError } from './output.js';
import { parseError } from './parse-errors.js';
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
import { completionCommand, printCompletions } from './commands/completion.js';
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
    .option('daemon', {
      type: 'string',
      describe: "talk to a team node at https://host:port instead of this home's daemon (or AUTHSOME_DAEMON)",
      global: true,
    })
    .option('daemon-ca', {
      type: 'string',
      describe: "with --daemon: the team's CA certificate (or AUTHSOME_DAEMON_CA; default server/ca/ca.pem)",
      global: true,
    })
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
      'Exit codes: 0 ok, 1 internal, 2 bad input, 3 not found or already exists, 4 identity, 5 forbidden, 6 home not set up, 7 upstream, 8 vault/audit unavailable, 9 audit chain broken, 10 daemon. Docs: docs/cli.md',
    )
    .fail((msg, err, failing) => {
      if (err) throw err;
      // The failing command's own help (its usage line, examples, subcommands) for the message,
      // unwrapped so that an example stays on one line.
      let help = '';
      failing.wrap(null);
      failing.showHelp((s: string) => (help = s));
      throw parseError(msg, argv, help);
    }) as unknown as Argv<GlobalArgs>;
  for (const c of COMMANDS) y = c(y);
  return y;
}

async function main(): Promise<void> {
  const args = hideBin(process.argv);
  try {
    if (args.includes('--get-yargs-completions')) return await printCompletions(args, buildCli);
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
