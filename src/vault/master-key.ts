import { randomBytes } from 'node:crypto';
import { mkdir, open, readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { AppError } from '../errors.js';
import { MASTER_KEY_BYTES } from './seal.js';

/** Exactly 32 bytes in standard padded base64 (Buffer.from would silently accept junk). */
const KEY_TEXT = /^[A-Za-z0-9+/]{43}=$/;

function errCode(e: unknown): unknown {
  return typeof e === 'object' && e !== null ? (e as { code?: unknown }).code : undefined;
}

/** Creates a new master key file; 'wx' makes it fail rather than overwrite an existing key. */
export async function createMasterKey(path: string): Promise<Uint8Array> {
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  const key = new Uint8Array(randomBytes(MASTER_KEY_BYTES));
  let fh;
  try {
    fh = await open(path, 'wx', 0o600);
  } catch (e) {
    if (errCode(e) === 'EEXIST') {
      throw new AppError(
        'ERR_HOME_EXISTS',
        `a master key already exists at ${path}`,
        'keep it: replacing it makes every stored record unreadable',
      );
    }
    throw e;
  }
  try {
    await fh.writeFile(`${Buffer.from(key).toString('base64')}\n`, 'utf8');
    await fh.sync();
  } finally {
    await fh.close();
  }
  return key;
}

/** Loads the master key, refusing a file that group or others could read or write. */
export async function loadMasterKey(path: string): Promise<Uint8Array> {
  let fh;
  try {
    fh = await open(path, 'r');
  } catch (e) {
    if (errCode(e) === 'ENOENT') {
      throw new AppError('ERR_HOME_NOT_INITIALISED', `no master key at ${path}`, 'run: authsome init');
    }
    throw e;
  }
  try {
    // fstat on the opened handle, so the mode checked is that of the file actually read.
    const st = await fh.stat();
    if (!st.isFile()) throw sealed(path, 'is not a regular file');
    // POSIX modes mean nothing on Windows, where access is governed by ACLs instead.
    if (process.platform !== 'win32' && (st.mode & 0o077) !== 0) {
      throw new AppError(
        'ERR_HOME_PERMISSIONS',
        `master key ${path} is accessible by group or others (mode ${(st.mode & 0o777).toString(8)})`,
        `chmod 600 ${path}`,
      );
    }
    const text = (await readFile(fh, 'utf8')).trim();
    if (!KEY_TEXT.test(text)) throw sealed(path, 'is not a base64-encoded 32-byte key');
    return new Uint8Array(Buffer.from(text, 'base64'));
  } finally {
    await fh.close();
  }
}

function sealed(path: string, what: string): AppError {
  return new AppError(
    'ERR_VAULT_SEALED',
    `master key ${path} ${what}`,
    'restore the original server/master.key from a backup',
  );
}
