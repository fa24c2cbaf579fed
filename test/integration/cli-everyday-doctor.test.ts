import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chmodSync, copyFileSync, existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { TestHome, type CliResult } from '../helpers/cli.js';
import { makeTestCa } from '../helpers/test-ca.js';
import { findCanary } from '../helpers/canary.js';

interface Check {
  id: string;
  status: 'pass' | 'fail' | 'warn' | 'skip';
  detail: string;
  fix?: string;
  code?: string;
}

const SECRET = `ghp_CANARYdoc${randomBytes(12).toString('hex')}`;

describe('authsome doctor: green on a good home, precise on a broken one', () => {
  let t: TestHome;
  const outputs: CliResult[] = [];
  const doctor = async (...args: string[]) => {
    const r = await t.run(['doctor', '--json', ...args]);
    outputs.push(r);
    const report = JSON.parse(r.stdout) as { ok: boolean; checks: Check[] };
    const byId = (id: string) => report.checks.find((c) => c.id === id);
    return { ...r, report, byId, failed: report.checks.filter((c) => c.status === 'fail') };
  };

  beforeAll(async () => {
    t = new TestHome();
    expect((await t.run(['init', '--profile', 'me'])).code).toBe(0);
    expect(
      (await t.run(['login', 'github', '--connection', 'personal'], { input: `${SECRET}\n` })).code,
    ).toBe(0);
  });

  afterAll(async () => {
    await t.cleanup();
  });

  it('is green on a fresh home, including the tools and the scratch injection round trip', async () => {
    const r = await doctor();
    expect(r.code, JSON.stringify(r.failed)).toBe(0);
    expect(r.report.ok).toBe(true);
    for (const id of [
      'node',
      'modes',
      'ca',
      'daemon',
      'store',
      'clock',
      'audit',
      'proxy-407',
      'intercept',
      'scratch',
    ])
      expect(r.byId(id)?.status, id).toBe('pass');
    for (const tool of ['curl', 'node', 'python', 'git'])
      expect(['pass', 'skip']).toContain(r.byId(`tool:${tool}`)?.status);
    expect(r.byId('tool:node')?.status).toBe('pass');
  });

  it('prints ✓ lines for humans, and the probe session is revoked afterwards', async () => {
    const r = await t.run(['doctor', '--quick']);
    outputs.push(r);
    expect(r.code, r.stdout).toBe(0);
    expect(r.stdout).toMatch(/✓ daemon/);
    expect(r.stdout).not.toContain('✗');
    expect(r.stdout).not.toContain('\x1b['); // NO_COLOR
    const sessions = await t.json<{ sessions: Array<{ label?: string }> }>(['proxy', 'revoke']);
    expect(sessions.sessions.filter((s) => s.label === 'authsome doctor')).toEqual([]);
  });

  it('names a key file readable by others and the chmod that fixes it', async () => {
    const key = join(t.home, 'server', 'master.key');
    chmodSync(key, 0o644);
    try {
      const r = await doctor('--quick');
      expect(r.code).toBe(6);
      const c = r.failed.find((x) => x.detail.includes(key));
      expect(c?.fix).toBe(`chmod 600 ${key}`);
      expect(c?.code).toBe('ERR_HOME_PERMISSIONS');
    } finally {
      chmodSync(key, 0o600);
    }
  });

  it('catches a replaced ca.pem, and --repair-ca restores it from the running daemon', async () => {
    const caPem = join(t.home, 'server', 'ca', 'ca.pem');
    const original = readFileSync(caPem, 'utf8');
    copyFileSync(caPem, join(t.dir, 'ca.pem.orig'));
    writeFileSync(caPem, (await makeTestCa('an unrelated CA')).certPem);
    const r = await doctor('--quick');
    expect(r.code).toBe(8);
    expect(r.byId('ca')).toMatchObject({ status: 'fail', code: 'ERR_CA_UNAVAILABLE' });
    expect(r.byId('ca')?.fix).toContain('authsome doctor --repair-ca');
    expect(r.byId('intercept')?.status).toBe('fail');
    expect(r.byId('intercept')?.fix).toContain('authsome doctor --repair-ca');
    expect(r.byId('tool:node')).toMatchObject({ status: 'fail', code: 'ERR_CA_UNAVAILABLE' });
    const fixed = await doctor('--quick', '--repair-ca');
    expect(fixed.code, JSON.stringify(fixed.failed)).toBe(0);
    expect(fixed.byId('repair-ca')?.status).toBe('pass');
    expect(readFileSync(caPem, 'utf8').replace(/\s+/g, '')).toBe(original.replace(/\s+/g, ''));
  });

  it('reports a stopped daemon with `authsome daemon start` and does not start it', async () => {
    expect((await t.run(['daemon', 'stop'])).code).toBe(0);
    const r = await doctor('--quick');
    expect(r.code).toBe(10);
    expect(r.byId('daemon')).toMatchObject({
      status: 'fail',
      fix: 'authsome daemon start',
      code: 'ERR_DAEMON_UNREACHABLE',
    });
    expect(existsSync(join(t.home, 'server', 'daemon.json'))).toBe(false);
    expect((await t.run(['daemon', 'status'])).code).toBe(10);
  });

  it('surfaces a sealed vault (wrong master key) from the failed start', async () => {
    const key = join(t.home, 'server', 'master.key');
    const good = readFileSync(key);
    writeFileSync(key, `${randomBytes(32).toString('base64')}\n`, { mode: 0o600 });
    try {
      expect((await t.run(['daemon', 'start'])).code).toBe(8); // the daemon's own ERR_VAULT_SEALED
      const r = await doctor('--quick');
      expect(r.byId('store')).toMatchObject({ status: 'fail', code: 'ERR_VAULT_SEALED' });
      expect(r.byId('store')?.fix).toMatch(/master\.key/);
    } finally {
      writeFileSync(key, good, { mode: 0o600 });
    }
    expect((await t.run(['daemon', 'start'])).code).toBe(0);
    expect((await doctor('--quick')).code).toBe(0);
  });

  it('names an audit log moved away or edited, in a whole report, instead of failing on the first refusal', async () => {
    const log = join(t.home, 'audit.log');
    const aside = `${log}.aside`;
    renameSync(log, aside);
    try {
      const moved = await doctor('--quick');
      expect(moved.code).toBe(8);
      expect(moved.byId('audit')).toMatchObject({ status: 'fail', code: 'ERR_AUDIT_UNAVAILABLE' });
      expect(moved.byId('daemon')?.status).toBe('pass'); // the report is whole, not one error
    } finally {
      renameSync(aside, log);
    }
    const original = readFileSync(log, 'utf8');
    writeFileSync(log, original.replace('"event":"daemon.start"', '"event":"daemon.stop"'));
    try {
      const edited = await doctor('--quick');
      expect(edited.byId('audit')).toMatchObject({ status: 'fail', code: 'ERR_AUDIT_BROKEN' });
      expect(edited.code).toBe(9);
    } finally {
      writeFileSync(log, original);
    }
    expect((await doctor('--quick')).byId('audit')?.status).toBe('pass');
  });

  it('never prints the stored secret', () => {
    for (const o of outputs) expect(findCanary(o.stdout + o.stderr, SECRET)).toBeUndefined();
  });
});
