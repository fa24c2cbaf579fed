import { createPublicKey, sign, verify } from 'node:crypto';
import { chmod, mkdir, mkdtemp, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AppError } from '../../../src/errors.js';
import {
  generateIdentity,
  parsePublicJwk,
  publicJwkOf,
  readIdentityKey,
  writeIdentityKey,
} from '../../../src/identity/index.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'authsome-keys-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function codeOf(p: Promise<unknown>): Promise<AppError> {
  const e = await p.then(
    () => expect.unreachable('should have failed'),
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(AppError);
  return e as AppError;
}

describe('identity keys', () => {
  it('generates an Ed25519 pair whose public JWK is exactly {kty, crv, x}', async () => {
    const id = await generateIdentity();
    expect(id.privateKeyPem).toContain('-----BEGIN PRIVATE KEY-----');
    expect(Object.keys(id.publicJwk).sort()).toEqual(['crv', 'kty', 'x']);
    expect(id.publicJwk).toMatchObject({ kty: 'OKP', crv: 'Ed25519' });
    expect(id.publicJwk.x).toMatch(/^[A-Za-z0-9_-]{43}$/);
  });

  it('writes 0600 in a 0700 folder, reads back the same key, never overwrites', async () => {
    const id = await generateIdentity();
    const path = join(dir, 'client', 'identities', 'alice.key');
    await writeIdentityKey(path, id.privateKeyPem);
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    expect((await stat(join(dir, 'client', 'identities'))).mode & 0o777).toBe(0o700);
    const key = await readIdentityKey(path);
    expect(publicJwkOf(key)).toEqual(id.publicJwk);
    const msg = Buffer.from('hello');
    expect(
      verify(null, msg, createPublicKey({ key: { ...id.publicJwk }, format: 'jwk' }), sign(null, msg, key)),
    ).toBe(true);
    const other = await generateIdentity();
    expect((await codeOf(writeIdentityKey(path, other.privateKeyPem))).code).toBe('ERR_PROFILE_EXISTS');
    expect(await readFile(path, 'utf8')).toBe(id.privateKeyPem);
  });

  it('tightens an existing, too-open identities folder', async () => {
    const idDir = join(dir, 'identities');
    await mkdir(idDir, { mode: 0o755 });
    await chmod(idDir, 0o755);
    await writeIdentityKey(join(idDir, 'a.key'), (await generateIdentity()).privateKeyPem);
    expect((await stat(idDir)).mode & 0o777).toBe(0o700);
  });

  it.each([0o640, 0o604, 0o644, 0o660, 0o601])('refuses a key file with mode %o', async (mode) => {
    const path = join(dir, 'a.key');
    await writeIdentityKey(path, (await generateIdentity()).privateKeyPem);
    await chmod(path, mode);
    const e = await codeOf(readIdentityKey(path));
    expect(e.code).toBe('ERR_HOME_PERMISSIONS');
    expect(e.hint).toContain(`chmod 600 ${path}`);
  });

  it('names init / profile create when the key is missing', async () => {
    const e = await codeOf(readIdentityKey(join(dir, 'nobody.key')));
    expect(e.code).toBe('ERR_IDENTITY_KEY_MISSING');
    expect(e.hint).toContain('authsome profile create');
    expect(e.hint).toContain('authsome init');
  });

  it('refuses a symlink, a non-key and a non-Ed25519 key', async () => {
    const real = join(dir, 'real.key');
    await writeIdentityKey(real, (await generateIdentity()).privateKeyPem);
    await symlink(real, join(dir, 'link.key'));
    expect((await codeOf(readIdentityKey(join(dir, 'link.key')))).code).toBe('ERR_HOME_PERMISSIONS');
    await writeFile(join(dir, 'junk.key'), 'not a key', { mode: 0o600 });
    expect((await codeOf(readIdentityKey(join(dir, 'junk.key')))).code).toBe('ERR_INPUT_INVALID');
    const { generateKeyPairSync } = await import('node:crypto');
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' })
      .privateKey.export({ type: 'pkcs8', format: 'pem' })
      .toString();
    await writeFile(join(dir, 'ec.key'), ec, { mode: 0o600 });
    expect((await codeOf(readIdentityKey(join(dir, 'ec.key')))).code).toBe('ERR_INPUT_INVALID');
  });
});

describe('parsePublicJwk', () => {
  it('accepts exactly an Ed25519 public JWK and returns a clean copy', async () => {
    const { publicJwk } = await generateIdentity();
    expect(parsePublicJwk(JSON.parse(JSON.stringify(publicJwk)))).toEqual(publicJwk);
  });

  it('refuses private parts, extra members and wrong shapes', async () => {
    const { publicJwk, privateKeyPem } = await generateIdentity();
    const { createPrivateKey } = await import('node:crypto');
    const priv = createPrivateKey(privateKeyPem).export({ format: 'jwk' });
    const x = publicJwk.x;
    // Same 32 bytes, non-canonical spelling: the last character's two spare bits set.
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    const last = alphabet.indexOf(x.at(-1)!);
    const nonCanonical = x.slice(0, -1) + alphabet[last | 1];
    const bad: unknown[] = [
      priv,
      { ...publicJwk, d: priv.d },
      { ...publicJwk, kid: 'k' },
      { ...publicJwk, alg: 'EdDSA' },
      { ...publicJwk, kty: 'EC' },
      { ...publicJwk, crv: 'X25519' },
      { ...publicJwk, x: x.slice(1) },
      { ...publicJwk, x: `${x}A` },
      { ...publicJwk, x: x.replace(/.$/, '=') },
      { ...publicJwk, x: nonCanonical },
      { kty: 'OKP', crv: 'Ed25519' },
      null,
      'OKP',
      [publicJwk],
    ];
    for (const v of bad) {
      expect(() => parsePublicJwk(v), JSON.stringify(v)).toThrow(
        expect.objectContaining({ code: 'ERR_INPUT_INVALID' }),
      );
    }
  });
});
