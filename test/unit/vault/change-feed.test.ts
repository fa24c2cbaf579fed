import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { FeedCache, FeedHub, type ChangeFeed } from '../../../src/vault/change-feed.js';
import { connectionKey, sessionKey } from '../../../src/vault/keys.js';
import { openStore, type OpenedStore } from '../../../src/vault/open-store.js';
import type { PgStore } from '../../../src/vault/pg-open.js';
import { hasPg } from '../../helpers/pg.js';
import { pgEngine } from './engines.js';

const conn = connectionKey('alice', 'github', 'work');
/** SPEC section 10: a change through any node takes effect on every node within 1 s. */
const WITHIN = 1000;

/** Resolves with what the listener hears first for which match(key) is true; rejects after ms. */
function heard(
  feed: ChangeFeed,
  prefix: string,
  match: (key: string | undefined) => boolean,
  ms = WITHIN,
): Promise<string | undefined> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      off();
      reject(new Error(`nothing heard under ${JSON.stringify(prefix)} within ${ms} ms`));
    }, ms);
    const off = feed.subscribe(prefix, (key) => {
      if (!match(key)) return;
      clearTimeout(timer);
      off();
      resolve(key);
    });
  });
}

function status(feed: ChangeFeed, want: boolean): Promise<void> {
  return new Promise((resolve) => {
    const off = feed.onStatus((up) => {
      if (up === want) {
        off();
        resolve();
      }
    });
  });
}

describe('FeedHub', () => {
  it('delivers changed keys to the subscribers whose prefix they start with', () => {
    const hub = new FeedHub(true);
    const seen: Array<[string, string | undefined]> = [];
    hub.subscribe('session/', (k) => seen.push(['s', k]));
    hub.subscribe('', (k) => seen.push(['all', k]));
    const off = hub.subscribe('profile/alice/', (k) => seen.push(['a', k]));
    hub.emit(['session/x', 'profile/alice2/conn/p/c', 'profile/alice/conn/p/c']);
    off();
    hub.emit(['profile/alice/default/p']);
    expect(seen).toEqual([
      ['s', 'session/x'],
      ['all', 'session/x'],
      ['all', 'profile/alice2/conn/p/c'],
      ['all', 'profile/alice/conn/p/c'],
      ['a', 'profile/alice/conn/p/c'],
      ['all', 'profile/alice/default/p'],
    ]);
  });

  it('coming back up tells every subscriber that anything may have changed, before up is true', () => {
    const hub = new FeedHub(true);
    const log: string[] = [];
    hub.subscribe('session/', (k) => log.push(`change ${String(k)} while up=${hub.up}`));
    hub.onStatus((up) => log.push(`status ${up}`));
    hub.setUp(false);
    hub.setUp(false); // no repeat
    hub.setUp(true);
    expect(log).toEqual(['status false', 'change undefined while up=false', 'status true']);
  });

  it('a listener that throws does not keep the others from hearing', () => {
    const hub = new FeedHub(true);
    const seen: string[] = [];
    hub.subscribe('', () => {
      throw new Error('bad cache');
    });
    hub.subscribe('', (k) => seen.push(String(k)));
    hub.emit(['a/b']);
    expect(seen).toEqual(['a/b']);
  });
});

