import { createSecureContext } from 'node:tls';
import { afterEach, describe, expect, it } from 'vitest';
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
