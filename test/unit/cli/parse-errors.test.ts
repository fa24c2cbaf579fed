import { describe, expect, it } from 'vitest';
import { buildCli } from '../../../src/cli/main.js';
import { helpText, subcommands } from '../../../src/cli/help-docs.js';
import { parseError, readHelp } from '../../../src/cli/parse-errors.js';

const SECRET = 'sk-proj-Zq3x9CANARYparse';

const AUDIT_HELP = [
  'authsome audit',
  '',
  'read the hash-chained audit log',
  '',
  'Commands:',
  '  authsome audit         list audit events   [default]',
  "  authsome audit verify  check the hash chain, and that the log holds the daemon's last record",
  '',
  'Options:',
  '  --help',
].join('\n');

const SHOW_HELP = [
  'authsome connection show <provider> [name]',
  '',
  'show one connection (never the secret)',
  '',
  'Examples:',
  '  authsome connection show github work  the "work" GitHub connection',
].join('\n');

describe('readHelp', () => {
  it('reads the usage line, the first example and the subcommands', () => {
    expect(readHelp(SHOW_HELP)).toEqual({
      path: ['connection', 'show'],
      usage: 'authsome connection show <provider> [name]',
      example: 'authsome connection show github work',
      subcommands: [],
    });
    expect(readHelp(AUDIT_HELP)).toMatchObject({ path: ['audit'], subcommands: ['verify'] });
  });

  it('the top level has no usage line (its first line is the tagline)', () => {
    expect(readHelp('authsome — a proxy\n\nUsage: authsome <command>')).toMatchObject({
      path: [],
      usage: undefined,
    });
  });
});

describe('parseError never repeats a stray value', () => {
  it('suggests a near subcommand without printing the typed word', () => {
    const e = parseError('Unknown argument: verfy', ['audit', 'verfy'], AUDIT_HELP);
    expect(e.message).toContain('did you mean `authsome audit verify`?');
    expect(JSON.stringify(e.toJSON())).not.toContain('verfy');
  });

  it('counts a value that is no near miss, with the usage line', () => {
    const e = parseError(`Unknown argument: ${SECRET}`, ['audit', SECRET], AUDIT_HELP);
    expect(e.message).toBe('1 unexpected argument (not shown, in case one is a secret)');
    expect(JSON.stringify(e.toJSON())).not.toContain(SECRET);
    expect(e.hint).toContain('usage: authsome audit');
  });

  it('names short unknown options only, and drops the value of a choice option', () => {
    const e = parseError('Unknown arguments: frobnicate, x', ['audit', '--frobnicate', SECRET], AUDIT_HELP);
    expect(e.message).toBe(
      'unknown option --frobnicate; 1 unexpected argument (not shown, in case one is a secret)',
    );
    const c = parseError(
      `Invalid values:\n  Argument: flow, Given: "${SECRET}", Choices: "api-key", "device"`,
      ['login', '--flow', SECRET],
      SHOW_HELP,
    );
    expect(JSON.stringify(c.toJSON())).not.toContain(SECRET);
  });

  it('a missing argument gets the usage line and an example', () => {
    const e = parseError(
      'Not enough non-option arguments: got 0, need at least 1',
      ['connection', 'show'],
      SHOW_HELP,
    );
    expect(e.message).toBe('`authsome connection show` needs <provider>');
    expect(e.hint).toContain('usage: authsome connection show <provider> [name]');
    expect(e.hint).toContain('for example: authsome connection show github work');
  });

  it('yargs’ own "Did you mean" becomes the full command', () => {
    const e = parseError(
      'Did you mean remove?',
      ['connection', 'remov'],
      'authsome connection\n\nCommands:\n  authsome connection remove <provider>  x',
    );
    expect(e.message).toBe('unknown connection subcommand — did you mean `authsome connection remove`?');
  });
});

describe('every command that takes a required argument has an example', () => {
  it('walks the whole command tree', async () => {
    const missing: string[] = [];
    const walk = async (path: string[]): Promise<void> => {
      const help = await helpText(buildCli, path);
      const h = readHelp(help);
      if (h.usage?.includes('<') && !h.example) missing.push(path.join(' '));
      for (const sub of subcommands(help, path)) await walk(sub);
    };
    await walk([]);
    expect(missing).toEqual([]);
  }, 60_000);
});
