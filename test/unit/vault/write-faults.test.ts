import { Level } from 'level';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { connectionKey } from '../../../src/vault/keys.js';
import { expectCode, useVaultFixtures } from './fixtures.js';

const a = connectionKey('alice', 'github', 'a');
const b = connectionKey('alice', 'github', 'b');
const c = connectionKey('alice', 'github', 'c');

function ioError(): Error {
  return Object.assign(new Error('IO error: 000003.log: No space left on device'), {
    code: 'LEVEL_IO_ERROR',
  });
}

/**
 * LevelDB keeps a partly appended log record when a write fails, and drops every later record with it
 * when the log is replayed: the store must not write behind a failed write without reopening first.
 * The real-disk version of this (a full tmpfs, then kill -9) is in test/faults/disk-full.test.ts.
 */
describe('vault store after a failed write', () => {
  const fx = useVaultFixtures();
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it('maps the LevelDB error to ERR_VAULT_UNAVAILABLE and reopens before the next operation', async () => {
    const store = await fx.open(fx.tmp());
    await store.put(a, { v: 1 });
    const put = vi.spyOn(Level.prototype, 'put').mockRejectedValueOnce(ioError());
    const open = vi.spyOn(Level.prototype, 'open');
    const close = vi.spyOn(Level.prototype, 'close');
    const e = await expectCode(store.put(b, { v: 2 }), 'ERR_VAULT_UNAVAILABLE');
    expect((e.cause as Error).message).toContain('No space left');
    expect(open).not.toHaveBeenCalled();
    // The next call, read or write, first reopens (replaying the log up to the torn record).
    expect(await store.get(a)).toEqual({ v: 1 });
    expect(close).toHaveBeenCalledTimes(1);
    expect(open).toHaveBeenCalledTimes(1);
    await store.put(c, { v: 3 });
    expect(put).toHaveBeenCalledTimes(2);
    expect(await store.keys('profile/alice/')).toEqual([a, c]);
    expect(open).toHaveBeenCalledTimes(1); // once is enough
  });

  it('never starts a write behind a failing one before the reopen', async () => {
    const store = await fx.open(fx.tmp());
    const order: string[] = [];
    const realPut = Level.prototype.put;
    let fail = true;
    vi.spyOn(Level.prototype, 'put').mockImplementation(async function (
      this: Level<string, Uint8Array>,
      ...args
    ) {
      const key = args[0] as string;
      order.push(`put:${key.slice(-1)}`);
      if (fail) {
        fail = false;
        await new Promise((r) => setTimeout(r, 50)); // the failing write is slow: others queue behind it
        throw ioError();
      }
      return (realPut as (...x: unknown[]) => Promise<void>).apply(this, args);
    });
    const realOpen = Level.prototype.open;
    vi.spyOn(Level.prototype, 'open').mockImplementation(async function (
      this: Level<string, Uint8Array>,
      ...args
    ) {
      order.push('reopen');
      return (realOpen as (...x: unknown[]) => Promise<void>).apply(this, args);
    });
    const results = await Promise.allSettled([
      store.put(a, { v: 1 }),
      store.put(b, { v: 2 }),
      store.put(c, { v: 3 }),
    ]);
    expect(results.map((r) => r.status)).toEqual(['rejected', 'fulfilled', 'fulfilled']);
    expect(order).toEqual(['put:a', 'reopen', 'put:b', 'put:c']);
    expect(await store.keys('profile/alice/')).toEqual([b, c]);
  });

  it('stays unavailable while the reopen fails (the disk is still full), and recovers after', async () => {
    const store = await fx.open(fx.tmp());
    await store.put(a, { v: 1 });
    vi.spyOn(Level.prototype, 'batch').mockRejectedValueOnce(ioError());
    await expectCode(store.batch([{ type: 'put', key: b, value: { v: 2 } }]), 'ERR_VAULT_UNAVAILABLE');
    const open = vi.spyOn(Level.prototype, 'open').mockRejectedValueOnce(ioError());
    await expectCode(store.get(a), 'ERR_VAULT_UNAVAILABLE');
    // The next call retries the reopen, which now works: nothing acknowledged was lost.
    await store.put(c, { v: 3 });
    expect(open).toHaveBeenCalledTimes(2);
    expect(await store.get(a)).toEqual({ v: 1 });
    expect(await store.get(b)).toBeUndefined();
    expect(await store.get(c)).toEqual({ v: 3 });
  });

  it('close waits for queued writes, and refuses writes after it', async () => {
    const store = await fx.open(fx.tmp());
    const pending = store.put(a, { v: 1 });
    const closing = store.close();
    await expect(pending).resolves.toBeUndefined();
    await closing;
    await expectCode(store.put(b, { v: 2 }), 'ERR_VAULT_UNAVAILABLE');
  });
});
