import { describe, expect, it } from 'vitest';
import { isAppError } from '../../../src/errors.js';
import { UiSessionStore } from '../../../src/daemon/ui-sessions.js';
import { memoryStore } from '../../../src/vault/index.js';
import type { KvStore } from '../../../src/vault/types.js';

const code = (p: Promise<unknown>) =>
  p.then(
    () => 'ok',
    (e: unknown) => (isAppError(e) ? e.code : String(e)),
  );

function setup(store: KvStore = memoryStore(), node = 'local') {
  const clock = { now: 1_000_000 };
  const keys: Record<string, string | undefined> = { me: 'key-me', agent: 'key-agent' };
  const s = new UiSessionStore(store, { node, now: () => clock.now, profileKey: async (h) => keys[h] });
  return { s, clock, keys, store };
}

describe('dashboard links and cookie sessions (SPEC 11)', () => {
  it('a link works once: a second exchange, or a race of two, gets one session', async () => {
    const { s } = setup();
    const { token } = await s.mintLink('me');
    const [a, b] = await Promise.all([code(s.exchange(token)), code(s.exchange(token))]);
    expect([a, b].sort()).toEqual(['ERR_UI_SESSION_INVALID', 'ok']);
    expect(await code(s.exchange(token))).toBe('ERR_UI_SESSION_INVALID');
  });

  it('a link expires after 60 s, and --ttl only shortens it', async () => {
    const { s, clock } = setup();
    const late = await s.mintLink('me');
    const short = await s.mintLink('me', 5_000);
    const long = await s.mintLink('me', 3_600_000);
    expect(long.expiresAt - clock.now).toBe(60_000);
    clock.now += 5_000;
    expect(await code(s.exchange(short.token))).toBe('ERR_UI_SESSION_INVALID');
    clock.now += 55_000;
    expect(await code(s.exchange(late.token))).toBe('ERR_UI_SESSION_INVALID');
  });

  it('malformed and unknown tokens are refused alike', async () => {
    const { s } = setup();
    for (const t of [undefined, 42, '', 'x'.repeat(43), 'short', `${'a'.repeat(43)}\n`])
      expect(await code(s.exchange(t))).toBe('ERR_UI_SESSION_INVALID');
  });

  it('a link for a profile that does not exist is refused; one whose profile was re-made is dead', async () => {
    const { s, keys } = setup();
    expect(await code(s.mintLink('ghost'))).toBe('ERR_PROFILE_NOT_FOUND');
    const { token } = await s.mintLink('agent');
    keys['agent'] = 'a-new-key';
    expect(await code(s.exchange(token))).toBe('ERR_UI_SESSION_INVALID');
  });

  it('the cookie names a session of the profile, stored only as a hash, for 12 h', async () => {
    const { s, clock, store } = setup();
    const { cookie, session } = await s.exchange((await s.mintLink('me')).token);
    expect(session.profile).toBe('me');
    expect(session.expiresAt - session.createdAt).toBe(12 * 3_600_000);
    const keys = await store.keys('ui/');
    expect(keys).toHaveLength(1);
    expect(keys[0]).toMatch(/^ui\/session\/[0-9a-f]{64}$/);
    expect(JSON.stringify(await store.list('ui/'))).not.toContain(cookie);
    expect((await s.verify(cookie))?.id).toBe(session.id);
    expect(await s.verify(`${cookie.slice(0, -1)}${cookie.endsWith('A') ? 'B' : 'A'}`)).toBeUndefined();
    clock.now = session.expiresAt;
    expect(await s.verify(cookie)).toBeUndefined();
    expect(await store.keys('ui/')).toEqual([]); // an expired session is deleted when seen
  });

  it('a session dies with its profile (deleted, or made again with a new key), and at logout', async () => {
    const { s, keys } = setup();
    const a = await s.exchange((await s.mintLink('agent')).token);
    const b = await s.exchange((await s.mintLink('me')).token);
    keys['agent'] = undefined;
    expect(await s.verify(a.cookie)).toBeUndefined();
    expect(await s.revoke(b.cookie)).toBe(true);
    expect(await s.verify(b.cookie)).toBeUndefined();
    expect(await s.revoke(b.cookie)).toBe(false);
  });

  it('CSRF: only the session token itself matches', async () => {
    const { s } = setup();
    const { session } = await s.exchange((await s.mintLink('me')).token);
    expect(UiSessionStore.csrfMatches(session, session.csrf)).toBe(true);
    expect(UiSessionStore.csrfMatches(session, undefined)).toBe(false);
    expect(UiSessionStore.csrfMatches(session, '')).toBe(false);
    expect(UiSessionStore.csrfMatches(session, session.csrf.slice(1))).toBe(false);
    expect(UiSessionStore.csrfMatches(session, `${session.csrf}x`)).toBe(false);
  });

  it('a daemon that stops deletes the sessions it issued; another node sharing the store keeps its own', async () => {
    const store = memoryStore();
    const a = setup(store, 'node-a');
    const b = setup(store, 'node-b');
    const fromA = await a.s.exchange((await a.s.mintLink('me')).token);
    const fromB = await b.s.exchange((await b.s.mintLink('me')).token);
    // Team mode: every node accepts every node's sessions (the store is shared).
    expect(await b.s.verify(fromA.cookie)).toBeDefined();
    expect(await a.s.stop()).toBe(1);
    expect(await b.s.verify(fromA.cookie)).toBeUndefined();
    expect(await a.s.verify(fromB.cookie)).toBeDefined();
  });

  it("a daemon that starts deletes what its node left behind (a crash), and expired sessions; not other nodes'", async () => {
    const store = memoryStore();
    const crashed = setup(store, 'node-a');
    const other = setup(store, 'node-b');
    const left = await crashed.s.exchange((await crashed.s.mintLink('me')).token);
    const kept = await other.s.exchange((await other.s.mintLink('me')).token);
    const again = setup(store, 'node-a');
    expect(await again.s.start()).toBe(1);
    expect(await again.s.verify(left.cookie)).toBeUndefined();
    expect(await again.s.verify(kept.cookie)).toBeDefined();
    // A damaged record is no session: a start removes it too.
    await store.put('ui/session/' + 'f'.repeat(64), { junk: true });
    expect(await again.s.start()).toBe(1);
  });
});
