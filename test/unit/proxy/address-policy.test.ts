import { describe, expect, it } from 'vitest';
import { AddressPolicy, isForbiddenAddress } from '../../../src/proxy/address-policy.js';
import { parseAuthority } from '../../../src/proxy/destination.js';

describe('isForbiddenAddress', () => {
  it.each([
    '127.0.0.1',
    '10.1.2.3',
    '172.16.0.1',
    '192.168.1.1',
    '169.254.169.254',
    '100.64.0.1',
    '0.0.0.0',
    '224.0.0.1',
    '::1',
    '::',
    'fe80::1',
    'fc00::1',
    'fd00:ec2::254',
    '::ffff:127.0.0.1',
    '64:ff9b::7f00:1',
    '64:ff9b::10.0.0.1',
    '64:ff9b:1::1',
    '::127.0.0.1',
    '2002:7f00:1::1',
    '2001:0:4136:e378::1',
    'fec0::1',
    'not-an-ip',
  ])('refuses %s', (a) => expect(isForbiddenAddress(a)).toBe(true));
  it.each([
    '93.184.216.34',
    '8.8.8.8',
    '2606:4700::1111',
    '::ffff:8.8.8.8',
    '64:ff9b::808:808',
    '64:ff9b::8.8.4.4',
  ])('allows %s', (a) => expect(isForbiddenAddress(a)).toBe(false));
});

describe('AddressPolicy', () => {
  const self = [
    { host: '127.0.0.1', port: 7999 },
    { host: '127.0.0.1', port: 7998 },
  ];
  const policy = (answers: string[], pins: Record<string, string> = {}) =>
    new AddressPolicy({
      resolve: new Map(Object.entries(pins)),
      selfAddresses: () => self,
      lookup: async () => answers.map((address) => ({ address, family: address.includes(':') ? 6 : 4 })),
    });

  it('dials the address it checked', async () => {
    expect(await policy(['93.184.216.34']).resolve(parseAuthority('a.example:443'))).toEqual({
      address: '93.184.216.34',
      port: 443,
      pinned: false,
    });
  });

  it('refuses names resolving to internal addresses, also when mixed with public ones', async () => {
    await expect(policy(['10.0.0.1']).resolve(parseAuthority('a.example:443'))).rejects.toMatchObject({
      code: 'ERR_PROXY_DESTINATION_DENIED',
    });
    await expect(
      policy(['93.184.216.34', '169.254.169.254']).resolve(parseAuthority('a.example:443')),
    ).rejects.toMatchObject({ code: 'ERR_PROXY_DESTINATION_DENIED' });
  });

  it('an operator pin wins over the filter, not over the loop check', async () => {
    const p = policy([], {
      'a.example:443': '127.0.0.1:8443',
      'b.example:443': '127.0.0.1:7998',
      'c.example:443': '[::1]:9',
    });
    expect(await p.resolve(parseAuthority('a.example:443'))).toEqual({
      address: '127.0.0.1',
      port: 8443,
      pinned: true,
    });
    expect(await p.resolve(parseAuthority('c.example:443'))).toEqual({
      address: '::1',
      port: 9,
      pinned: true,
    });
    await expect(p.resolve(parseAuthority('b.example:443'))).rejects.toMatchObject({
      code: 'ERR_PROXY_LOOP',
    });
    expect(() => p.precheck(parseAuthority('b.example:443'))).toThrow(
      expect.objectContaining({ code: 'ERR_PROXY_LOOP' }),
    );
  });

  it('refuses its own listeners by any loopback spelling', async () => {
    const p = policy(['127.0.0.1']);
    expect(() => p.precheck(parseAuthority('127.0.0.1:7999'))).toThrow(
      expect.objectContaining({ code: 'ERR_PROXY_LOOP' }),
    );
    expect(() => p.precheck(parseAuthority('127.0.0.2:7998'))).toThrow(
      expect.objectContaining({ code: 'ERR_PROXY_LOOP' }),
    );
    expect(() => p.precheck(parseAuthority('[::1]:7999'))).toThrow(
      expect.objectContaining({ code: 'ERR_PROXY_LOOP' }),
    );
    await expect(p.resolve(parseAuthority('localhost:7999'))).rejects.toMatchObject({
      code: 'ERR_PROXY_LOOP',
    });
  });

  it('pins never reach the daemon, whatever spelling they use (mapped, unspecified)', async () => {
    for (const pin of [
      '[::ffff:127.0.0.1]:7998',
      '0.0.0.0:7998',
      '[::]:7999',
      '127.1.2.3:7999',
      '[::ffff:7f00:1]:7998',
    ]) {
      const p = policy([], { 'ctl.example.com:443': pin });
      expect(() => p.precheck(parseAuthority('ctl.example.com:443')), pin).toThrow(
        expect.objectContaining({ code: 'ERR_PROXY_LOOP' }),
      );
      await expect(p.resolve(parseAuthority('ctl.example.com:443'))).rejects.toMatchObject({
        code: 'ERR_PROXY_LOOP',
      });
    }
  });

  it('a failed lookup is 502', async () => {
    const p = new AddressPolicy({
      resolve: new Map(),
      selfAddresses: () => [],
      lookup: async () => Promise.reject(Object.assign(new Error('x'), { code: 'ENOTFOUND' })),
    });
    await expect(p.resolve(parseAuthority('nx.example:443'))).rejects.toMatchObject({
      code: 'ERR_UPSTREAM_FAILED',
    });
  });
});
