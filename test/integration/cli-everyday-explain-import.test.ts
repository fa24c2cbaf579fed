import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { spawn } from 'node:child_process';
import { CLI, TestHome, type CliResult } from '../helpers/cli.js';
import { findCanary, filesContaining } from '../helpers/canary.js';

const GITHUB = `ghp_CANARYexp${randomBytes(12).toString('hex')}`;
const OPENAI = `sk-proj-CANARY${randomBytes(16).toString('hex')}`;
const ANTHROPIC = `sk-ant-api03-CANARY${randomBytes(16).toString('hex')}`;

interface Explanation {
  decision: string;
  reason: string;
  hint?: string;
  provider?: { name: string };
  connection?: { name: string; isDefault: boolean };
  headers: Array<{ name: string; value: string }>;
}

describe('authsome explain and authsome import', () => {
  let t: TestHome;
  const outputs: CliResult[] = [];
  const run = async (args: string[], env: NodeJS.ProcessEnv = {}) => {
    const r = await t.run(args, { env });
    outputs.push(r);
    return r;
  };
  /** The explanation, after checking the exit code: 0, or the refusal's own (5 forbidden, 2 malformed). */
  const explainExit = async (code: number, ...args: string[]) => {
    const r = await run(['explain', ...args, '--json']);
    expect(r.code, r.stderr).toBe(code);
    return JSON.parse(r.stdout) as Explanation;
  };
  const explain = (...args: string[]) => explainExit(0, ...args);

  beforeAll(async () => {
    t = new TestHome();
    // The developer's own keys must not leak into (or confuse) the import tests.
    for (const k of Object.keys(t.env)) if (/KEY|TOKEN|SECRET/.test(k)) delete t.env[k];
    expect((await run(['init', '--profile', 'me'])).code).toBe(0);
    expect(
      (await t.run(['login', 'github', '--connection', 'personal'], { input: `${GITHUB}\n` })).code,
    ).toBe(0);
  });

  afterAll(async () => {
    await t.cleanup();
  });

  it('explain: a URL too long for the daemon is a clear input error (exit 2), not an internal one', async () => {
    const r = await run(['explain', `https://api.openai.com/v1?q=${'x'.repeat(9000)}`]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('too long');
    expect(r.stderr).not.toContain('ERR_INTERNAL');
  });

  it('explain: a github URL gets provider github and a masked Authorization header', async () => {
    const e = await explain('https://api.github.com/user');
    expect(e).toMatchObject({
      decision: 'inject',
      provider: { name: 'github' },
      connection: { name: 'personal', isDefault: true },
    });
    expect(e.headers).toHaveLength(1);
    expect(e.headers[0]!.name).toBe('Authorization');
    expect(e.headers[0]!.value).toMatch(/^Bearer ghp_…\*{4} \(\d+ chars\)$/);
    const human = await run(['explain', 'https://api.github.com/user']);
    expect(human.stdout).toContain('sets header: Authorization: Bearer ghp_…****');
  });

  it('explain: unknown host, cleartext, missing connection and malformed URL say why nothing is injected', async () => {
    expect(await explain('https://unknown.example.org/x')).toMatchObject({ decision: 'tunnel', headers: [] });
    const clear = await explain('http://api.github.com/user');
    expect(clear.decision).toBe('cleartext');
    expect(clear.reason).toContain('never injects over cleartext');
    expect(clear.hint).toBe('use https://api.github.com/user');
    const missing = await explainExit(5, 'https://api.github.com/user', '--connection', 'nope');
    expect(missing).toMatchObject({
      decision: 'no-connection',
      hint: 'authsome login github --connection nope',
    });
    expect((await explainExit(2, 'https://user@api.github.com/')).decision).toBe('invalid');
    expect((await explainExit(2, 'ftp://api.github.com/')).decision).toBe('invalid');
    const human = await run(['explain', 'https://api.github.com/user', '--connection', 'nope']);
    expect(human.code).toBe(5);
    expect(human.stdout).toContain('refused: no such connection');
    const bad = await run(['explain', 'https://api.github.com/', '--connection', 'Bad Name']);
    expect(bad.code).toBe(2);
  });

  it('explain: destinations the proxy refuses (internal addresses, itself) are "denied" with its code, exit 5', async () => {
    for (const url of [
      'https://127.0.0.1/x',
      'http://169.254.169.254/latest',
      'https://localhost/',
      'https://10.0.0.1/',
    ]) {
      const e = await explainExit(5, url);
      expect(e.decision, url).toBe('denied');
      expect(e.reason, url).toContain('403 ERR_PROXY_DESTINATION_DENIED');
    }
    const port = (
      JSON.parse(readFileSync(join(t.home, 'server/daemon.json'), 'utf8')) as { proxyPort: number }
    ).proxyPort;
    expect((await explainExit(5, `http://127.0.0.1:${port}/`)).reason).toContain('ERR_PROXY_LOOP');
  });

  it('explain: a basic-auth template shows its structure, every field masked', async () => {
    expect((await t.run(['login', 'github-git', '--connection', 'git'], { input: `${GITHUB}\n` })).code).toBe(
      0,
    );
    const e = await explain('https://github.com/me/private.git/info/refs');
    expect(e).toMatchObject({ decision: 'inject', provider: { name: 'github-git' } });
    expect(e.headers[0]!.value).toMatch(/^Basic base64\('x-access-token:' \+ ghp_…\*{4} \(\d+ chars\)\)$/);
  });

  it('completion: prints the yargs script and answers completion queries', async () => {
    const script = await run(['completion']);
    expect(script.code).toBe(0);
    expect(script.stdout).toContain('--get-yargs-completions');
    const words = await run(['--get-yargs-completions', 'authsome', 'do']);
    expect(words.stdout.split('\n')).toEqual(expect.arrayContaining(['doctor', 'explain', 'import']));
  });

  it('import: without a terminal and without --yes nothing is imported', async () => {
    const env = join(t.dir, 'a.env');
    writeFileSync(env, `OPENAI_API_KEY=${OPENAI}\n`);
    const r = await run(['import', '--dotenv', env, '--no-env']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--yes');
    const list = await t.json<{ connections: Array<{ provider: string }> }>(['connection', 'list']);
    expect(list.connections.map((c) => c.provider).sort()).toEqual(['github', 'github-git']);
  });

  /** The CLI on a pseudo-terminal (`script`); `keys` are typed once `prompt` is on screen. */
  const onTerminal = async (args: string[], prompt: string, keys: string) => {
    const cmd = [process.execPath, CLI, ...args].map((a) => `'${a}'`).join(' ');
    const child = spawn('script', ['-qfec', cmd, '/dev/null'], { env: { ...process.env, ...t.env } });
    let out = '';
    let sent = false;
    child.stdin.on('error', () => undefined);
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (!sent && out.includes(prompt)) {
        sent = true;
        child.stdin.write(keys);
      }
    });
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    return { code, out };
  };

  it('import: Ctrl-C at the y/N question on a terminal cancels cleanly (exit 2), nothing imported', async () => {
    const env = join(t.dir, 'ctrl-c.env');
    writeFileSync(env, `OPENAI_API_KEY=${OPENAI}\n`);
    const { code, out } = await onTerminal(['import', '--dotenv', env, '--no-env'], '[y/N]', '\x03');
    expect(out).toContain('cancelled');
    expect(out).not.toContain('ERR_INTERNAL');
    expect(code).toBe(2);
    const list = await t.json<{ connections: Array<{ provider: string }> }>(['connection', 'list']);
    expect(list.connections.map((c) => c.provider)).not.toContain('openai');
  });

  it('login: Ctrl-D at an empty secret prompt cancels (exit 2) instead of waiting', async () => {
    const { code, out } = await onTerminal(['login', 'openai', '--connection', 'ctrl-d'], 'api key', '\x04');
    expect(out).toContain('cancelled');
    expect(code).toBe(2);
  });

  it('import --dotenv --yes: moves an OpenAI key into a connection, shows it masked, lists the leftover line', async () => {
    const env = join(t.dir, 'b.env');
    writeFileSync(
      env,
      `# project keys\nexport OPENAI_API_KEY="${OPENAI}"\nPLACEHOLDER_ONLY=authsome-managed\n`,
    );
    const r = await run(['import', '--dotenv', env, '--no-env', '--yes']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr + r.stdout).toContain('sk-p…****');
    expect(r.stdout).toContain('Imported openai → connection "default"');
    expect(r.stdout).toContain(`${env}: line 2 (OPENAI_API_KEY)`);
    expect(r.stdout).toContain(`sed -i.bak '2d' '${env}'`);
    const show = await t.json<{ provider: string; fields: string[]; isDefault: boolean }>([
      'connection',
      'show',
      'openai',
    ]);
    expect(show).toMatchObject({ provider: 'openai', fields: ['api_key'], isDefault: true });
    const e = await explain('https://api.openai.com/v1/models');
    expect(e).toMatchObject({ decision: 'inject', provider: { name: 'openai' } });
    const again = await run(['import', '--dotenv', env, '--no-env', '--yes', '--json']);
    const j = JSON.parse(again.stdout) as { imported: unknown[]; skipped: Array<{ reason: string }> };
    expect(j.imported).toEqual([]);
    expect(j.skipped[0]?.reason).toContain('exists already');
  });

  it('import from the environment by name and by key shape; placeholders are not keys', async () => {
    const r = await run(['import', '--yes', '--json', '--connection', 'shell'], {
      ANTHROPIC_API_KEY: ANTHROPIC,
      SOME_TOKEN_COPY: GITHUB,
      GITHUB_TOKEN: 'authsome-managed',
    });
    expect(r.code, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout) as {
      imported: Array<{ provider: string; connection: string; value: string; via: string }>;
      remaining: Array<{ where: string; fix: string }>;
    };
    expect(j.imported.map((i) => [i.provider, i.connection, i.via]).sort()).toEqual([
      ['anthropic', 'shell', 'env name ANTHROPIC_API_KEY'],
      ['github', 'shell', 'key shape ghp_…/github_pat_…'],
    ]);
    expect(j.remaining.some((x) => x.fix.startsWith('unset ') && x.fix.includes('ANTHROPIC_API_KEY'))).toBe(
      true,
    );
    expect(JSON.stringify(j)).not.toContain('authsome-managed');
  });

  it('never prints, logs or stores a secret in plaintext', () => {
    for (const secret of [GITHUB, OPENAI, ANTHROPIC]) {
      for (const o of outputs) expect(findCanary(o.stdout + o.stderr, secret)).toBeUndefined();
      expect(filesContaining(t.home, secret)).toEqual([]);
      expect(findCanary(readFileSync(join(t.home, 'audit.log')), secret)).toBeUndefined();
    }
  });
});
