import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chmodSync, existsSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { TestHome, type CliResult } from '../helpers/cli.js';
import { makeTestCa } from '../helpers/test-ca.js';
import { startUpstream, type Upstream } from '../helpers/upstream.js';
import { findCanary } from '../helpers/canary.js';

/** Issue 19 item 7: `authsome ca rotate` with an agent session running through it. */
const TOKEN = `ghp_CANARYrot${randomBytes(10).toString('hex')}`;
const PROBE = resolve(import.meta.dirname, '../helpers/clients/tls-probe.mjs');

const certs = (path: string) => readFileSync(path, 'utf8').match(/-----BEGIN CERTIFICATE-----/g)?.length ?? 0;
const mode = (path: string) => statSync(path).mode & 0o777;

/** Polls for a file the child writes (atomically, by rename); gives up after 30 s. */
async function fileText(path: string): Promise<string> {
  for (let i = 0; i < 600; i++) {
    if (existsSync(path)) return readFileSync(path, 'utf8').trim();
    await sleep(50);
  }
  throw new Error(`${path} never appeared`);
}

/**
 * The agent: one `authsome run` child (one session, minted before the rotation) that runs each command
 * the test hands it (files cmd1, cmd2…) in its own environment and writes the output to out1, out2…
 */
const AGENT = [
  'n=1',
  'while :; do',
  '  while [ ! -e "$D/cmd$n" ]; do sleep 0.05; done',
  '  c=$(cat "$D/cmd$n"); [ "$c" = exit ] && exit 0',
  '  sh -c "$c" > "$D/out$n.tmp" 2>&1; mv "$D/out$n.tmp" "$D/out$n"',
  '  n=$((n+1))',
  'done',
].join('\n');

