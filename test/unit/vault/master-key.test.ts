import { chmodSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createMasterKey, loadMasterKey } from '../../../src/vault/master-key.js';
import { expectCode, useVaultFixtures } from './fixtures.js';

const posix = process.platform !== 'win32';

describe('master key file', () => {
  const fx = useVaultFixtures();

  it('creates 32 random bytes as base64, 0600 in a 0700 directory, and loads them back', async () => {
    const path = join(fx.tmp(), 'server', 'master.key');
    const key = await createMasterKey(path);
    expect(key.length).toBe(32);
    expect(readFileSync(path, 'utf8')).toBe(`${Buffer.from(key).toString('base64')}\n`);
    if (posix) {
      expect(statSync(path).mode & 0o777).toBe(0o600);
      expect(statSync(join(path, '..')).mode & 0o777).toBe(0o700);
    }
    expect(Buffer.from(await loadMasterKey(path))).toEqual(Buffer.from(key));
  });

  it('never overwrites an existing key', async () => {
    const path = join(fx.tmp(), 'master.key');
    await createMasterKey(path);
    const before = readFileSync(path);
    await expectCode(createMasterKey(path), 'ERR_HOME_EXISTS');
    expect(readFileSync(path)).toEqual(before);
  });

  it.runIf(posix).each([0o644, 0o640, 0o604, 0o660, 0o602])(
    'refuses mode %o with a chmod hint',
    async (mode) => {
      const path = join(fx.tmp(), 'master.key');
      await createMasterKey(path);
      chmodSync(path, mode);
      const e = await expectCode(loadMasterKey(path), 'ERR_HOME_PERMISSIONS');
      expect(e).toMatchObject({ hint: `chmod 600 ${path}` });
    },
  );

  it('says to run init when the key is missing', async () => {
    const e = await expectCode(loadMasterKey(join(fx.tmp(), 'nope.key')), 'ERR_HOME_NOT_INITIALISED');
    expect(e).toMatchObject({ hint: 'run: authsome init' });
  });

  it.each([
    ['empty', ''],
    ['too short', Buffer.alloc(16).toString('base64')],
    ['too long', Buffer.alloc(33).toString('base64')],
    ['not base64', `${'!'.repeat(43)}=`],
    ['unpadded', Buffer.alloc(32).toString('base64url')],
  ])('refuses a %s key as sealed, without echoing the content', async (_label, text) => {
    const path = join(fx.tmp(), 'master.key');
    writeFileSync(path, text, { mode: 0o600 });
    const e = await expectCode(loadMasterKey(path), 'ERR_VAULT_SEALED');
    if (text !== '') expect(e.message).not.toContain(text);
  });
});
