import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Level } from 'level';
import { afterEach } from 'vitest';
import { openVault } from '../../../src/vault/store.js';
import type { KvStore } from '../../../src/vault/types.js';

/** Temp dirs and stores opened by a test, closed and removed after it whatever the outcome. */
export function useVaultFixtures(): {
  tmp(): string;
  open(dir: string, masterKey?: Uint8Array): Promise<KvStore>;
  key(): Uint8Array;
  raw(dir: string): Promise<Level<string, Uint8Array>>;
} {
  const dirs: string[] = [];
  const closers: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const close of closers.splice(0).reverse()) await close().catch(() => undefined);
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });
  const key = (): Uint8Array => new Uint8Array(randomBytes(32));
  return {
    tmp() {
      const dir = mkdtempSync(join(tmpdir(), 'authsome-vault-'));
      dirs.push(dir);
      return dir;
    },
    key,
    async open(dir, masterKey = key()) {
      const store = await openVault({ dir, masterKey });
      closers.push(() => store.close());
      return store;
    },
    /** The LevelDB underneath, without sealing: lets tests tamper with stored bytes. */
    async raw(dir) {
      const db = new Level<string, Uint8Array>(dir, { keyEncoding: 'utf8', valueEncoding: 'view' });
      await db.open();
      closers.push(() => db.close());
      return db;
    },
  };
}

/** sha256 of every file in a directory (flat: LevelDB keeps no subdirectories). */
export function hashFiles(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const name of readdirSync(dir).sort()) {
    out.set(
      name,
      createHash('sha256')
        .update(readFileSync(join(dir, name)))
        .digest('hex'),
    );
  }
  return out;
}

export function readAllBytes(dir: string): Buffer {
  return Buffer.concat(readdirSync(dir).map((name) => readFileSync(join(dir, name))));
}

/** Every key/value pair as stored (sealed bytes, hex), read through a raw LevelDB handle. */
export async function dumpRaw(dir: string): Promise<Array<[string, string]>> {
  const db = new Level<string, Uint8Array>(dir, { keyEncoding: 'utf8', valueEncoding: 'view' });
  await db.open();
  try {
    const rows: Array<[string, string]> = [];
    for await (const [k, v] of db.iterator()) rows.push([k, Buffer.from(v).toString('hex')]);
    return rows;
  } finally {
    await db.close();
  }
}

export async function expectCode(p: Promise<unknown> | (() => unknown), code: string): Promise<Error> {
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (e) {
    if ((e as { code?: unknown }).code !== code) throw e;
    return e as Error;
  }
  throw new Error(`expected ${code}, nothing was thrown`);
}
