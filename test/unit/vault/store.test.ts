import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { Level } from 'level';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { Secret } from '../../../src/secret.js';
import { connectionKey, KEYCHECK_KEY } from '../../../src/vault/keys.js';
import { ENGINES, useEngine, type PgEngineFixture } from './engines.js';
import { dumpRaw, expectCode, hashFiles, useVaultFixtures } from './fixtures.js';

const conn = connectionKey('alice', 'github', 'work');

for (const { name, skip } of ENGINES) {
  describe.skipIf(skip)(`vault store over ${name}`, () => {
    const fx = useEngine(name);

    it('stores, lists in key order, deletes and batches', async () => {
      const store = await fx.open(await fx.place());
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

    it('applies a batch in order: the last op on a key wins', async () => {
      const store = await fx.open(await fx.place());
      const other = connectionKey('alice', 'github', 'other');
      await store.put(other, { v: 0 });
      await store.batch([
        { type: 'put', key: conn, value: { v: 1 } },
        { type: 'del', key: conn },
        { type: 'del', key: other },
        { type: 'put', key: other, value: { v: 2 } },
        { type: 'put', key: other, value: { v: 3 } },
      ]);
      expect(await store.get(conn)).toBeUndefined();
      expect(await store.get(other)).toEqual({ v: 3 });
      await store.batch([]);
      expect(await store.keys('profile/')).toEqual([other]);
    });

    it("orders keys bytewise in UTF-8, as LevelDB does ('/' before '0', non-ASCII after, astral last)", async () => {
      const store = await fx.open(await fx.place());
      const keys = [
        't/a',
        't/a/b',
        't/a-',
        't/a.',
        't/a0',
        't/aZ',
        't/a~',
        't/a\u00e9',
        't/a\u00ff',
        't/a\u0100',
        't/a\u4e2d',
        't/a\uffee',
        't/a\u{1f600}',
        't/b',
      ];
      await store.batch([...keys].reverse().map((key) => ({ type: 'put' as const, key, value: { key } })));
      const utf8Order = [...keys].sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y)));
      // The astral key sorts before U+FFEE in UTF-16 (JS's own sort): the check below can tell them apart.
      expect([...keys].sort()).not.toEqual(utf8Order);
      expect(await store.keys('t/')).toEqual(utf8Order);
      expect((await store.list('t/')).map((r) => r.value['key'])).toEqual(utf8Order);
      // A prefix scan stops exactly at its '/': not 't/a-', 't/a0' or anything else beginning 't/a'.
      expect(await store.keys('t/a/')).toEqual(['t/a/b']);
      expect(await store.keys('t/a\u00e9/')).toEqual([]);
    });

    it('persists across reopen with the same key', async () => {
      const place = await fx.place();
      const key = fx.key();
      const a = await fx.open(place, key);
      await a.put(conn, { token: 'persisted' });
      await a.close();
      const b = await fx.open(place, key);
      expect(await b.get(conn)).toEqual({ token: 'persisted' });
    });

    it('refuses misuse as programmer errors', async () => {
      const store = await fx.open(await fx.place());
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

    it('never stores a canary secret in the clear (raw, base64, hex, URL-encoded)', async () => {
      const place = await fx.place();
      const key = fx.key();
      const canary = `CANARY-${randomBytes(12).toString('hex')}/+=`;
      const store = await fx.open(place, key);
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
      const scan = async (): Promise<void> => {
        const bytes = await fx.rawBytes(place);
        expect(bytes.length).toBeGreaterThan(0);
        for (const n of needles) expect(bytes.includes(n), n.toString()).toBe(false);
      };
      await scan(); // while open: LevelDB's write-ahead log
      await store.close();
      await scan();
      // Reopening makes LevelDB fold the log into a sorted table: scan that too.
      await (await fx.open(place, key)).close();
      await scan();
    });

    describe('tampered records', () => {
      const canary = 'CANARY-tamper-5d1e';

      /** Writes records through the vault, then lets fn edit the raw stored bytes. */
      async function tamper(
        fn: (place: string) => Promise<void>,
      ): Promise<{ place: string; key: Uint8Array }> {
        const place = await fx.place();
        const key = fx.key();
        const store = await fx.open(place, key);
        await store.put(conn, { token: canary });
        await store.put('profile/alice/conn/github/other', { token: 'fine' });
        await store.close();
        await fn(place);
        return { place, key };
      }

      async function expectCorrupt(p: Promise<unknown>, key: string): Promise<void> {
        const e = await expectCode(p, 'ERR_VAULT_CORRUPT');
        expect(e.message).toContain(key);
        expect(e.message).not.toContain(canary);
        expect(JSON.stringify(e)).not.toContain(canary);
      }

      it('a flipped byte fails get and list, naming the key', async () => {
        const { place, key } = await tamper(async (p) => {
          const v = Uint8Array.from((await fx.rawGet(p, conn)) ?? []);
          v[v.length - 1] = (v[v.length - 1] ?? 0) ^ 0x80;
          await fx.rawPut(p, conn, v);
        });
        const store = await fx.open(place, key);
        await expectCorrupt(store.get(conn), conn);
        await expectCorrupt(store.list('profile/alice/'), conn);
        expect(await store.get('profile/alice/conn/github/other')).toEqual({ token: 'fine' });
      });

      it('a truncated value fails', async () => {
        const { place, key } = await tamper(async (p) => {
          await fx.rawPut(p, conn, ((await fx.rawGet(p, conn)) ?? new Uint8Array()).subarray(0, 30));
        });
        await expectCorrupt((await fx.open(place, key)).get(conn), conn);
      });

      it("a sealed value transplanted to another profile's key does not open", async () => {
        const stolen = connectionKey('mallory', 'github', 'work');
        const { place, key } = await tamper(async (p) => {
          await fx.rawPut(p, stolen, (await fx.rawGet(p, conn)) ?? new Uint8Array());
        });
        const store = await fx.open(place, key);
        await expectCorrupt(store.get(stolen), stolen);
        await expectCorrupt(store.list('profile/mallory/'), stolen);
        expect(await store.get(conn)).toEqual({ token: canary });
      });

      it('a sealed value copied to another key of the same profile does not open either', async () => {
        const sibling = connectionKey('alice', 'github', 'copy');
        const { place, key } = await tamper(async (p) => {
          await fx.rawPut(p, sibling, (await fx.rawGet(p, conn)) ?? new Uint8Array());
        });
        await expectCorrupt((await fx.open(place, key)).get(sibling), sibling);
      });
    });

    it('stays sealed with a wrong master key and writes nothing', async () => {
      const place = await fx.place();
      const right = fx.key();
      const a = await fx.open(place, right);
      await a.put(conn, { token: 't' });
      await a.close();
      const before = await fx.rawKeys(place);
      const beforeValue = await fx.rawGet(place, conn);
      const e = await expectCode(fx.open(place, fx.key()), 'ERR_VAULT_SEALED');
      expect(e.message).toMatch(/master key does not match/);
      expect(await fx.rawKeys(place)).toEqual(before);
      expect(await fx.rawGet(place, conn)).toEqual(beforeValue);
      expect(await (await fx.open(place, right)).get(conn)).toEqual({ token: 't' });
    });

    it('refuses a store that holds records but no key-check, without writing one', async () => {
      const place = await fx.place();
      const key = fx.key();
      if (name === 'postgres') {
        // An initialised schema whose key-check row went missing.
        await (await fx.open(place, key)).close();
        const { schemas } = fx as PgEngineFixture;
        await schemas.admin(`DELETE FROM ${place}.authsome_kv WHERE k = $1`, [Buffer.from(KEYCHECK_KEY)]);
      }
      await fx.rawPut(place, conn, new Uint8Array([1, 2, 3]));
      await expectCode(fx.open(place, key), 'ERR_VAULT_CORRUPT');
      expect(await fx.rawKeys(place)).toEqual([conn]);
    });
  });
}

describe('LevelDB vault store', () => {
  const fx = useVaultFixtures();

  it('creates its directory 0700', async () => {
    const dir = join(fx.tmp(), 'kv_store');
    await fx.open(dir);
    if (process.platform !== 'win32') expect(statSync(dir).mode & 0o777).toBe(0o700);
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
});

describe('opening the LevelDB store', () => {
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