describe('ca rotate: a new CA, trusted alongside the old one, then signing every leaf', () => {
  let up: Upstream;
  let t: TestHome;
  let caDir: string;
  const outputs: CliResult[] = [];
  const run = async (args: string[], opts: { input?: string; env?: NodeJS.ProcessEnv } = {}) => {
    const r = await t.run(args, opts);
    outputs.push(r);
    return r;
  };
  const rotateEvents = async () =>
    (
      await t.json<{ events: Array<{ profile: string; detail: Record<string, unknown> }> }>([
        'audit',
        '--event',
        'ca.rotate',
      ])
    ).events;
  const daemonPid = () =>
    (JSON.parse(readFileSync(join(t.home, 'server/daemon.json'), 'utf8')) as { pid: number }).pid;

  beforeAll(async () => {
    const ca = await makeTestCa('rotation upstream CA');
    up = await startUpstream({ cert: await ca.issue(['api.github.com']) });
    t = new TestHome();
    writeFileSync(join(t.dir, 'upstream-ca.pem'), ca.certPem);
    t.env['AUTHSOME_RESOLVE'] = `api.github.com:443=127.0.0.1:${up.httpsPort}`;
    t.env['AUTHSOME_UPSTREAM_CA'] = join(t.dir, 'upstream-ca.pem');
    caDir = join(t.home, 'server', 'ca');
    expect((await run(['init', '--profile', 'me'])).code).toBe(0);
    expect((await run(['login', 'github'], { input: `${TOKEN}\n` })).code).toBe(0);
  });

  afterAll(async () => {
    await t.cleanup();
    await up.close();
  });

  it('a running agent session keeps working across the rotation; after the overlap only the new CA signs and is trusted', async () => {
    const D = join(t.dir, 'agent');
    const { mkdirSync } = await import('node:fs');
    mkdirSync(D);
    const agent = t.run(['run', '--', 'sh', '-c', AGENT], { env: { D } });
    let n = 0;
    const cmd = async (line: string) => {
      n++;
      writeFileSync(join(D, `cmd${n}`), line);
      return fileText(join(D, `out${n}`));
    };
    const curl = (extra = '') =>
      cmd(
        `curl -sS --max-time 15 ${extra} -o /dev/null -w '%{http_code}' https://api.github.com/rotate/curl`,
      );
    const probe = async (p: string, k: number) => {
      writeFileSync(join(D, `${p}.go${k}`), '');
      return fileText(join(D, `${p}.${k}`));
    };
    const oldCa = readFileSync(join(caDir, 'ca.pem'), 'utf8');
    writeFileSync(join(D, 'old.pem'), oldCa);
    const pid = daemonPid();

    // before: curl (CURL_CA_BUNDLE, read per call) and a long-lived Node process (trust read at its start)
    expect(await cmd(`node ${PROBE} ${D}/A 3 > ${D}/A.log 2>&1 &`)).toBe('');
    expect(await probe('A', 1)).toBe('200');
    expect(await curl()).toBe('200');

    // start: a new CA beside the old one; the trust files hold both; the old CA still signs
    const started = await run(['ca', 'rotate', '--overlap', '1h', '--json']);
    expect(started.code, started.stderr).toBe(0);
    const status = JSON.parse(started.stdout) as {
      fingerprint: string;
      rotation: { next: string; switchAt: string };
    };
    expect(status.rotation.next).not.toBe(status.fingerprint);
    expect(certs(join(caDir, 'roots.pem'))).toBe(2);
    expect(readFileSync(join(caDir, 'bundle.pem'), 'utf8')).toContain(
      readFileSync(join(caDir, 'next.pem'), 'utf8').trim(),
    );
    expect(mode(join(caDir, 'next.key'))).toBe(0o600);
    expect(mode(join(caDir, 'ca.key'))).toBe(0o600);
    const pathOut = await run(['ca', 'path']);
    expect(pathOut.stdout.trim()).toBe(join(caDir, 'roots.pem'));
    expect((await rotateEvents()).map((e) => [e.profile, e.detail['phase']])).toEqual([['me', 'start']]);

    // overlap: everything still works, including the Node process that trusts the old CA alone
    expect(await curl()).toBe('200');
    expect(await curl(`--cacert ${D}/old.pem`)).toBe('200');
    expect(await probe('A', 2)).toBe('200');
    expect(await cmd(`node ${PROBE} ${D}/B 1 > ${D}/B.log 2>&1 &`)).toBe(''); // started during the overlap

    // finish: the new CA signs every leaf (no daemon restart); the old root and key are gone
    const finished = await run(['ca', 'rotate', '--finish', '--json']);
    expect(finished.code, finished.stderr).toBe(0);
    expect((JSON.parse(finished.stdout) as { fingerprint: string }).fingerprint).toBe(status.rotation.next);
    expect(daemonPid()).toBe(pid);
    expect(certs(join(caDir, 'roots.pem'))).toBe(1);
    expect(readFileSync(join(caDir, 'bundle.pem'), 'utf8')).not.toContain(oldCa.trim());
    for (const f of ['next.pem', 'next.key', 'rotation.json'])
      expect(existsSync(join(caDir, f)), f).toBe(false);
    expect(readFileSync(join(caDir, 'ca.pem'), 'utf8')).not.toBe(oldCa);
    expect(mode(join(caDir, 'ca.key'))).toBe(0o600);
    expect((await rotateEvents()).map((e) => [e.profile, e.detail['phase']])).toEqual([
      ['me', 'start'],
      ['me', 'finish'],
    ]);

    // after: the same session's curl still works (the bundle is read per call); the old CA no longer
    // verifies the leaves; the process started during the overlap works; the one started before it,
    // which holds the old CA alone in memory, does not (why the default overlap outlives every session)
    expect(await curl()).toBe('200');
    expect(await curl(`--cacert ${D}/old.pem`)).not.toBe('200');
    expect(await probe('B', 1)).toBe('200');
    expect(await probe('A', 3)).toMatch(/^tls-error /);

    writeFileSync(join(D, `cmd${n + 1}`), 'exit');
    expect((await agent).code).toBe(0);
    const injected = up.received.filter((r) => r.url.startsWith('/rotate/'));
    // 4 curl calls and 3 Node requests got through (the two refused TLS handshakes sent nothing), each injected
    expect(injected).toHaveLength(7);
    for (const r of injected)
      expect(
        r.rawHeaders.filter((_, i) => i % 2 === 1 && /^authorization$/i.test(r.rawHeaders[i - 1]!)),
      ).toEqual([`Bearer ${TOKEN}`]);
  }, 120_000);

  it('only the owner rotates; a rotation in progress refuses a second one; --finish without one says so', async () => {
    expect((await run(['profile', 'create', 'agent'])).code).toBe(0);
    const other = await run(['ca', 'rotate', '--profile', 'agent']);
    expect(other.code).toBe(5);
    expect(other.stderr).toContain('ERR_AUTH_NOT_OWNER');
    const none = await run(['ca', 'rotate', '--finish']);
    expect(none.code).toBe(2);
    expect(none.stderr).toContain('no CA rotation is in progress');
    expect((await run(['ca', 'rotate', '--overlap', '1h'])).code).toBe(0);
    const again = await run(['ca', 'rotate']);
    expect(again.code).toBe(2);
    expect(again.stderr).toContain('`authsome ca rotate --finish`');
    expect((await run(['ca', 'rotate', '--finish'])).code).toBe(0);
  });

  it('the daemon refuses to start while the new CA key is readable by others', async () => {
    expect((await run(['ca', 'rotate', '--overlap', '1h'])).code).toBe(0);
    expect((await run(['daemon', 'stop'])).code).toBe(0);
    chmodSync(join(caDir, 'next.key'), 0o644);
    const r = await run(['daemon', 'start']);
    expect(r.code).toBe(6);
    expect(r.stderr).toContain('ERR_HOME_PERMISSIONS');
    expect(r.stderr).toContain('next.key');
    chmodSync(join(caDir, 'next.key'), 0o600);
    expect((await run(['daemon', 'start'])).code).toBe(0);
  });

  it('a finish cut short between its two renames is completed when the daemon starts', async () => {
    // (continues the rotation of the previous test) the crash: ca.key already the new key, next.pem not moved
    expect((await run(['daemon', 'stop'])).code).toBe(0);
    const next = readFileSync(join(caDir, 'next.pem'), 'utf8');
    renameSync(join(caDir, 'next.key'), join(caDir, 'ca.key'));
    expect((await run(['daemon', 'start'])).code).toBe(0);
    expect(readFileSync(join(caDir, 'ca.pem'), 'utf8')).toBe(next);
    expect(existsSync(join(caDir, 'rotation.json'))).toBe(false);
    expect((await rotateEvents()).at(-1)).toMatchObject({
      profile: '-',
      detail: { phase: 'finish', completed_at_start: true },
    });
    expect(
      await run([
        'run',
        '--',
        'curl',
        '-sS',
        '-o',
        '/dev/null',
        '-w',
        '%{http_code}',
        'https://api.github.com/rotate/after-crash',
      ]).then((r) => r.stdout),
    ).toBe('200');
  });

  it('--overlap D: the daemon switches by itself when the overlap ends (and at start, when it ended while stopped)', async () => {
    const before = (await rotateEvents()).length;
    expect((await run(['ca', 'rotate', '--overlap', '2s'])).code).toBe(0);
    let events = await rotateEvents();
    for (let i = 0; i < 100 && events.length < before + 2; i++) {
      await sleep(200);
      events = await rotateEvents();
    }
    expect(events.slice(before).map((e) => [e.profile, e.detail['phase']])).toEqual([
      ['me', 'start'],
      ['-', 'finish'],
    ]);
    expect(certs(join(caDir, 'roots.pem'))).toBe(1);

    expect((await run(['ca', 'rotate', '--overlap', '2s'])).code).toBe(0);
    const { switchAt } = JSON.parse(readFileSync(join(caDir, 'rotation.json'), 'utf8')) as {
      switchAt: string;
    };
    const next = readFileSync(join(caDir, 'next.pem'), 'utf8');
    expect((await run(['daemon', 'stop'])).code).toBe(0);
    while (Date.now() <= Date.parse(switchAt)) await sleep(100);
    expect((await run(['daemon', 'start'])).code).toBe(0);
    for (let i = 0; i < 100 && existsSync(join(caDir, 'rotation.json')); i++) await sleep(100);
    expect(readFileSync(join(caDir, 'ca.pem'), 'utf8')).toBe(next);
    expect((await rotateEvents()).at(-1)).toMatchObject({ profile: '-', detail: { phase: 'finish' } });
  }, 60_000);

  it('no secret reaches any output', () => {
    for (const o of outputs) expect(findCanary(o.stdout + o.stderr, TOKEN)).toBeUndefined();
  });
});