describe('FeedCache', () => {
  const loader = () => {
    const calls: string[] = [];
    let n = 0;
    return { calls, load: async (k: string) => (calls.push(k), `${k}#${++n}`) };
  };

  it('answers from memory while the feed is up, and drops what the feed says changed', async () => {
    const hub = new FeedHub(true);
    const cache = new FeedCache<string>(hub, 'session/');
    const { calls, load } = loader();
    expect(await cache.get('session/a', load)).toBe('session/a#1');
    expect(await cache.get('session/a', load)).toBe('session/a#1');
    hub.emit(['session/a']);
    expect(await cache.get('session/a', load)).toBe('session/a#2');
    await cache.get('session/b', load);
    hub.emit(['provider/x']); // not under the prefix
    expect(await cache.get('session/b', load)).toBe('session/b#3');
    hub.setUp(false);
    hub.setUp(true); // anything may have changed
    expect(await cache.get('session/b', load)).toBe('session/b#4');
    expect(calls).toEqual(['session/a', 'session/a', 'session/b', 'session/b']);
  });

  it('reads through while the feed is down, and does not keep what it read then', async () => {
    const hub = new FeedHub(true);
    const cache = new FeedCache<string>(hub, '');
    const { calls, load } = loader();
    await cache.get('k/1', load);
    hub.setUp(false);
    await cache.get('k/1', load);
    await cache.get('k/1', load);
    expect(cache.size).toBe(1);
    expect(calls).toHaveLength(3);
  });

  it('does not store a value whose load overlapped a change (the revoke race)', async () => {
    const hub = new FeedHub(true);
    const cache = new FeedCache<string>(hub, 'session/');
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const slow = cache.get('session/a', async () => {
      await gate;
      return 'stale';
    });
    hub.emit(['session/a']); // the revoke commits while the read is in flight
    release();
    expect(await slow).toBe('stale'); // this caller gets what it read...
    expect(await cache.get('session/a', async () => 'fresh')).toBe('fresh'); // ...nobody else does
  });

  it('stays within its bound', async () => {
    const cache = new FeedCache<number>(new FeedHub(true), '', 3);
    for (let i = 0; i < 10; i++) await cache.get(`k/${i}`, async () => i);
    expect(cache.size).toBe(3);
    expect(await cache.get('k/9', async () => -1)).toBe(9);
    expect(await cache.get('k/0', async () => -1)).toBe(-1);
  });
});

describe('the LevelDB store feed (in-process, always up)', () => {
  const dirs: string[] = [];
  const opened: OpenedStore[] = [];
  afterEach(async () => {
    for (const o of opened.splice(0)) await o.close();
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });

  it('reports each durable write, batch and delete by key, by the time the write resolves', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'authsome-feed-'));
    dirs.push(dir);
    const s = await openStore(
      {
        paths: { kvStore: dir },
        store: { url: undefined, passwordFile: undefined, password: undefined, caFile: undefined },
      },
      new Uint8Array(32).fill(7),
    );
    opened.push(s);
    expect(s.engine).toBe('level');
    expect(s.pg).toBeUndefined();
    expect(s.feed.up).toBe(true);
    const seen: Array<string | undefined> = [];
    s.feed.subscribe('profile/alice/', (k) => seen.push(k));
    await s.store.put(conn, { t: 1 });
    expect(seen).toEqual([conn]);
    await s.store.batch([
      { type: 'put', key: 'profile/alice/default/github', value: { c: 'work' } },
      { type: 'del', key: conn },
      { type: 'put', key: 'registry/alice', value: {} },
    ]);
    await s.store.del('profile/alice/default/github');
    expect(seen).toEqual([conn, 'profile/alice/default/github', conn, 'profile/alice/default/github']);
    // A write that fails is not reported.
    await expect(s.store.put('', {})).rejects.toThrow(TypeError);
    expect(seen).toHaveLength(4);
  });
});

