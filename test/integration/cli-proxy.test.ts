import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { TestHome, CLI, type CliResult } from '../helpers/cli.js';
import { makeTestCa } from '../helpers/test-ca.js';
import { startUpstream, type Upstream } from '../helpers/upstream.js';
import { findCanary, filesContaining } from '../helpers/canary.js';

const PERSONAL = `ghp_CANARYp${randomBytes(10).toString('hex')}`;
const WORK = `ghp_CANARYw${randomBytes(10).toString('hex')}`;

function header(rawHeaders: string[], name: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < rawHeaders.length; i += 2)
    if (rawHeaders[i]!.toLowerCase() === name) out.push(rawHeaders[i + 1]!);
  return out;
}

describe('the proxy end to end: real daemon, real curl, real node', () => {
  let up: Upstream;
  let t: TestHome;
  const outputs: CliResult[] = [];
  const sh = async (script: string, profile?: string) => {
    const r = await t.run(['run', ...(profile ? ['--profile', profile] : []), '--', 'sh', '-c', script]);
    outputs.push(r);
    return r;
  };
  const evalSh = async (script: string, envArgs: string[] = []) => {
    const { spawn } = await import('node:child_process');
    const authsome = `${process.execPath} ${CLI}`;
    return new Promise<CliResult>((resolve) => {
      const c = spawn('sh', ['-c', `eval "$(${authsome} proxy env ${envArgs.join(' ')})" && ${script}`], {
        env: t.env,
      });
      let stdout = '';
      let stderr = '';
      c.stdout.on('data', (d: Buffer) => (stdout += d));
      c.stderr.on('data', (d: Buffer) => (stderr += d));
      c.on('close', (code) => {
        const r = { code: code ?? -1, stdout, stderr };
        outputs.push(r);
        resolve(r);
      });
    });
  };

  beforeAll(async () => {
    const ca = await makeTestCa('upstream test CA');
    const cert = await ca.issue(['api.github.com', 'plain.example.test']);
    up = await startUpstream({ cert });
    const dir = (t = new TestHome()).dir;
    const caFile = join(dir, 'upstream-ca.pem');
    writeFileSync(caFile, ca.certPem);
    t.env['AUTHSOME_RESOLVE'] =
      `api.github.com:443=127.0.0.1:${up.httpsPort},plain.example.test:443=127.0.0.1:${up.httpsPort}`;
    t.env['AUTHSOME_UPSTREAM_CA'] = caFile;
    expect((await t.run(['init', '--profile', 'me'])).code).toBe(0);
    expect(
      (await t.run(['login', 'github', '--connection', 'personal'], { input: PERSONAL + '\n' })).code,
    ).toBe(0);
    expect((await t.run(['login', 'github', '--connection', 'work'], { input: WORK + '\n' })).code).toBe(0);
    expect((await t.run(['profile', 'create', 'other'])).code).toBe(0);
  });

  afterAll(async () => {
    await t.cleanup();
    await up.close();
  });

  it('curl after eval "$(authsome proxy env)": default connection, then the work one by header', async () => {
    const before = up.received.length;
    const a = await evalSh('curl -sS https://api.github.com/user');
    expect(a.code, a.stderr).toBe(0);
    expect(JSON.parse(a.stdout)).toMatchObject({ ok: true, path: '/user' });
    const b = await evalSh(`curl -sS -H 'X-Authsome-Connection: work' https://api.github.com/user`);
    expect(b.code, b.stderr).toBe(0);
    const [ra, rb] = up.received.slice(before);
    expect(header(ra!.rawHeaders, 'authorization')).toEqual([`Bearer ${PERSONAL}`]);
    expect(header(rb!.rawHeaders, 'authorization')).toEqual([`Bearer ${WORK}`]);
    expect(header(rb!.rawHeaders, 'x-authsome-connection')).toEqual([]);
  });

  it('writes the proxy.inject audit line with profile, provider, connection, and no query', async () => {
    const r = await sh(
      `curl -sS -H 'X-Authsome-Connection: work' 'https://api.github.com/repos?q=secretquery'`,
    );
    expect(r.code, r.stderr).toBe(0);
    const lines = readFileSync(join(t.home, 'audit.log'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    const inject = lines.filter((l) => l.event === 'proxy.inject').at(-1);
    expect(inject).toMatchObject({
      profile: 'me',
      provider: 'github',
      connection: 'work',
      method: 'GET',
      host: 'api.github.com',
      path: '/repos',
    });
    expect(JSON.stringify(lines)).not.toContain('secretquery');
  });

  it('works for node fetch and curl under `authsome run` with no extra flags', async () => {
    const before = up.received.length;
    const node = await t.run([
      'run',
      '--',
      process.execPath,
      '-e',
      "fetch('https://api.github.com/user').then(async r => { console.log(r.status, await r.text()) })",
    ]);
    outputs.push(node);
    expect(node.code, node.stderr).toBe(0);
    expect(node.stdout).toContain('200');
    const curl = await sh('curl -sS https://api.github.com/user');
    expect(curl.code, curl.stderr).toBe(0);
    expect(up.received.slice(before).map((r) => header(r.rawHeaders, 'authorization')[0])).toEqual([
      `Bearer ${PERSONAL}`,
      `Bearer ${PERSONAL}`,
    ]);
  });

  it('sets placeholders, never secrets, in the child environment', async () => {
    const r = await sh('echo "$GITHUB_TOKEN|$HTTPS_PROXY"');
    expect(r.stdout.startsWith('authsome-managed|http://me:')).toBe(true);
  });

  it('with --allow narrowing to another provider, the shell’s own key of a held provider is removed, not passed on', async () => {
    expect((await t.run(['login', 'openai'], { input: 'sk-openai-for-allow-test\n' })).code).toBe(0);
    const r = await t.run(
      ['run', '--allow', 'openai', '--', 'sh', '-c', 'echo "${GITHUB_TOKEN-unset}|$OPENAI_API_KEY"'],
      { env: { GITHUB_TOKEN: 'ghp_REAL_from_the_shell' } },
    );
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.trim()).toBe('unset|authsome-managed');
  });

  it('--allow a provider the profile has no connection of is refused, and no token is minted', async () => {
    const r = await t.run(['run', '--allow', 'anthropic', '--', 'true']);
    expect(r.code).toBe(3);
    expect(r.stderr).toContain('has no anthropic connection to allow');
  });

  it('a second profile cannot reach the first profile’s connections', async () => {
    const before = up.received.length;
    const r = await sh(
      `curl -s -o /dev/null -w '%{http_code}' -H 'X-Authsome-Connection: work' https://api.github.com/user`,
      'other',
    );
    expect(r.stdout).toBe('403');
    const missing = await sh(
      `curl -s -o /dev/null -w '%{http_code}' -H 'X-Authsome-Connection: nope' https://api.github.com/user`,
      'other',
    );
    expect(missing.stdout).toBe('403');
    expect(up.received.slice(before).filter((x) => header(x.rawHeaders, 'authorization').length > 0)).toEqual(
      [],
    );
  });

  it('an --allow limited token cannot use anything else', async () => {
    const r = await t.run([
      'run',
      '--allow',
      'github:personal',
      '--',
      'sh',
      '-c',
      `curl -s -o /dev/null -w '%{http_code}' -H 'X-Authsome-Connection: work' https://api.github.com/user`,
    ]);
    outputs.push(r);
    expect(r.stdout).toBe('403');
  });

  it('--allow naming a connection that does not exist mints nothing and says which exist', async () => {
    const before = (await t.json<{ sessions: unknown[] }>(['proxy', 'revoke'])).sessions.length;
    const r = await t.run(['proxy', 'env', '--allow', 'github:persnal']);
    outputs.push(r);
    expect(r.code).toBe(3);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain('no github connection "persnal"');
    expect(r.stderr).toContain('did you mean "personal"?');
    expect(r.stderr).toContain('personal, work');
    expect((await t.json<{ sessions: unknown[] }>(['proxy', 'revoke'])).sessions).toHaveLength(before);
  });

  it('tunnels hosts no provider covers without interception', async () => {
    const caFile = join(t.dir, 'upstream-ca.pem');
    // Only the upstream's own CA is trusted by curl here: success proves the TLS was not intercepted.
    const r = await sh(`curl -sS --cacert ${caFile} https://plain.example.test/anything`);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ ok: true, path: '/anything' });
    expect(header(up.received.at(-1)!.rawHeaders, 'authorization')).toEqual([]);
  });

  it('answers 407 without a session token', async () => {
    const info = JSON.parse(readFileSync(join(t.home, 'server/daemon.json'), 'utf8'));
    const { spawnSync } = await import('node:child_process');
    const r = spawnSync('curl', [
      '-s',
      '-o',
      '/dev/null',
      '-w',
      '%{http_connect}',
      '--proxy',
      `http://127.0.0.1:${info.proxyPort}`,
      'https://api.github.com/user',
    ]);
    expect(r.stdout.toString()).toBe('407');
  });

  it('revokes the run token when the child exits', async () => {
    const r = await sh('echo $AUTHSOME_SESSION_ID');
    const id = r.stdout.trim();
    const list = await t.json<{ sessions: Array<{ id: string }> }>(['proxy', 'revoke']);
    expect(list.sessions.map((s) => s.id)).not.toContain(id);
  });

  it('never lets either secret reach the caller, the logs or the files', async () => {
    for (const secret of [PERSONAL, WORK]) {
      for (const o of outputs) expect(findCanary(o.stdout + o.stderr, secret)).toBeUndefined();
      expect(filesContaining(t.home, secret)).toEqual([]);
    }
  });
});
