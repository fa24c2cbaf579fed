import { describe, expect, it, vi } from 'vitest';
import { ConnectionService } from '../../../src/daemon/connections.js';
import { ProviderCatalog } from '../../../src/daemon/provider-catalog.js';
import { followRemoteChanges } from '../../../src/daemon/remote-changes.js';
import { PolicyService } from '../../../src/daemon/policies.js';
import { parsePolicy } from '../../../src/policy/index.js';
import { defaultNodeName } from '../../../src/daemon/node-name.js';
import { checkControlRequest } from '../../../src/daemon/control.js';
import { SessionStore } from '../../../src/identity/sessions.js';
import { FeedHub } from '../../../src/vault/change-feed.js';
import { memoryStore } from '../../../src/vault/memory-store.js';
import { def } from '../providers/fixtures.js';

/**
 * Team mode (SPEC section 10): every daemon cache drops what another node changed when the change feed
 * says so, and reads through to the store while the feed is down. The store is changed here behind the
 * caches' backs (as another node would), and the feed is a FeedHub driven by the test.
 */
const acme = def({ name: 'acme', hosts: [{ host: 'api.acme.example' }] });
const TOKEN_SHAPE = /^[A-Za-z0-9_-]{43}$/;

describe('SessionStore follows the change feed', () => {
  it('a session deleted elsewhere is refused once its change arrives, and at once while the feed is down', async () => {
    const store = memoryStore();
    const feed = new FeedHub(true);
    const sessions = new SessionStore(store, { feed });
    const { token } = await sessions.mint({ profile: 'alice', ttlMs: 60_000 });
    expect(token).toMatch(TOKEN_SHAPE);
    expect(await sessions.verify('alice', token)).toBeDefined(); // cached now
    const [key] = await store.keys('session/');
    await store.del(key!); // another node's revoke, not yet heard
    expect(await sessions.verify('alice', token)).toBeDefined(); // the cache still answers
    const epoch = sessions.epoch();
    feed.emit([key!]);
    expect(sessions.epoch()).toBeGreaterThan(epoch); // open connections verify again
    expect(await sessions.verify('alice', token)).toBeUndefined();

    const again = await sessions.mint({ profile: 'alice', ttlMs: 60_000 });
    expect(await sessions.verify('alice', again.token)).toBeDefined();
    feed.setUp(false);
    const [key2] = await store.keys('session/');
    await store.del(key2!); // unheard: the feed is down
    expect(await sessions.verify('alice', again.token)).toBeUndefined();
    // While down, the epoch moves on every look: no connection keeps an identity verified earlier.
    expect(sessions.epoch()).not.toBe(sessions.epoch());
  });
});

describe('ConnectionService follows the change feed', () => {
  it('a credential replaced elsewhere is dropped from the 30 s cache by its change; read through while down', async () => {
    const store = memoryStore();
    const feed = new FeedHub(true);
    const s = new ConnectionService(store, () => acme, { feed });
    await s.put('alice', 'acme', 'main', { api_key: 'k-1' }, 'api-key');
    const first = await s.resolve('alice', 'acme', undefined);
    expect(first?.fields['api_key']?.reveal()).toBe('k-1');
    // Another node writes a new key (directly in the store: this node's service does not know).
    const key = 'profile/alice/conn/acme/main';
    const rec = (await store.get(key))!;
    await store.put(key, { ...rec, fields: { api_key: 'k-2' } });
    expect((await s.resolve('alice', 'acme', undefined))?.fields['api_key']?.reveal()).toBe('k-1');
    feed.emit([key]);
    expect((await s.resolve('alice', 'acme', undefined))?.fields['api_key']?.reveal()).toBe('k-2');
    // Another profile's change leaves alice's entries alone; any change under profile/alice/ drops them.
    feed.setUp(false);
    await store.del(key);
    await store.del('profile/alice/default/acme');
    expect(await s.resolve('alice', 'acme', undefined)).toBeUndefined();
  });
});

describe('ProviderCatalog follows the change feed', () => {
  it('a custom provider added elsewhere is matched after its change arrives', async () => {
    const store = memoryStore();
    const feed = new FeedHub(true);
    const cat = await ProviderCatalog.open(store, feed);
    const dest = { host: 'api.remote.example', port: 443, path: '/' };
    expect(cat.match(dest)).toBeUndefined();
    const remote = def({ name: 'remote', hosts: [{ host: 'api.remote.example' }] });
    await store.put('provider/remote', { definition: { ...remote }, override: false });
    feed.emit(['provider/remote']);
    await vi.waitFor(() => expect(cat.match(dest)?.name).toBe('remote'));
    await store.del('provider/remote');
    feed.emit(['provider/remote']);
    await vi.waitFor(() => expect(cat.match(dest)).toBeUndefined());
    cat.close();
  });
});

