import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect } from 'node:net';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { TestHome, type CliResult } from '../helpers/cli.js';
import { makeTestCa } from '../helpers/test-ca.js';
import { startUpstream, type Upstream } from '../helpers/upstream.js';
import { findCanary } from '../helpers/canary.js';
import { DaemonClient } from '../../src/daemon/client.js';
import { readDaemonInfo } from '../../src/daemon/daemon-file.js';
import { readIdentityKey } from '../../src/identity/keys.js';

/** Issue 19 item 8: `authsome doctor` leaves no noise in the user's audit log. */
const TOKEN = `ghp_CANARYdoca${randomBytes(10).toString('hex')}`;

interface Rec {
  event: string;
  profile: string;
  path?: string;
  reason?: string;
  detail?: Record<string, unknown>;
}

/** A raw CONNECT to the proxy; the status line's code. */
function rawConnect(port: number, headers: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port }, () =>
      s.write(`CONNECT api.github.com:443 HTTP/1.1\r\nHost: api.github.com:443\r\n${headers}\r\n`),
    );
    let buf = '';
    s.on('data', (d: Buffer) => {
      buf += d.toString('latin1');
      const m = /^HTTP\/1\.1 (\d{3})/.exec(buf);
      if (m) {
        s.destroy();
        resolve(Number(m[1]));
      }
    });
    s.on('error', reject);
  });
}

describe('doctor’s probes are marked as such, not proxy.deny in the user’s audit log', () => {
  let up: Upstream;
  let t: TestHome;
  const outputs: CliResult[] = [];
  const run = async (args: string[], opts: { input?: string } = {}) => {
    const r = await t.run(args, opts);
    outputs.push(r);
    return r;
  };
  const audit = async (...args: string[]) =>
    (await t.json<{ events: Rec[] }>(['audit', '--limit', '1000', ...args])).events;
  /** A PoP-signed control-API client for profile "me", as the CLI has. */
  const client = async () =>
    new DaemonClient(
      (await readDaemonInfo(join(t.home, 'server/daemon.json')))!,
      'me',
      await readIdentityKey(join(t.home, 'client/identities/me.key')),
    );
  const basic = (token: string) => `Basic ${Buffer.from(`me:${token}`).toString('base64')}`;

  beforeAll(async () => {
    const ca = await makeTestCa('doctor audit upstream CA');
    up = await startUpstream({ cert: await ca.issue(['api.github.com']) });
    t = new TestHome();
    writeFileSync(join(t.dir, 'upstream-ca.pem'), ca.certPem);
    t.env['AUTHSOME_RESOLVE'] = `api.github.com:443=127.0.0.1:${up.httpsPort}`;
    t.env['AUTHSOME_UPSTREAM_CA'] = join(t.dir, 'upstream-ca.pem');
    expect((await run(['init', '--profile', 'me'])).code).toBe(0);
    expect((await run(['login', 'github'], { input: `${TOKEN}\n` })).code).toBe(0);
  });

  afterAll(async () => {
    await t.cleanup();
    await up.close();
  });

  it('after `authsome doctor`, the default `authsome audit` shows nothing of it; --probes shows its probes', async () => {
    const before = (await audit('--probes')).length;
    const d = await run(['doctor', '--json']);
    expect(d.code, d.stdout).toBe(0);
    const all = (await audit('--probes')).slice(before);
    const probes = all.filter((r) => r.event === 'doctor.probe');
    // the 407 check, the interception check and one request per tool that is installed (git may make two)
    expect(probes.length).toBeGreaterThanOrEqual(3);
    expect(probes.every((r) => r.profile === 'me')).toBe(true);
    expect(probes.map((r) => r.reason)).toContain('ERR_PROXY_AUTH_REQUIRED');
    expect(all.filter((r) => r.event === 'proxy.deny')).toEqual([]);
    expect(all.filter((r) => r.event.startsWith('session.')).every((r) => r.detail?.['probe'] === true)).toBe(
      true,
    );

    const shown = (await audit()).slice(-10);
    expect(shown.filter((r) => r.event === 'proxy.deny' || r.event === 'doctor.probe')).toEqual([]);
    expect(shown.some((r) => r.detail?.['probe'] === true)).toBe(false);
    const human = await run(['audit', '--limit', '20']);
    expect(human.stdout).not.toContain('authsome-doctor');
    expect((await audit('--event', 'doctor.probe')).length).toBeGreaterThanOrEqual(probes.length);
  }, 90_000);

  it('a probe session never gets a credential: the proxy answers it itself, nothing goes upstream', async () => {
    const c = await client();
    const minted = await c.call<{ id: string; token: string }>('POST', '/v1/sessions', {
      probe: true,
      ttl: '1m',
      label: 'test probe',
    });
    const before = up.received.length;
    // curl with run's CA bundle, but through the probe session instead of run's own
    const r = await run([
      'run',
      '--',
      'curl',
      '-sS',
      '-o',
      '/dev/null',
      '-w',
      '%{http_code}',
      '--proxy',
      `http://me:${minted.token}@127.0.0.1:${c.info.proxyPort}`,
      'https://api.github.com/probe-inject',
    ]);
    expect(r.stdout).toBe('403');
    expect(up.received.length).toBe(before);
    const last = (await audit('--event', 'doctor.probe')).at(-1)!;
    expect(last).toMatchObject({
      profile: 'me',
      path: '/probe-inject',
      reason: 'ERR_PROXY_CONNECTION_DENIED',
    });
    expect(await audit('--event', 'proxy.inject')).toEqual([]);
    await c.call('DELETE', `/v1/sessions/${minted.id}`);
  });

  it('X-Authsome-Probe changes the record only for a live probe session, and never the answer', async () => {
    const c = await client();
    const port = c.info.proxyPort;
    const probe = await c.call<{ id: string; token: string }>('POST', '/v1/sessions', {
      probe: true,
      ttl: '1m',
    });
    const plain = await c.call<{ id: string; token: string }>('POST', '/v1/sessions', { ttl: '1m' });
    const denies = async () => (await audit('--event', 'proxy.deny')).length;
    const probes = async () => (await audit('--event', 'doctor.probe')).length;
    const [d0, p0] = [await denies(), await probes()];
    expect(await rawConnect(port, `X-Authsome-Probe: ${basic(probe.token)}\r\n`)).toBe(407);
    expect(await rawConnect(port, `X-Authsome-Probe: ${basic(plain.token)}\r\n`)).toBe(407);
    expect(await rawConnect(port, `X-Authsome-Probe: ${basic('not-a-token')}\r\n`)).toBe(407);
    for (let i = 0; i < 50 && (await denies()) < d0 + 2; i++) await new Promise((r) => setTimeout(r, 100));
    expect(await probes()).toBe(p0 + 1);
    expect(await denies()).toBe(d0 + 2);
    for (const s of [probe, plain]) await c.call('DELETE', `/v1/sessions/${s.id}`);
  });

  it('no secret reaches any output', () => {
    for (const o of outputs) expect(findCanary(o.stdout + o.stderr, TOKEN)).toBeUndefined();
  });
});
