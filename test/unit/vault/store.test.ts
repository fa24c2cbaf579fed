import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { Level } from 'level';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { Secret } from '../../../src/secret.js';
import { connectionKey, KEYCHECK_KEY } from '../../../src/vault/keys.js';
import { dumpRaw, expectCode, hashFiles, readAllBytes, useVaultFixtures } from './fixtures.js';

const conn = connectionKey('alice', 'github', 'work');

describe('LevelDB vault store', () => {
  const fx = useVaultFixtures();

  it('stores, lists in key order, deletes and batches', async () => {
    const dir = join(fx.tmp(), 'kv_store');
    const store = await fx.open(dir);
    if (process.platform !== 'win32') expect(statSync(dir).mode & 0o777).toBe(0o700);
    await store.put(conn, { token: 't1', n: 1 });
    expect(await store.get(conn)).toEqual({ token: 't1', n: 1 });
    expect(await store.get('profile/alice/conn/github/none')).toBeUndefined();
    await store.batch([
      { type: 'put', key: 'profile/alice/default/github', value: { connection: 'work' } },
      { type: 'put', key: 'profile/alice/conn/github/home', value: { token: 't2' } },
      { type: 'del', key: conn },
    ]);
    expect(await store.keys('profile/alice/')).toEqual([
      'profile/alice/conn/github/home',
      'profile/alice/default/github',
    ]);
    expect(await store.list('profile/alice/conn/')).toEqual([
      { key: 'profile/alice/conn/github/home', value: { token: 't2' } },
    ]);
    await store.del('profile/alice/default/github');
    expect(await store.keys('profile/')).toEqual(['profile/alice/conn/github/home']);
    expect(await store.keys('meta/')).toEqual([KEYCHECK_KEY]);
  });

  it('persists across reopen with the same key', async () => {
    const dir = fx.tmp();
    const key = fx.key();
    const a = await fx.open(dir, key);
    await a.put(conn, { token: 'persisted' });
    await a.close();
    const b = await fx.open(dir, key);
    expect(await b.get(conn)).toEqual({ token: 'persisted' });
  });

  it('makes every write durable (sync: true)', async () => {
    const store = await fx.open(fx.tmp());
    const put = vi.spyOn(Level.prototype, 'put');
    const del = vi.spyOn(Level.prototype, 'del');
    const batch = vi.spyOn(Level.prototype, 'batch');
    try {
      await store.put(conn, { a: 1 });
      await store.del(conn);
      await store.batch([{ type: 'put', key: conn, value: { a: 2 } }]);
      expect(put.mock.calls[0]?.[2]).toMatchObject({ sync: true });
      expect(del.mock.calls[0]?.[1]).toMatchObject({ sync: true });
      // batch() is overloaded (the chained form takes no arguments), hence the widening.
      expect((batch.mock.calls[0] as unknown[] | undefined)?.[1]).toMatchObject({ sync: true });
    } finally {
      vi.restoreAllMocks();
    }
  });

  it('refuses misuse as programmer errors', async () => {
    const store = await fx.open(fx.tmp());
    await expect(store.put(KEYCHECK_KEY, { x: 1 })).rejects.toThrow(TypeError);
    await expect(store.del(KEYCHECK_KEY)).rejects.toThrow(TypeError);
    await expect(store.put('', { x: 1 })).rejects.toThrow(TypeError);
    await expect(store.list('profile/alice')).rejects.toThrow(TypeError);
    // A Secret would be stored as "[redacted]" and the credential lost.
    await expect(store.put(conn, { token: new Secret('s') })).rejects.toThrow(TypeError);
    await expect(
      store.batch([{ type: 'put', key: conn, value: { nested: { t: new Secret('s') } } }]),
    ).rejects.toThrow(TypeError);
    expect(await store.get(conn)).toBeUndefined();
  });

  it('never writes a canary secret to disk in the clear (raw, base64, hex, URL-encoded)', async () => {
    const dir = fx.tmp();
    const key = fx.key();
    const canary = `CANARY-${randomBytes(12).toString('hex')}/+=`;
    const store = await fx.open(dir, key);
    await store.put(conn, { token: canary, refresh: canary });
    await store.batch([{ type: 'put', key: 'profile/alice/conn/github/b', value: { token: canary } }]);
    const needles = [
      canary,
      Buffer.from(canary).toString('base64'),
      Buffer.from(canary).toString('base64url'),
      Buffer.from(canary).toString('hex'),
      encodeURIComponent(canary),
      canary.slice(0, 20),
    ].map((s) => Buffer.from(s));
    const scan = (): void => {
      const bytes = readAllBytes(dir);
      for (const n of needles) expect(bytes.includes(n), n.toString()).toBe(false);
    };
    scan(); // while open: the write-ahead log
    await store.close();
    scan();
    // Reopening makes LevelDB fold the log into a sorted table: scan that too.
    await (await fx.open(dir, key)).close();
    scan();
  });
});

