import { describe, expect, it } from 'vitest';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { buildCli } from '../../../src/cli/main.js';
import { renderCliDocs, subcommands } from '../../../src/cli/help-docs.js';

const DOC = resolve(import.meta.dirname, '../../../docs/cli.md');

describe('docs/cli.md is generated from the command definitions', () => {
  it('matches the current --help of every command (regenerate: npm run docs:cli)', async () => {
    const fresh = await renderCliDocs(buildCli);
    // AUTHSOME_UPDATE_DOCS=1 npx vitest run test/unit/cli/cli-docs.test.ts rewrites it, like npm run docs:cli.
    if (process.env['AUTHSOME_UPDATE_DOCS'] === '1' || !existsSync(DOC)) writeFileSync(DOC, fresh);
    expect(readFileSync(DOC, 'utf8'), 'docs/cli.md is stale: run `npm run docs:cli`').toBe(fresh);
  }, 60_000);

  it('covers every top-level command, including the everyday ones', async () => {
    const doc = readFileSync(DOC, 'utf8');
    for (const c of [
      'init',
      'profile create',
      'login',
      'run',
      'audit verify',
      'doctor',
      'explain',
      'import',
      'daemon serve',
    ])
      expect(doc).toContain(`## authsome ${c}`);
    expect(doc).toContain('authsome completion');
  });

  it('finds sub-commands one level down only', () => {
    const help =
      'authsome profile\n\nCommands:\n  authsome profile create <name>  make one\n  authsome profile list           list\n\nOptions:\n  --x';
    expect(subcommands(help, ['profile'])).toEqual([
      ['profile', 'create'],
      ['profile', 'list'],
    ]);
    expect(subcommands(help, [])).toEqual([]);
  });
});
