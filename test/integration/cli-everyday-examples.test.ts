import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { TestHome, type CliResult } from '../helpers/cli.js';
import { makeTestCa } from '../helpers/test-ca.js';
import { startUpstream, type Upstream } from '../helpers/upstream.js';
import { findCanary, filesContaining } from '../helpers/canary.js';

const EXAMPLES = resolve(import.meta.dirname, '../../examples');
const PERSONAL = `ghp_CANARYex${randomBytes(12).toString('hex')}`;
const WORK = `ghp_CANARYwk${randomBytes(12).toString('hex')}`;
const hasRequests = spawnSync('python3', ['-c', 'import requests']).status === 0;

function authorization(rawHeaders: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < rawHeaders.length; i += 2)
    if (rawHeaders[i]!.toLowerCase() === 'authorization') out.push(rawHeaders[i + 1]!);
  return out;
}

describe('examples/ run unchanged under `authsome run` against a pinned upstream', () => {
  let up: Upstream;
  let t: TestHome;
  const outputs: CliResult[] = [];

  const example = async (cmd: string[], env: NodeJS.ProcessEnv = {}) => {
    const before = up.received.length;
    const r = await t.run(['run', '--', ...cmd, 'https://api.github.com/user'], { env });
    outputs.push(r);
    return { ...r, received: up.received.slice(before) };
  };

  beforeAll(async () => {
    const ca = await makeTestCa('examples upstream CA');
    up = await startUpstream({ cert: await ca.issue(['api.github.com']) });
    t = new TestHome();
    const caFile = join(t.dir, 'upstream-ca.pem');
    writeFileSync(caFile, ca.certPem);
    t.env['AUTHSOME_RESOLVE'] = `api.github.com:443=127.0.0.1:${up.httpsPort}`;
    t.env['AUTHSOME_UPSTREAM_CA'] = caFile;
    delete t.env['AUTHSOME_CONNECTION'];
    expect((await t.run(['init', '--profile', 'me'])).code).toBe(0);
    expect(
      (await t.run(['login', 'github', '--connection', 'personal'], { input: `${PERSONAL}\n` })).code,
    ).toBe(0);
    expect((await t.run(['login', 'github', '--connection', 'work'], { input: `${WORK}\n` })).code).toBe(0);
  });

  afterAll(async () => {
    await t.cleanup();
    await up.close();
  });

  it.each([
    ['node-fetch.mjs', [process.execPath, join(EXAMPLES, 'node-fetch.mjs')]],
    ['node-undici.mjs', [process.execPath, join(EXAMPLES, 'node-undici.mjs')]],
    ['node-https-agent.mjs', [process.execPath, join(EXAMPLES, 'node-https-agent.mjs')]],
    ['python_urllib.py', ['python3', join(EXAMPLES, 'python_urllib.py')]],
    ['curl.sh', ['sh', join(EXAMPLES, 'curl.sh')]],
  ])('%s gets the default connection injected', async (_name, cmd) => {
    const r = await example(cmd);
    expect(r.code, r.stderr + r.stdout).toBe(0);
    expect(r.stdout).toContain('"path":"/user"');
    expect(r.received.map((x) => authorization(x.rawHeaders))).toEqual([[`Bearer ${PERSONAL}`]]);
  });

  it.each([
    ['node-fetch.mjs', [process.execPath, join(EXAMPLES, 'node-fetch.mjs')]],
    ['python_urllib.py', ['python3', join(EXAMPLES, 'python_urllib.py')]],
  ])('%s picks another connection with AUTHSOME_CONNECTION', async (_name, cmd) => {
    const r = await example(cmd, { AUTHSOME_CONNECTION: 'work' });
    expect(r.code, r.stderr).toBe(0);
    expect(r.received.map((x) => authorization(x.rawHeaders))).toEqual([[`Bearer ${WORK}`]]);
  });

  it.runIf(hasRequests)('python_requests.py (requests, and httpx where installed)', async () => {
    const r = await example(['python3', join(EXAMPLES, 'python_requests.py')]);
    expect(r.code, r.stderr + r.stdout).toBe(0);
    expect(r.stdout).toContain('requests 200');
    expect(r.received.length).toBeGreaterThanOrEqual(1);
    for (const x of r.received) expect(authorization(x.rawHeaders)).toEqual([`Bearer ${PERSONAL}`]);
  });

  it('an example outside `authsome run` says how to run it', async () => {
    const r = spawnSync(process.execPath, [join(EXAMPLES, 'node-fetch.mjs')], {
      env: { PATH: process.env['PATH'] },
    });
    expect(r.status).toBe(2);
    expect(r.stderr.toString()).toContain('authsome run');
  });

  it('no secret reaches any output or file', () => {
    for (const secret of [PERSONAL, WORK]) {
      for (const o of outputs) expect(findCanary(o.stdout + o.stderr, secret)).toBeUndefined();
      expect(filesContaining(t.home, secret)).toEqual([]);
    }
  });
});
