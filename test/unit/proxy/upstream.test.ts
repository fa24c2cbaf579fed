import { createServer, type AddressInfo, type Socket } from 'node:net';
import { createSecureContext } from 'node:tls';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { ProxySettings } from '../../../src/config/settings.js';
import type { AddressPolicy } from '../../../src/proxy/address-policy.js';
import { parseAuthority } from '../../../src/proxy/destination.js';
import { Upstreams } from '../../../src/proxy/upstream.js';

// Pools dial only when a request is dispatched: these tests never reach the policy or the network.
const settings = {
  upstreamConnectTimeoutMs: 1_000,
  upstreamHeadersTimeoutMs: 1_000,
  upstreamBodyTimeoutMs: 1_000,
} as ProxySettings;
const noDial = {
  resolve: () => Promise.reject(new Error('no dial in this test')),
} as unknown as AddressPolicy;

describe('Upstreams pool cap', () => {
  let ups: Upstreams | undefined;
  afterEach(async () => {
    await ups?.close();
    ups = undefined;
  });

  const api = parseAuthority('api.example.com:443');
  const owner = (profile: string, connection?: string) => ({ profile, connection });

  it('gives one owner the same pool for the same destination, and other owners their own', () => {
    ups = new Upstreams(settings, noDial, createSecureContext(), 8);
    const a = ups.pool(api, true, owner('alice', 'work'));
    expect(ups.pool(api, true, owner('alice', 'work'))).toBe(a);
    expect(ups.pool(api, true, owner('alice', 'personal'))).not.toBe(a);
    expect(ups.pool(api, true, owner('bob', 'work'))).not.toBe(a);
    expect(ups.pool(api, false, owner('alice', 'work'))).not.toBe(a);
    // Two providers on one host, each with a connection named "work".
    const viaA = ups.pool(api, true, { profile: 'alice', provider: 'acme', connection: 'work' });
    expect(ups.pool(api, true, { profile: 'alice', provider: 'acme', connection: 'work' })).toBe(viaA);
    expect(ups.pool(api, true, { profile: 'alice', provider: 'acme-admin', connection: 'work' })).not.toBe(
      viaA,
    );
  });

  it('closes the least recently used pool at the cap, not the oldest created', async () => {
    ups = new Upstreams(settings, noDial, createSecureContext(), 2);
    const first = ups.pool(api, true, owner('alice', 'work'));
    const second = ups.pool(api, true, owner('bob', 'work'));
    expect(ups.pool(api, true, owner('alice', 'work'))).toBe(first); // alice used again: bob is LRU
    const third = ups.pool(api, true, owner('carol', 'work'));
    await new Promise((r) => setImmediate(r));
    expect(second.closed).toBe(true);
    expect(first.closed).toBe(false);
    expect(third.closed).toBe(false);
    expect(ups.pool(api, true, owner('alice', 'work'))).toBe(first);
    // bob's next request gets a new, open pool (and now carol's is the least recently used).
    const again = ups.pool(api, true, owner('bob', 'work'));
    expect(again).not.toBe(second);
    expect(again.closed).toBe(false);
    await new Promise((r) => setImmediate(r));
    expect(third.closed).toBe(true);
  });
});

describe('Upstreams.close', () => {
  it('also ends a pool evicted at the cap while it still had a request in flight', async () => {
    // An upstream that accepts and never answers: the evicted pool's request stays in flight.
    const held = new Set<Socket>();
    const server = createServer((s) => held.add(s));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as AddressInfo).port;
    const toServer = { resolve: async () => ({ address: '127.0.0.1', port }) } as unknown as AddressPolicy;
    const ups = new Upstreams(settings, toServer, createSecureContext(), 1);
    try {
      const plain = parseAuthority(`hold.example:${port}`);
      const first = ups.pool(plain, false, { profile: 'alice', connection: undefined });
      const answered = first
        .request({ origin: `http://hold.example:${port}`, path: '/', method: 'GET' })
        .then(
          () => 'answered',
          (e: Error) => `failed: ${e.name}`,
        );
      await vi.waitFor(() => expect(held.size).toBe(1));
      ups.pool(plain, false, { profile: 'bob', connection: undefined }); // evicts alice's pool
      await ups.close();
      expect(await answered).toMatch(/^failed/);
    } finally {
      for (const s of held) s.destroy();
      await new Promise((r) => server.close(r));
    }
  });
});