describe.skipIf(!hasPg)('the PostgreSQL change feed (LISTEN/NOTIFY)', () => {
  const fx = pgEngine();
  /** Two nodes on one database (one schema), as two daemons would be. */
  async function twoNodes(): Promise<{ schema: string; a: PgStore; b: PgStore }> {
    const schema = await fx.place();
    const key = fx.key();
    const feed = { pingMs: 200, initialBackoffMs: 50, maxBackoffMs: 200 };
    const a = await fx.openPg(schema, key, { feed });
    const b = await fx.openPg(schema, key, { feed, mode: 'open' });
    expect([a.feed.up, b.feed.up]).toEqual([true, true]);
    return { schema, a, b };
  }

  it("a write through one node reaches the other's subscribers within 1 s: put, delete, batch", async () => {
    const { a, b } = await twoNodes();
    const session = sessionKey('ab'.repeat(32));
    let hearing = heard(b.feed, 'session/', (k) => k === session);
    await a.store.put(session, { profile: 'alice' });
    expect(await hearing).toBe(session);

    hearing = heard(b.feed, 'session/', (k) => k === session);
    await a.store.del(session);
    expect(await hearing).toBe(session);

    const other: string[] = [];
    b.feed.subscribe('provider/', (k) => other.push(String(k)));
    const keys = [conn, 'profile/alice/default/github'];
    const both = Promise.all(keys.map((k) => heard(b.feed, 'profile/alice/', (got) => got === k)));
    await a.store.batch(keys.map((key) => ({ type: 'put' as const, key, value: { x: 1 } })));
    expect(await both).toEqual(keys);
    expect(other).toEqual([]); // nothing under provider/ changed
  });

  it('a batch too big for one notification says "anything may have changed"', async () => {
    const { a, b } = await twoNodes();
    const keys = Array.from({ length: 150 }, (_, i) => sessionKey(i.toString(16).padStart(64, '0')));
    const hearing = heard(b.feed, 'session/', (k) => k === undefined);
    await a.store.batch(keys.map((key) => ({ type: 'put' as const, key, value: {} })));
    expect(await hearing).toBeUndefined();
  });

  it('hears changes made behind the daemons’ backs (an operator restoring or deleting rows)', async () => {
    const { schema, a, b } = await twoNodes();
    await a.store.put(conn, { t: 1 });
    const hearing = heard(b.feed, 'profile/', (k) => k === conn);
    await fx.schemas.admin(`DELETE FROM ${schema}.authsome_kv WHERE k = $1`, [Buffer.from(conn)]);
    expect(await hearing).toBe(conn);
    const truncated = heard(b.feed, '', (k) => k === undefined);
    await fx.schemas.admin(`TRUNCATE ${schema}.authsome_kv`);
    expect(await truncated).toBeUndefined();
  });

  it('goes down when its connection is killed, reads through meanwhile, and comes back with "anything changed"', async () => {
    const { schema, a, b } = await twoNodes();
    const cache = new FeedCache<unknown>(b.feed, 'profile/');
    await a.store.put(conn, { v: 1 });
    expect(await cache.get(conn, (k) => b.store.get(k))).toEqual({ v: 1 });

    const down = status(b.feed, false);
    const everything = heard(b.feed, 'profile/', (k) => k === undefined, 10_000);
    const up = status(b.feed, true);
    const killed = await fx.schemas.admin<{ n: number }>(
      'SELECT count(pg_terminate_backend(pid))::int AS n FROM pg_stat_activity WHERE application_name = $1',
      [`authsome-feed ${schema}`],
    );
    expect(killed.rows[0]?.n).toBe(2); // both nodes' feeds
    await down;
    // A write made while b's feed is down (its notification to b is lost) is still seen through
    // b's cache: it reads through while down, and was told "anything changed" on the way back up.
    await a.store.put(conn, { v: 2 });
    expect(await cache.get(conn, (k) => b.store.get(k))).toEqual({ v: 2 });
    await everything;
    await up;
    expect(b.feed.up).toBe(true);
    // Working again across nodes.
    const hearing = heard(b.feed, 'profile/', (k) => k === conn);
    await a.store.put(conn, { v: 3 });
    expect(await hearing).toBe(conn);
    expect(await cache.get(conn, (k) => b.store.get(k))).toEqual({ v: 3 });
  });

  it("tells its own node's subscribers about its writes at once, without waiting for the notification", async () => {
    const { a } = await twoNodes();
    const seen: Array<string | undefined> = [];
    a.feed.subscribe('profile/', (k) => seen.push(k));
    await a.store.put(conn, { v: 1 });
    expect(seen[0]).toBe(conn);
  });
});