describe('followRemoteChanges closes what a remote change took away', () => {
  it('sessions by id, profiles, removed (not rewritten) connections; a reconnect checks live sessions', async () => {
    const store = memoryStore();
    const feed = new FeedHub(true);
    const calls: string[] = [];
    const live = new Set(['aaaaaaaaaaaaaaaa', 'bbbbbbbbbbbbbbbb']);
    const stop = followRemoteChanges(feed, store, {
      closeSessions: (ids) => {
        for (const id of ids) calls.push(`session ${id}`);
        return 0;
      },
      closeProfile: (p) => (calls.push(`profile ${p}`), 0),
      closeCredential: (p, prov, c) => (calls.push(`credential ${p}/${prov}/${c}`), 0),
      liveSessions: () => [...live],
    });
    feed.emit([`session/${'a'.repeat(64)}`]);
    feed.emit(['registry/bob']);
    await store.put('profile/alice/conn/acme/kept', { fields: {} });
    feed.emit(['profile/alice/conn/acme/kept', 'profile/alice/conn/acme/gone']);
    await vi.waitFor(() => expect(calls).toContain('credential alice/acme/gone'));
    expect(calls).toEqual(['session aaaaaaaaaaaaaaaa', 'profile bob', 'credential alice/acme/gone']);
    // After the feed was down: b's record is still there, a's is not.
    calls.length = 0;
    await store.put(`session/${'b'.repeat(64)}`, { id: 'bbbbbbbbbbbbbbbb' });
    feed.setUp(false);
    feed.setUp(true);
    await vi.waitFor(() => expect(calls).toEqual(['session aaaaaaaaaaaaaaaa']));
    stop();
  });
});

describe('PolicyService follows the change feed', () => {
  it('a policy changed elsewhere applies once its change arrives, and at once while the feed is down', async () => {
    const base = memoryStore();
    let reads = 0;
    const store = { ...base, get: (k: string) => (reads++, base.get(k)) };
    const feed = new FeedHub(true);
    const audit = { append: async () => ({}) as never };
    const policies = new PolicyService(store, audit, {
      approvalTimeoutMs: 1000,
      maxHeld: 1,
      fresh: () => feed.up,
    });
    const facts = { provider: 'acme', connection: 'main', method: 'GET', path: '/x', exe: null };
    const deny = parsePolicy({ rules: [{ provider: 'acme', action: 'deny' }] });
    feed.subscribe('profile/', (key) =>
      key === undefined ? policies.invalidateAll() : policies.invalidate(key.split('/')[1]!),
    );
    expect((await policies.decide('alice', facts)).action).toBe('allow'); // "no policy", cached
    reads = 0;
    expect((await policies.decide('alice', facts)).action).toBe('allow');
    expect(reads).toBe(0);
    // Another node sets a policy: written straight to the store, not yet heard.
    await base.put('profile/alice/policy', { version: 1, policy: deny, setAt: 'x', setBy: 'owner' });
    expect((await policies.decide('alice', facts)).action).toBe('allow');
    feed.emit(['profile/alice/policy']);
    expect((await policies.decide('alice', facts)).action).toBe('deny');
    // The feed down: every request reads through (a clear made elsewhere applies at once).
    feed.setUp(false);
    await base.del('profile/alice/policy');
    reads = 0;
    expect((await policies.decide('alice', facts)).action).toBe('allow');
    await base.put('profile/alice/policy', { version: 1, policy: deny, setAt: 'x', setBy: 'owner' });
    expect((await policies.decide('alice', facts)).action).toBe('deny');
    expect(reads).toBe(2);
    // Back up: nothing from before the outage is trusted, and the cache serves again.
    feed.setUp(true);
    reads = 0;
    for (let i = 0; i < 5; i++) expect((await policies.decide('alice', facts)).action).toBe('deny');
    expect(reads).toBe(1);
  });
});

describe('team mode small rules', () => {
  it('default node names follow the name rule', () => {
    expect(defaultNodeName('Build-Host.Example.COM')).toBe('build-host.example.com');
    expect(defaultNodeName('__weird__ host!')).toBe('weird__-host');
    expect(defaultNodeName('---')).toBe('node');
    expect(defaultNodeName('x'.repeat(100))).toHaveLength(64);
  });

  it('the remote control listener takes any peer but only its own name in Host, and signs https URLs', () => {
    const raw = (host: string) => ['Host', host];
    expect(
      checkControlRequest('10.1.2.3', raw('node1.example.com:7998'), '/v1/status', 7998, 'node1.example.com'),
    ).toBe('https://node1.example.com:7998/v1/status');
    expect(() =>
      checkControlRequest('10.1.2.3', raw('evil.example:7998'), '/v1/status', 7998, 'node1.example.com'),
    ).toThrow(/foreign Host/);
    // The loopback listener still refuses a non-loopback peer.
    expect(() => checkControlRequest('10.1.2.3', raw('127.0.0.1:7998'), '/v1/status', 7998)).toThrow(
      /loopback/,
    );
  });
});
