import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { homePaths, type HomePaths } from '../../../src/config/paths.js';
import {
  checkCaFiles,
  checkModes,
  checkNode,
  lastStartError,
  satisfies,
} from '../../../src/cli/doctor/local.js';
import { exitCodeOf, fail, pass, skip } from '../../../src/cli/doctor/types.js';
import { pkcs8Pem, subtle } from '../../../src/ca/x509.js';
import { makeTestCa } from '../../helpers/test-ca.js';

describe('satisfies / checkNode', () => {
  it.each([
    ['20.19.0', true],
    ['20.18.9', false],
    ['22.1.0', true],
    ['24.99.1', true],
    ['25.0.0', false],
    ['v20.20.2', true],
  ])('%s in >=20.19.0 <25: %s', (v, ok) => {
    expect(satisfies(v, '>=20.19.0 <25')).toBe(ok);
    expect(checkNode(v.replace(/^v/, '')).status).toBe(ok ? 'pass' : 'fail');
  });
});

describe('exitCodeOf', () => {
  it('is 0 without failures, else the first failure’s documented exit code', () => {
    expect(exitCodeOf([pass('a', 'a', ''), skip('b', 'b', '')])).toBe(0);
    expect(
      exitCodeOf([
        pass('a', 'a', ''),
        fail('b', 'b', '', 'x', 'ERR_HOME_PERMISSIONS'),
        fail('c', 'c', '', 'y', 'ERR_DAEMON_UNREACHABLE'),
      ]),
    ).toBe(6);
  });
});

describe('home checks', () => {
  let dir: string;
  let p: HomePaths;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'authsome-doctor-unit-'));
    p = homePaths(join(dir, 'home'));
    for (const d of [p.home, p.serverDir, p.caDir, p.identitiesDir])
      mkdirSync(d, { recursive: true, mode: 0o700 });
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('checkModes passes private files and names each loose one with its chmod', () => {
    writeFileSync(p.masterKey, 'k', { mode: 0o600 });
    writeFileSync(p.identityKey('me'), 'k', { mode: 0o600 });
    expect(checkModes(p).map((c) => c.status)).toEqual(['pass']);
    chmodSync(p.identityKey('me'), 0o640);
    chmodSync(p.home, 0o755);
    const bad = checkModes(p);
    expect(bad.map((c) => c.fix)).toEqual([`chmod 700 ${p.home}`, `chmod 600 ${p.identityKey('me')}`]);
    expect(bad.every((c) => c.code === 'ERR_HOME_PERMISSIONS')).toBe(true);
  });

  it('checkCaFiles: missing, matching, replaced, near expiry', async () => {
    expect(checkCaFiles(p).check).toMatchObject({
      status: 'fail',
      fix: 'run `authsome init` (it creates the CA)',
    });
    const ca = await makeTestCa('unit CA');
    writeFileSync(p.caCert, ca.certPem);
    writeFileSync(p.caKey, pkcs8Pem(await subtle.exportKey('pkcs8', ca.key)), { mode: 0o600 });
    // makeTestCa is valid for 30 days, so judge it as of two days ago (32 days left).
    const good = checkCaFiles(p, Date.now() - 2 * 86_400_000);
    expect(good.check.status).toBe('pass');
    expect(good.matchesKey).toBe(true);
    expect(checkCaFiles(p, Date.now() + 2 * 86_400_000).check.detail).toContain('in less than 30 days');
    expect(checkCaFiles(p, Date.now() + 40 * 86_400_000).check.detail).toContain('expired');
    writeFileSync(p.caCert, (await makeTestCa('other')).certPem);
    const replaced = checkCaFiles(p);
    expect(replaced.matchesKey).toBe(false);
    expect(replaced.check).toMatchObject({ status: 'fail', code: 'ERR_CA_UNAVAILABLE' });
    expect(replaced.check.detail).toContain('does not belong to the CA key');
  });

  it('lastStartError finds the ERR_ code and next: line of a failed start, not of an older one', () => {
    writeFileSync(
      p.daemonLog,
      [
        'authsome daemon 0.1.0 pid 1: control …',
        'authsome: the master key does not match this store [ERR_VAULT_SEALED]',
        '  next: restore server/master.key',
        '',
      ].join('\n'),
    );
    expect(lastStartError(p.daemonLog)).toEqual({
      code: 'ERR_VAULT_SEALED',
      message: 'the master key does not match this store',
      hint: 'restore server/master.key',
    });
    writeFileSync(
      p.daemonLog,
      [
        'authsome: old failure [ERR_VAULT_SEALED]',
        'authsome daemon 0.1.0 pid 2: control …',
        'authsome daemon: SIGTERM, draining',
      ].join('\n'),
    );
    expect(lastStartError(p.daemonLog)).toBeUndefined();
  });
});
