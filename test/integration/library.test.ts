import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { TestHome } from '../helpers/cli.js';
import { makeTestCa } from '../helpers/test-ca.js';
import { startUpstream, type Upstream } from '../helpers/upstream.js';
import { findCanary } from '../helpers/canary.js';

/** Issue 19 item 6: the library API, as a program gets it: the built package entry point. */
const ROOT = resolve(import.meta.dirname, '../..');
const ENTRY = join(ROOT, 'dist/src/index.js');
type Lib = typeof import('../../src/index.js');

const PERSONAL = `ghp_CANARYlib${randomBytes(10).toString('hex')}`;
const WORK = `ghp_CANARYlibw${randomBytes(10).toString('hex')}`;
const OPENAI = `sk-CANARYlib${randomBytes(10).toString('hex')}`;

function authorization(rawHeaders: string[]): string[] {
  return rawHeaders.filter((_, i) => i % 2 === 1 && rawHeaders[i - 1]!.toLowerCase() === 'authorization');
}

/** A child started with the session's environment: Node fetch through the proxy, status and body. */
function fetchIn(env: NodeJS.ProcessEnv, url: string): Promise<{ code: number; out: string }> {
  return new Promise((done) => {
    const c = spawn(
      process.execPath,
      ['-e', 'fetch(process.argv[1]).then(async (r) => console.log(r.status, await r.text()))', url],
      { env },
    );
    let out = '';
    c.stdout.on('data', (d: Buffer) => (out += d));
    c.stderr.on('data', (d: Buffer) => (out += d));
    c.on('close', (code) => done({ code: code ?? -1, out }));
  });
}

