import { createHash } from 'node:crypto';
import { beforeEach, describe, expect, it } from 'vitest';
import { AppError } from '../../../src/errors.js';
import { SessionStore, narrowAllow } from '../../../src/identity/index.js';
import { MemoryKvStore } from './memory-store.js';

const T0 = 1_800_000_000_000;
const HOUR = 3_600_000;

let store: MemoryKvStore;
let clock: { now: number };
let sessions: SessionStore;
beforeEach(() => {
  store = new MemoryKvStore();
  clock = { now: T0 };
  sessions = new SessionStore(store, { clock: () => clock.now, maxTtlMs: 720 * HOUR });
});

/** Counts store reads, to see the verify cache at work. */
function countGets(s: MemoryKvStore): { n: number } {
  const c = { n: 0 };
  const get = s.get.bind(s);
  s.get = (k) => {
    c.n++;
    return get(k);
  };
  return c;
}

async function fails(p: Promise<unknown>, code: string): Promise<AppError> {
  const e = await p.then(
    () => expect.unreachable('should have failed'),
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(AppError);
  expect((e as AppError).code).toBe(code);
  return e as AppError;
}

describe('session tokens', () => {
  it('mints a 256-bit token that verifies for its profile', async () => {
    const m = await sessions.mint({
      profile: 'alice',
      ttlMs: HOUR,
      allow: [{ provider: 'github' }, { provider: 'openai', connection: 'work' }],
      label: 'ci',
    });
    expect(Buffer.from(m.token, 'base64url')).toHaveLength(32);
    expect(m.expiresAt).toBe(T0 + HOUR);
    const hash = createHash('sha256').update(m.token).digest('hex');
    expect(m.id).toBe(hash.slice(0, 16));
    expect(await sessions.verify('alice', m.token)).toEqual({
      id: m.id,
      profile: 'alice',
      allow: [{ provider: 'github' }, { provider: 'openai', connection: 'work' }],
      expiresAt: T0 + HOUR,
    });
    const open = await sessions.mint({ profile: 'alice', ttlMs: HOUR });
    expect((await sessions.verify('alice', open.token))?.allow).toBeUndefined();
  });

  it('a doctor probe session says so when verified and when revoked; others do not', async () => {
    const probe = await sessions.mint({ profile: 'alice', ttlMs: HOUR, probe: true });
    const plain = await sessions.mint({ profile: 'alice', ttlMs: HOUR });
    expect((await sessions.verify('alice', probe.token))?.probe).toBe(true);
    expect(await sessions.verify('alice', plain.token)).not.toHaveProperty('probe');
    expect((await sessions.revoke('alice', probe.id)).probe).toBe(true);
    expect((await sessions.revoke('alice', plain.id)).probe).toBeUndefined();
  });

  it('stores only the hash: the token appears nowhere in the store', async () => {
    const m = await sessions.mint({ profile: 'alice', ttlMs: HOUR });
    const hash = createHash('sha256').update(m.token).digest('hex');
    expect([...store.data.keys()]).toEqual([`session/${hash}`]);
    const dump = store.dump();
    for (const form of [
      m.token,
      Buffer.from(m.token, 'base64url').toString('hex'),
      Buffer.from(m.token, 'base64url').toString('base64'),
      encodeURIComponent(m.token),
    ]) {
      expect(dump).not.toContain(form);
    }
    expect(await store.get(`session/${hash}`)).toEqual({
      id: m.id,
      profile: 'alice',
      allow: null,
      expiresAt: T0 + HOUR,
      createdAt: T0,
      label: null,
    });
  });

  it('gives one answer for a wrong token, a wrong handle, garbage and expiry', async () => {
    const m = await sessions.mint({ profile: 'alice', ttlMs: HOUR });
    const other = Buffer.alloc(32, 7).toString('base64url');
    expect(await sessions.verify('alice', other)).toBeUndefined();
    expect(await sessions.verify('bob', m.token)).toBeUndefined();
    expect(await sessions.verify('alice', `${m.token}x`)).toBeUndefined();
    expect(await sessions.verify('alice', '')).toBeUndefined();
    expect(await sessions.verify('alice', m.token)).toBeDefined();
    clock.now = T0 + HOUR; // cached a moment ago, but expiry is checked on every call
    expect(await sessions.verify('alice', m.token)).toBeUndefined();
  });

  it('caches verified sessions briefly, and revoke drops the cached answer at once', async () => {
    const gets = countGets(store);
    const m = await sessions.mint({ profile: 'alice', ttlMs: HOUR });
    await sessions.verify('alice', m.token);
    await sessions.verify('alice', m.token);
    expect(gets.n).toBe(1);
    clock.now += 5_001;
    await sessions.verify('alice', m.token);
    expect(gets.n).toBe(2);
    await sessions.revoke('alice', m.id);
    expect(await sessions.verify('alice', m.token)).toBeUndefined();
  });

  it('does not re-cache a session whose verify raced with its revocation', async () => {
    const m = await sessions.mint({ profile: 'alice', ttlMs: HOUR });
    const get = store.get.bind(store);
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    store.get = async (k) => {
      const v = await get(k); // read before the delete...
      await gate; // ...answer after it
      return v;
    };
    const inflight = sessions.verify('alice', m.token);
    await sessions.revoke('alice', m.id);
    release();
    await inflight;
    store.get = get;
    expect(await sessions.verify('alice', m.token)).toBeUndefined();
  });

  it('lets no other profile revoke or list it; not-found and not-yours look the same', async () => {
    const m = await sessions.mint({ profile: 'alice', ttlMs: HOUR, label: 'laptop' });
    const notYours = await fails(sessions.revoke('bob', m.id), 'ERR_SESSION_NOT_FOUND');
    const notFound = await fails(sessions.revoke('alice', '0000000000000000'), 'ERR_SESSION_NOT_FOUND');
    expect(notYours.message).toBe(notFound.message);
    expect(await sessions.list('bob')).toEqual([]);
    expect(await sessions.verify('alice', m.token)).toBeDefined();
    const listed = await sessions.list('alice');
    expect(listed).toEqual([
      { id: m.id, profile: 'alice', allow: undefined, expiresAt: T0 + HOUR, createdAt: T0, label: 'laptop' },
    ]);
    expect(JSON.stringify(listed)).not.toContain(m.token);
  });

  it('survives a daemon restart (a new SessionStore on the same store)', async () => {
    const m = await sessions.mint({ profile: 'alice', ttlMs: HOUR });
    const restarted = new SessionStore(store, { clock: () => clock.now });
    expect(await restarted.verify('alice', m.token)).toMatchObject({ id: m.id, profile: 'alice' });
  });

  it('revokeAll is per profile; purgeExpired removes only the dead', async () => {
    const a1 = await sessions.mint({ profile: 'alice', ttlMs: HOUR });
    const a2 = await sessions.mint({ profile: 'alice', ttlMs: 2 * HOUR });
    const b = await sessions.mint({ profile: 'bob', ttlMs: HOUR });
    await sessions.verify('alice', a1.token);
    expect(await sessions.revokeAll('alice')).toBe(2);
    expect(await sessions.verify('alice', a1.token)).toBeUndefined();
    expect(await sessions.verify('alice', a2.token)).toBeUndefined();
    expect(await sessions.verify('bob', b.token)).toBeDefined();
    const b2 = await sessions.mint({ profile: 'bob', ttlMs: 3 * HOUR });
    clock.now = T0 + HOUR;
    expect(await sessions.purgeExpired()).toBe(1);
    expect((await sessions.list('bob')).map((s) => s.id)).toEqual([b2.id]);
  });

  it('refuses bad mint input', async () => {
    await fails(sessions.mint({ profile: 'Alice', ttlMs: HOUR }), 'ERR_NAME_INVALID');
    await fails(sessions.mint({ profile: 'alice', ttlMs: 0 }), 'ERR_INPUT_INVALID');
    await fails(sessions.mint({ profile: 'alice', ttlMs: 1.5 }), 'ERR_INPUT_INVALID');
    await fails(sessions.mint({ profile: 'alice', ttlMs: 721 * HOUR }), 'ERR_INPUT_INVALID');
    await fails(
      sessions.mint({ profile: 'alice', ttlMs: HOUR, allow: [{ provider: 'Git Hub' }] }),
      'ERR_INPUT_INVALID',
    );
    await fails(sessions.mint({ profile: 'alice', ttlMs: HOUR, label: 'a\nb' }), 'ERR_INPUT_INVALID');
    expect(store.data.size).toBe(0);
  });

  it('treats a malformed stored record as no session', async () => {
    const m = await sessions.mint({ profile: 'alice', ttlMs: HOUR });
    const key = [...store.data.keys()][0]!;
    await store.put(key, {
      id: 'x',
      profile: 'alice',
      allow: 'everything',
      expiresAt: T0 + HOUR,
      createdAt: T0,
      label: null,
    });
    expect(
      await new SessionStore(store, { clock: () => clock.now }).verify('alice', m.token),
    ).toBeUndefined();
  });
});

describe('sessions are bound to the profile key they were minted under (issue 18 item 5)', () => {
  it('a profile deleted and created again with a new key does not inherit the old sessions', async () => {
    const keys = new Map<string, string>([['tmp', 'key-one']]);
    const s = new SessionStore(store, {
      clock: () => clock.now,
      maxTtlMs: 720 * HOUR,
      profileKey: async (h) => keys.get(h),
    });
    const old = await s.mint({ profile: 'tmp', ttlMs: HOUR });
    expect(await s.verify('tmp', old.token)).toMatchObject({ profile: 'tmp' });
    // Created again under the same name, with a new key: the cached answer is not trusted past its
    // window, and the stored record no longer proves anything.
    keys.set('tmp', 'key-two');
    clock.now += 10_000;
    expect(await s.verify('tmp', old.token)).toBeUndefined();
    const fresh = await s.mint({ profile: 'tmp', ttlMs: HOUR });
    expect(await s.verify('tmp', fresh.token)).toMatchObject({ profile: 'tmp' });
    keys.delete('tmp');
    await fails(s.mint({ profile: 'tmp', ttlMs: HOUR }), 'ERR_PROFILE_NOT_FOUND');
  });

  it('revocations move the epoch and reach the listeners after they are durable', async () => {
    const seen: string[] = [];
    sessions.onRevoke((r) => seen.push(...r.map((x) => `${x.profile}/${x.id}`)));
    const a = await sessions.mint({ profile: 'alice', ttlMs: HOUR });
    const e0 = sessions.epoch();
    await sessions.revoke('alice', a.id);
    expect(sessions.epoch()).toBeGreaterThan(e0);
    expect(seen).toEqual([`alice/${a.id}`]);
    expect(await store.get(`session/${createHash('sha256').update(a.token).digest('hex')}`)).toBeUndefined();
  });
});

describe('narrowAllow (a session inside another, issue 18 item 6)', () => {
  it.each([
    [undefined, undefined, undefined],
    [undefined, [{ provider: 'a' }], [{ provider: 'a' }]],
    [[{ provider: 'a' }], undefined, [{ provider: 'a' }]],
    [[{ provider: 'a' }, { provider: 'b' }], [{ provider: 'b' }], [{ provider: 'b' }]],
    [[{ provider: 'a' }], [{ provider: 'a', connection: 'x' }], [{ provider: 'a', connection: 'x' }]],
    [[{ provider: 'a', connection: 'x' }], [{ provider: 'a' }], [{ provider: 'a', connection: 'x' }]],
  ])('parent %j, asked %j → %j', (parent, asked, want) => {
    expect(narrowAllow(parent, asked)).toEqual(want);
  });

  it.each([
    [[{ provider: 'a' }], [{ provider: 'b' }]],
    [[{ provider: 'a', connection: 'x' }], [{ provider: 'a', connection: 'y' }]],
  ])('parent %j refuses %j (never wider)', (parent, asked) => {
    expect(() => narrowAllow(parent, asked)).toThrow(expect.objectContaining({ code: 'ERR_AUTH_FORBIDDEN' }));
  });
});
