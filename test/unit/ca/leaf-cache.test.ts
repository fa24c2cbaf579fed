import { describe, expect, it } from 'vitest';
import { X509Certificate } from 'node:crypto';
import { LeafCache } from '../../../src/ca/leaf-cache.js';
import { makeTestCa } from '../../helpers/test-ca.js';

const DAY = 24 * 3600_000;

describe('LeafCache', () => {
  it('10 concurrent first requests for one host cost one mint', async () => {
    const cache = await LeafCache.create(await makeTestCa());
    const all = await Promise.all(
      Array.from({ length: 10 }, () => cache.secureContextFor('api.example.test')),
    );
    expect(cache.minted).toBe(1);
    expect(new Set(all).size).toBe(1);
    await cache.secureContextFor('api.example.test');
    expect(cache.minted).toBe(1);
  });

  it('the leaf names exactly that host, is short-lived, serverAuth only, signed by the CA', async () => {
    const ca = await makeTestCa();
    const cache = await LeafCache.create(ca);
    const now = Date.now();
    const leaf = await cache.leafFor('api.example.test');
    const cert = new X509Certificate(leaf.certPem);
    const caCert = new X509Certificate(ca.certPem);
    expect(cert.subjectAltName).toBe('DNS:api.example.test');
    expect(cert.ca).toBe(false);
    expect(cert.checkIssued(caCert)).toBe(true);
    expect(cert.verify(caCert.publicKey)).toBe(true);
    expect(cert.checkHost('api.example.test')).toBe('api.example.test');
    expect(cert.checkHost('x.api.example.test')).toBeUndefined();
    expect(cert.checkHost('example.test')).toBeUndefined();
    expect(cert.keyUsage).toEqual(['1.3.6.1.5.5.7.3.1']);
    expect(Date.parse(cert.validTo) - now).toBeLessThanOrEqual(7 * DAY + 1000);
    expect(Date.parse(cert.validTo) - now).toBeGreaterThan(7 * DAY - 60_000);
    expect(now - Date.parse(cert.validFrom)).toBeGreaterThanOrEqual(3600_000 - 1000);
    expect(cert.publicKey.asymmetricKeyType).toBe('ec');
    expect(cert.publicKey.asymmetricKeyDetails?.namedCurve).toBe('prime256v1');
  });

  it('one leaf key for all hosts; distinct serials', async () => {
    const cache = await LeafCache.create(await makeTestCa());
    const a = new X509Certificate((await cache.leafFor('a.example.test')).certPem);
    const b = new X509Certificate((await cache.leafFor('b.example.test')).certPem);
    expect(a.publicKey.export({ format: 'der', type: 'spki' })).toEqual(
      b.publicKey.export({ format: 'der', type: 'spki' }),
    );
    expect(a.serialNumber).not.toBe(b.serialNumber);
  });

  it('is bounded (least recently used dropped) and re-mints near expiry', async () => {
    let now = Date.now();
    const cache = await LeafCache.create(await makeTestCa(), { maxEntries: 2, now: () => now });
    await cache.leafFor('a.example.test');
    await cache.leafFor('b.example.test');
    await cache.leafFor('a.example.test'); // a is now most recent
    await cache.leafFor('c.example.test'); // evicts b
    expect(cache.size).toBe(2);
    expect(cache.minted).toBe(3);
    await cache.leafFor('a.example.test');
    expect(cache.minted).toBe(3);
    await cache.leafFor('b.example.test');
    expect(cache.minted).toBe(4);
    now += 6.5 * DAY; // within a day of notAfter
    await cache.leafFor('b.example.test');
    expect(cache.minted).toBe(5);
  });

  it('mints only for DNS names', async () => {
    const cache = await LeafCache.create(await makeTestCa());
    for (const bad of ['127.0.0.1', '[::1]', 'Api.Example.test', '', 'a..b', '*.example.test']) {
      await expect(cache.leafFor(bad)).rejects.toThrow(TypeError);
    }
    expect(cache.minted).toBe(0);
  });
});

describe('LeafCache.warm', () => {
  it('mints ahead of time and ignores names it cannot mint', async () => {
    const cache = await LeafCache.create(await makeTestCa());
    await cache.warm(['a.example.test', '*.wild.test', 'b.example.test']);
    expect(cache.minted).toBe(2);
    await cache.secureContextFor('a.example.test');
    expect(cache.minted).toBe(2);
  });
});