describe('the library API (dist/src/index.js) against a real daemon', () => {
  let up: Upstream;
  let t: TestHome;
  let lib: Lib;
  const seen: string[] = [];

  beforeAll(async () => {
    const ca = await makeTestCa('library upstream CA');
    up = await startUpstream({ cert: await ca.issue(['api.github.com', 'api.openai.com']) });
    t = new TestHome();
    writeFileSync(join(t.dir, 'upstream-ca.pem'), ca.certPem);
    t.env['AUTHSOME_RESOLVE'] =
      `api.github.com:443=127.0.0.1:${up.httpsPort},api.openai.com:443=127.0.0.1:${up.httpsPort}`;
    t.env['AUTHSOME_UPSTREAM_CA'] = join(t.dir, 'upstream-ca.pem');
    expect((await t.run(['init', '--profile', 'me'])).code).toBe(0);
    for (const [c, v] of [
      ['personal', PERSONAL],
      ['work', WORK],
    ] as const)
      expect((await t.run(['login', 'github', '--connection', c], { input: `${v}\n` })).code).toBe(0);
    expect((await t.run(['login', 'openai'], { input: `${OPENAI}\n` })).code).toBe(0);
    lib = (await import(ENTRY)) as Lib;
  });

  afterAll(async () => {
    await t.cleanup();
    await up.close();
  });

  it('package.json main/types/exports point at files the build made, and npm pack ships them', () => {
    const pkg = JSON.parse(
      spawnSync('npm', ['pkg', 'get', 'main', 'types', 'exports'], { cwd: ROOT }).stdout.toString(),
    ) as {
      main: string;
      types: string;
      exports: { '.': { types: string; import: string } };
    };
    expect(pkg.main).toBe('dist/src/index.js');
    expect(pkg.exports['.'].import).toBe('./dist/src/index.js');
    const pack = JSON.parse(
      spawnSync('npm', ['pack', '--dry-run', '--json'], { cwd: ROOT }).stdout.toString(),
    ) as Array<{
      files: Array<{ path: string }>;
    }>;
    const files = new Set(pack[0]!.files.map((f) => f.path));
    for (const f of [
      'dist/src/index.js',
      'dist/src/index.d.ts',
      'dist/src/api.js',
      'dist/src/preload/fetch-proxy.js',
      'config/default.json',
      'config/providers/github.json',
      'examples/library.mjs',
    ])
      expect(files.has(f), f).toBe(true);
  }, 60_000);

  it('connect: the home’s active profile; connections() lists metadata, never a secret', async () => {
    const a = await lib.Authsome.connect({ home: t.home });
    try {
      expect(a.profile).toBe('me');
      const conns = await a.connections();
      seen.push(JSON.stringify(conns));
      expect(conns.map((c) => `${c.provider}/${c.connection}`).sort()).toEqual([
        'github/personal',
        'github/work',
        'openai/default',
      ]);
      expect((await a.connections({ provider: 'openai' })).map((c) => c.connection)).toEqual(['default']);
    } finally {
      await a.close();
    }
  });

  it('sessionEnv: a child started with it gets the credential injected; revoke() cuts it off', async () => {
    const a = await lib.Authsome.connect({ home: t.home });
    try {
      const s = await a.sessionEnv({
        allow: [{ provider: 'github', connection: 'personal' }],
        ttl: '5m',
        label: 'library test',
      });
      seen.push(JSON.stringify(s));
      expect(s.env['HTTPS_PROXY']).toMatch(/^http:\/\/me:[^@]+@127\.0\.0\.1:\d+$/);
      expect(s.env['SSL_CERT_FILE']).toBe(join(t.home, 'server/ca/bundle.pem'));
      expect(s.env['GITHUB_TOKEN']).toBe(lib.PLACEHOLDER);
      expect(s.unset).toContain('OPENAI_API_KEY');
      const env = s.childEnv({ ...process.env, OPENAI_API_KEY: 'sk-from-the-parent-shell' });
      expect(env['OPENAI_API_KEY']).toBeUndefined();
      const before = up.received.length;
      const ok = await fetchIn(env, 'https://api.github.com/user');
      seen.push(ok.out);
      expect(ok.out).toMatch(/^200 /);
      expect(up.received.slice(before).map((r) => authorization(r.rawHeaders))).toEqual([
        [`Bearer ${PERSONAL}`],
      ]);
      await s.revoke();
      await s.revoke(); // idempotent
      const after = up.received.length;
      const cut = await fetchIn(env, 'https://api.github.com/user');
      seen.push(cut.out);
      expect(up.received.length).toBe(after);
      expect(cut.out).not.toMatch(/^200 /);
    } finally {
      await a.close();
    }
  });

  it('close() revokes the sessions still open', async () => {
    const a = await lib.Authsome.connect({ home: t.home });
    const s = await a.sessionEnv({ ttl: '5m' });
    await a.close();
    const listed = await t.json<{ sessions: Array<{ id: string }> }>(['proxy', 'revoke']);
    expect(listed.sessions.map((x) => x.id)).not.toContain(s.id);
  });

  it('audit(): the connected profile’s events, with filters', async () => {
    const a = await lib.Authsome.connect({ home: t.home });
    try {
      const inj = await a.audit({ event: 'proxy.inject', since: '10m' });
      seen.push(JSON.stringify(inj));
      expect(inj.length).toBeGreaterThanOrEqual(1);
      expect(inj.at(-1)).toMatchObject({
        profile: 'me',
        provider: 'github',
        connection: 'personal',
        path: '/user',
      });
      expect(await a.audit({ limit: 2 })).toHaveLength(2);
      expect(await a.audit({ event: 'proxy.inject', since: new Date(Date.now() + 60_000) })).toEqual([]);
      await expect(a.audit({ since: 'yesterday-ish' })).rejects.toMatchObject({ code: 'ERR_INPUT_INVALID' });
    } finally {
      await a.close();
    }
  });

  it('explain(): the decision and masked headers, as `authsome explain`', async () => {
    const a = await lib.Authsome.connect({ home: t.home });
    try {
      const e = await a.explain('https://api.github.com/user', { connection: 'personal', method: 'GET' });
      seen.push(JSON.stringify(e));
      expect(e).toMatchObject({
        decision: 'inject',
        provider: { name: 'github' },
        connection: { name: 'personal' },
      });
      expect(e.headers.map((h) => h.name)).toEqual(['Authorization']);
      const none = await a.explain('https://example.com/');
      expect(none.decision).toBe('tunnel');
    } finally {
      await a.close();
    }
  });

  it('failures are AppErrors with a code and a next step, never a printed message or an exit', async () => {
    await expect(lib.Authsome.connect({ home: join(t.dir, 'nowhere') })).rejects.toMatchObject({
      code: 'ERR_HOME_NOT_INITIALISED',
      hint: expect.stringContaining('authsome init'),
    });
    await expect(lib.Authsome.connect({ home: t.home, profile: 'nobody' })).rejects.toBeInstanceOf(
      lib.AppError,
    );
    const a = await lib.Authsome.connect({ home: t.home });
    try {
      await expect(a.sessionEnv({ allow: 'github:nope' })).rejects.toMatchObject({
        code: 'ERR_CONNECTION_NOT_FOUND',
      });
    } finally {
      await a.close();
    }
  });

  it('examples/library.mjs runs: its child gets the credential, and it reports the audit event', async () => {
    const before = up.received.length;
    // Not spawnSync: the upstream runs in this process and must keep answering.
    const r = await new Promise<{ code: number | null; out: string }>((done) => {
      const c = spawn(
        process.execPath,
        [join(ROOT, 'examples/library.mjs'), 'https://api.openai.com/v1/models'],
        {
          env: { ...t.env, AUTHSOME_ALLOW: 'openai' },
        },
      );
      let out = '';
      c.stdout.on('data', (d: Buffer) => (out += d));
      c.stderr.on('data', (d: Buffer) => (out += d));
      c.on('close', (code) => done({ code, out }));
    });
    const out = r.out;
    seen.push(out);
    expect(r.code, out).toBe(0);
    expect(out).toContain('explain: inject');
    expect(out).toMatch(/child: 200 /);
    expect(out).toContain('audit: proxy.inject openai/default GET api.openai.com/v1/models');
    expect(up.received.slice(before).map((x) => authorization(x.rawHeaders))).toEqual([[`Bearer ${OPENAI}`]]);
  });

  it('no secret reaches anything the library returned or printed', () => {
    for (const s of [PERSONAL, WORK, OPENAI]) for (const o of seen) expect(findCanary(o, s)).toBeUndefined();
  });
});