describe('tampered records', () => {
  const fx = useVaultFixtures();
  const canary = 'CANARY-tamper-5d1e';

  /** Writes records through the vault, then lets fn edit the raw LevelDB bytes. */
  async function tamper(
    fn: (db: Level<string, Uint8Array>) => Promise<void>,
  ): Promise<{ dir: string; key: Uint8Array }> {
    const dir = fx.tmp();
    const key = fx.key();
    const store = await fx.open(dir, key);
    await store.put(conn, { token: canary });
    await store.put('profile/alice/conn/github/other', { token: 'fine' });
    await store.close();
    const raw = await fx.raw(dir);
    await fn(raw);
    await raw.close();
    return { dir, key };
  }

  async function expectCorrupt(p: Promise<unknown>, key: string): Promise<void> {
    const e = await expectCode(p, 'ERR_VAULT_CORRUPT');
    expect(e.message).toContain(key);
    expect(e.message).not.toContain(canary);
    expect(JSON.stringify(e)).not.toContain(canary);
  }

  it('a flipped byte fails get and list, naming the key', async () => {
    const { dir, key } = await tamper(async (db) => {
      const v = Uint8Array.from((await db.get(conn)) ?? []);
      v[v.length - 1] = (v[v.length - 1] ?? 0) ^ 0x80;
      await db.put(conn, v);
    });
    const store = await fx.open(dir, key);
    await expectCorrupt(store.get(conn), conn);
    await expectCorrupt(store.list('profile/alice/'), conn);
    expect(await store.get('profile/alice/conn/github/other')).toEqual({ token: 'fine' });
  });

  it('a truncated value fails', async () => {
    const { dir, key } = await tamper(async (db) => {
      await db.put(conn, ((await db.get(conn)) ?? new Uint8Array()).subarray(0, 30));
    });
    await expectCorrupt((await fx.open(dir, key)).get(conn), conn);
  });

  it("a sealed value transplanted to another profile's key does not open", async () => {
    const stolen = connectionKey('mallory', 'github', 'work');
    const { dir, key } = await tamper(async (db) => {
      await db.put(stolen, (await db.get(conn)) ?? new Uint8Array());
    });
    const store = await fx.open(dir, key);
    await expectCorrupt(store.get(stolen), stolen);
    expect(await store.get(conn)).toEqual({ token: canary });
  });
});

describe('opening the store', () => {
  const fx = useVaultFixtures();
  let child: ChildProcess | undefined;
  afterEach(() => {
    child?.kill();
    child = undefined;
  });

  it('stays sealed with a wrong master key and leaves the data files untouched', async () => {
    const dir = fx.tmp();
    const right = fx.key();
    const a = await fx.open(dir, right);
    await a.put(conn, { token: 't' });
    await a.close();
    // LevelDB rewrites its bookkeeping on every open, even one that writes nothing: it folds the log
    // into a table, starts a new MANIFEST-n and an empty n.log, repoints CURRENT and rotates LOG.
    // Settle once so that the log is empty, then compare.
    await (await fx.open(dir, right)).close();
    const files = hashFiles(dir);
    const records = await dumpRaw(dir);
    await (await fx.open(dir, right)).close();
    const churn = changed(files, hashFiles(dir)); // what a right-key open that writes nothing changes

    const before = hashFiles(dir);
    const e = await expectCode(fx.open(dir, fx.key()), 'ERR_VAULT_SEALED');
    expect(e.message).toMatch(/master key does not match/);
    const after = hashFiles(dir);

    // Only LevelDB's own bookkeeping differs, exactly as for the control open above.
    expect(changed(before, after).map(kind)).toEqual(churn.map(kind));
    for (const name of changed(before, after)) expect(bookkeeping(name), name).toBe(true);
    // Data files: every sorted table identical, and the write-ahead log empty (any put would be in it).
    const tables = (m: Map<string, string>): string[] =>
      [...m].filter(([n]) => n.endsWith('.ldb')).map(String);
    expect(tables(after)).toEqual(tables(before));
    for (const [name] of after)
      if (name.endsWith('.log')) expect(statSync(join(dir, name)).size, name).toBe(0);
    expect(await dumpRaw(dir)).toEqual(records);
    // And the right key still opens it.
    expect(await (await fx.open(dir, right)).get(conn)).toEqual({ token: 't' });
  });

  it('refuses a store that holds records but no key-check, without writing one', async () => {
    const dir = fx.tmp();
    const raw = await fx.raw(dir);
    await raw.put(conn, new Uint8Array([1, 2, 3]));
    await raw.close();
    await expectCode(fx.open(dir), 'ERR_VAULT_CORRUPT');
    expect((await dumpRaw(dir)).map(([k]) => k)).toEqual([conn]);
  });

  it('reports a store held by this process as locked', async () => {
    const dir = fx.tmp();
    await fx.open(dir);
    const e = await expectCode(fx.open(dir), 'ERR_VAULT_LOCKED');
    expect(e.message).toBe('another authsome daemon has the store open');
  });

  it('reports a store held by another process as locked', async () => {
    const dir = fx.tmp();
    await (await fx.open(dir)).close();
    const script = `import { Level } from 'level';
      const db = new Level(process.argv[1]); await db.open(); process.stdout.write('ready\\n');
      setInterval(() => {}, 1000);`;
    const proc = spawn(process.execPath, ['--input-type=module', '-e', script, dir], {
      cwd: process.cwd(),
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    child = proc;
    await new Promise<void>((resolve, reject) => {
      proc.stdout?.once('data', () => resolve());
      proc.once('exit', (code) => reject(new Error(`lock holder exited early (${String(code)})`)));
    });
    await expectCode(fx.open(dir), 'ERR_VAULT_LOCKED');
  });
});

function changed(a: Map<string, string>, b: Map<string, string>): string[] {
  const names = new Set([...a.keys(), ...b.keys()]);
  return [...names].filter((n) => a.get(n) !== b.get(n)).sort();
}

/** File names without LevelDB's ever-increasing file numbers. */
function kind(name: string): string {
  return name.replace(/^\d+\.log$/, 'N.log').replace(/^MANIFEST-\d+$/, 'MANIFEST-N');
}

function bookkeeping(name: string): boolean {
  return /^(LOCK|LOG|LOG\.old|CURRENT|MANIFEST-\d+|\d+\.log)$/.test(name);
}
