import { createPrivateKey, createPublicKey, generateKeyPair, type KeyObject } from 'node:crypto';
import { constants as fsConstants } from 'node:fs';
import { chmod, mkdir, open } from 'node:fs/promises';
import { dirname } from 'node:path';
import { promisify } from 'node:util';
import { AppError } from '../errors.js';

/**
 * A profile's Ed25519 public key as the registry stores it: exactly {kty, crv, x}. Anything more
 * (above all `d`, the private part) is refused, so a private key can never end up in the registry.
 */
export interface Ed25519PublicJwk {
  readonly kty: 'OKP';
  readonly crv: 'Ed25519';
  readonly x: string;
}

export interface GeneratedIdentity {
  /** PKCS#8 PEM of the private key; goes to client/identities/<handle>.key and nowhere else. */
  readonly privateKeyPem: string;
  readonly publicJwk: Ed25519PublicJwk;
}

const X_PATTERN = /^[A-Za-z0-9_-]{43}$/;
const GROUP_OTHER_BITS = 0o077;

/** Strict shape check; throws ERR_INPUT_INVALID. Returns a fresh object with exactly three members. */
export function parsePublicJwk(value: unknown): Ed25519PublicJwk {
  const bad = (why: string): never => {
    throw new AppError(
      'ERR_INPUT_INVALID',
      `invalid public key: ${why}`,
      'send the Ed25519 public key as a JWK {"kty":"OKP","crv":"Ed25519","x":"..."}',
    );
  };
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return bad('not a JSON object');
  const v = value as Record<string, unknown>;
  const extra = Object.keys(v).filter((k) => k !== 'kty' && k !== 'crv' && k !== 'x');
  if (extra.length > 0)
    return bad(
      `unexpected member(s) ${extra
        .slice(0, 5)
        .map((k) => JSON.stringify(k.slice(0, 20)))
        .join(', ')}`,
    );
  if (v['kty'] !== 'OKP') return bad('kty must be "OKP"');
  if (v['crv'] !== 'Ed25519') return bad('crv must be "Ed25519"');
  const x = v['x'];
  if (typeof x !== 'string' || !X_PATTERN.test(x)) return bad('x must be 43 base64url characters');
  // 43 chars carry 258 bits; the last char's 2 spare bits must be zero, or two strings name one key.
  if (Buffer.from(x, 'base64url').toString('base64url') !== x) return bad('x is not canonical base64url');
  try {
    createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x }, format: 'jwk' });
  } catch {
    return bad('x is not an Ed25519 public key');
  }
  return { kty: 'OKP', crv: 'Ed25519', x };
}

/** The public JWK of a key (private or public), reduced to {kty, crv, x}. */
export function publicJwkOf(key: KeyObject): Ed25519PublicJwk {
  if (key.asymmetricKeyType !== 'ed25519') throw new TypeError('expected an Ed25519 key');
  const pub = key.type === 'private' ? createPublicKey(key) : key;
  return parsePublicJwk({ kty: 'OKP', crv: 'Ed25519', x: pub.export({ format: 'jwk' }).x });
}

export async function generateIdentity(): Promise<GeneratedIdentity> {
  const { privateKey } = await promisify(generateKeyPair)('ed25519');
  const privateKeyPem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  return { privateKeyPem, publicJwk: publicJwkOf(privateKey) };
}

/** Creates the key file 0600 in a 0700 folder; never overwrites (flag wx), and syncs before returning. */
export async function writeIdentityKey(path: string, pem: string): Promise<void> {
  const dir = dirname(path);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  // mkdir leaves an existing folder's mode alone; the identities folder is ours, so tighten it.
  await chmod(dir, 0o700);
  let fh;
  try {
    fh = await open(path, 'wx', 0o600);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') {
      throw new AppError(
        'ERR_PROFILE_EXISTS',
        `an identity key already exists at ${path}`,
        'pick another profile name, or remove that file if the profile is gone',
      );
    }
    throw e;
  }
  try {
    await fh.writeFile(pem, 'utf8');
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/**
 * Reads a profile's private key. Permissions are checked on the opened descriptor (fstat), so the
 * file checked is the file read; O_NOFOLLOW refuses a symlink planted in place of the key.
 */
export async function readIdentityKey(path: string): Promise<KeyObject> {
  let fh;
  try {
    fh = await open(path, fsConstants.O_RDONLY | (fsConstants.O_NOFOLLOW ?? 0));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') {
      throw new AppError(
        'ERR_IDENTITY_KEY_MISSING',
        `no identity key at ${path}`,
        'run `authsome init` (first profile) or `authsome profile create <name>`',
      );
    }
    if (code === 'ELOOP') {
      throw new AppError(
        'ERR_HOME_PERMISSIONS',
        `identity key ${path} is a symbolic link`,
        'replace it with the key file itself, mode 600',
      );
    }
    throw e;
  }
  try {
    const st = await fh.stat();
    if (!st.isFile())
      throw new AppError(
        'ERR_HOME_PERMISSIONS',
        `identity key ${path} is not a regular file`,
        'replace it with the key file itself, mode 600',
      );
    if (process.platform !== 'win32' && (st.mode & GROUP_OTHER_BITS) !== 0) {
      throw new AppError(
        'ERR_HOME_PERMISSIONS',
        `identity key ${path} is readable or writable by group or others`,
        `run: chmod 600 ${path}`,
      );
    }
    const pem = await fh.readFile('utf8');
    let key: KeyObject;
    try {
      key = createPrivateKey({ key: pem, format: 'pem' });
    } catch {
      throw new AppError(
        'ERR_INPUT_INVALID',
        `identity key ${path} is not a PEM private key`,
        'restore the key file or create a new profile',
      );
    }
    if (key.asymmetricKeyType !== 'ed25519') {
      throw new AppError(
        'ERR_INPUT_INVALID',
        `identity key ${path} is not an Ed25519 key`,
        'restore the key file or create a new profile',
      );
    }
    return key;
  } finally {
    await fh.close();
  }
}
