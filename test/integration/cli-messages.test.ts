import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { TestHome, type CliResult } from '../helpers/cli.js';
import { findCanary } from '../helpers/canary.js';

/** Issue 19 item 2: what a new user types, and what authsome answers. */
const GITHUB = `ghp_CANARYmsg${randomBytes(10).toString('hex')}`;
const OPENAI = `sk-CANARYmsg${randomBytes(10).toString('hex')}`;
/** A pasted secret that is also a valid name (lower-case hex): it must not be echoed either. */
const PASTED = `key-${randomBytes(16).toString('hex')}`;

describe('CLI messages', () => {
  let t: TestHome;
  const outputs: CliResult[] = [];
  const run = async (args: string[], opts: { input?: string; env?: NodeJS.ProcessEnv } = {}) => {
    const r = await t.run(args, opts);
    outputs.push(r);
    return r;
  };

  beforeAll(async () => {
    t = new TestHome();
    expect((await run(['init', '--profile', 'me'])).code).toBe(0);
    for (const c of ['personal', 'work'])
      expect((await run(['login', 'github', '--connection', c], { input: `${GITHUB}${c}\n` })).code).toBe(0);
    expect((await run(['login', 'openai'], { input: `${OPENAI}\n` })).code).toBe(0);
  });

  afterAll(async () => {
    await t.cleanup();
  });

  it('`connection show` takes the connection as a second argument, as `connection default` does', async () => {
    const r = await run(['connection', 'show', 'github', 'work']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('connection: work');
    const flag = await run(['connection', 'show', 'github', '--connection', 'work']);
    expect(flag.stdout).toBe(r.stdout);
    const both = await run(['connection', 'show', 'github', 'work', '--connection', 'personal']);
    expect(both.code).toBe(2);
    expect(both.stderr).toContain('two different connection names');
  });

  it('`connection remove github work` and `logout github personal` remove what they name', async () => {
    expect((await run(['connection', 'remove', 'github', 'work'])).code).toBe(0);
    expect((await run(['logout', 'github', 'personal'])).code).toBe(0);
    const list = await t.json<{ connections: Array<{ provider: string }> }>(['connection', 'list']);
    expect(list.connections.map((c) => c.provider)).toEqual(['openai']);
    for (const c of ['personal', 'work'])
      expect((await run(['login', 'github', '--connection', c], { input: `${GITHUB}${c}\n` })).code).toBe(0);
  });

  it('a pasted secret in the connection’s place is never repeated, even when it is a valid name', async () => {
    for (const args of [
      ['connection', 'show', 'github', PASTED],
      ['connection', 'remove', 'github', PASTED],
      ['logout', 'github', PASTED],
    ]) {
      const r = await run(args);
      expect(r.code).toBe(3);
      expect(r.stderr).toContain('ERR_CONNECTION_NOT_FOUND');
      expect(r.stderr).toContain('not repeated in case it is a secret');
      expect(r.stderr + r.stdout).not.toContain(PASTED);
    }
  });

  it('a mistyped subcommand gets a suggestion, and the typed word is never printed', async () => {
    const r = await run(['audit', 'verfy']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('did you mean `authsome audit verify`?');
    expect(r.stderr).not.toContain('verfy');
    expect(r.stderr).not.toContain('stdin');
    const c = await run(['connection', 'remov', 'github']);
    expect(c.code).toBe(2);
    expect(c.stderr).toContain('did you mean `authsome connection remove`?');
    expect(c.stderr).not.toContain('remov ');
  });

  it('a stray value that is no near miss is counted, not shown, and not taken for a subcommand', async () => {
    for (const args of [
      ['audit', PASTED],
      ['login', 'openai', PASTED],
      ['connection', 'list', PASTED],
      ['audit', 'verify', PASTED],
    ]) {
      const r = await run(args);
      expect(r.code).toBe(2);
      expect(r.stderr).toContain('1 unexpected argument (not shown');
      expect(r.stderr).not.toContain('did you mean');
      expect(r.stderr + r.stdout).not.toContain(PASTED);
    }
  });

  it('a missing argument prints the usage line and an example, not raw yargs text', async () => {
    const r = await run(['connection', 'show']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('`authsome connection show` needs <provider>');
    expect(r.stderr).toContain('usage: authsome connection show <provider> [name]');
    expect(r.stderr).toContain('for example: authsome connection show github work');
    expect(r.stderr).not.toContain('non-option arguments');
    const d = await run(['connection', 'default', 'github']);
    expect(d.stderr).toContain('needs <provider> <name>');
    expect(d.stderr).toContain('for example: authsome connection default github work');
    const c = await run(['provider', 'client', 'github']);
    expect(c.stderr).toContain('`authsome provider client` needs --client-id');
    expect(c.stderr).toContain('for example: authsome provider client github --client-id');
    const g = await run(['connection']);
    expect(g.stderr).toContain('name a connection subcommand: list, show, default, remove');
  });

  it('`init` on an initialised home exits 3 (already exists), as the README table says', async () => {
    const r = await run(['init']);
    expect(r.code).toBe(3);
    expect(r.stderr).toContain('ERR_HOME_EXISTS');
  });

  it('`run --allow openai` sets only the allowed provider’s placeholder and removes the others’ variables', async () => {
    const script = 'echo "${GITHUB_TOKEN-unset}|${GH_TOKEN-unset}|${OPENAI_API_KEY-unset}"';
    const shellKey = { GITHUB_TOKEN: 'ghp_REAL_from_the_shell', GH_TOKEN: 'gho_REAL_from_the_shell' };
    const narrow = await run(['run', '--allow', 'openai', '--', 'sh', '-c', script], { env: shellKey });
    expect(narrow.code, narrow.stderr).toBe(0);
    expect(narrow.stdout.trim()).toBe('unset|unset|authsome-managed');
    const all = await run(['run', '--', 'sh', '-c', script], { env: shellKey });
    expect(all.stdout.trim()).toBe('authsome-managed|authsome-managed|authsome-managed');
    const env = await run(['proxy', 'env', '--allow', 'openai', '--ttl', '1m']);
    expect(env.stdout).toContain("export OPENAI_API_KEY='authsome-managed'");
    expect(env.stdout).not.toContain('export GITHUB_TOKEN');
    expect(env.stdout).toMatch(/^unset (?=.*\bGITHUB_TOKEN\b)(?=.*\bGH_TOKEN\b).*$/m);
    const json = await t.json<{ env: Record<string, string>; unset: string[] }>([
      'proxy',
      'env',
      '--allow',
      'openai',
      '--ttl',
      '1m',
    ]);
    expect(json.env['GITHUB_TOKEN']).toBeUndefined();
    expect(json.unset.sort()).toEqual(['GH_TOKEN', 'GITHUB_TOKEN']);
  });

  it('`provider list` fits 80 columns when stdout is not a terminal; --json keeps every host', async () => {
    const r = await run(['provider', 'list']);
    expect(r.code).toBe(0);
    const lines = r.stdout.trimEnd().split('\n');
    expect(Math.max(...lines.map((l) => l.length))).toBeLessThanOrEqual(80);
    // datadog's six hosts wrap onto continuation lines instead of widening the table
    const at = lines.findIndex((l) => l.startsWith('datadog '));
    expect(lines[at + 1]).toMatch(/^ {10,}api\./);
    expect(lines.find((l) => l.startsWith('github '))).toMatch(/personal, work$|personal,$/);
    const json = await t.json<{ providers: Array<{ name: string; hosts: string[] }> }>(['provider', 'list']);
    expect(json.providers.find((p) => p.name === 'datadog')?.hosts).toHaveLength(6);
  });

  it('completion offers provider and connection names from the running daemon', async () => {
    const complete = (...words: string[]) => run(['--get-yargs-completions', 'authsome', ...words]);
    const p = await complete('login', 'open');
    expect(p.code, p.stderr).toBe(0);
    expect(p.stdout.split('\n')).toContain('openai');
    expect(p.stdout.split('\n').every((l) => l === '' || l.startsWith('open'))).toBe(true);
    const c = await complete('connection', 'show', 'github', '');
    expect(c.stdout.trim().split('\n').sort()).toEqual(['personal', 'work']);
    const f = await complete('logout', 'github', '--connection', 'w');
    expect(f.stdout.trim()).toBe('work');
    const a = await complete('run', '--allow', 'github:');
    expect(a.stdout.trim().split('\n').sort()).toEqual(['github:personal', 'github:work']);
    const sub = await complete('connection', '');
    expect(sub.stdout.trim().split('\n')).toEqual(['list', 'show', 'default', 'remove']);
    expect(p.stderr + c.stderr + sub.stderr).toBe('');
  });

  it('completion never starts the daemon: without one it offers the bundled provider names', async () => {
    expect((await run(['daemon', 'stop'])).code).toBe(0);
    const p = await run(['--get-yargs-completions', 'authsome', 'provider', 'show', 'git']);
    expect(p.code).toBe(0);
    expect(p.stdout.trim().split('\n')).toEqual(['github', 'github-git', 'gitlab']);
    const c = await run(['--get-yargs-completions', 'authsome', 'connection', 'show', 'github', '']);
    expect(c.stdout.trim()).toBe('');
    expect(existsSync(join(t.home, 'server', 'daemon.json'))).toBe(false);
    const s = await run(['daemon', 'status']);
    expect(s.stdout + s.stderr).toContain('not running');
  });

  it('no secret reaches any output', () => {
    for (const o of outputs)
      for (const s of [GITHUB, OPENAI]) expect(findCanary(o.stdout + o.stderr, s)).toBeUndefined();
  });
});
