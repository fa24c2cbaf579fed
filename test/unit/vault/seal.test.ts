import { randomBytes } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { initSodium, open, seal, SEAL_VERSION } from '../../../src/vault/seal.js';

const key = new Uint8Array(randomBytes(32));
const recordKey = 'profile/alice/conn/github/work';
const canary = 'CANARY-seal-7f3a9c';
const plaintext = new TextEncoder().encode(JSON.stringify({ token: canary }));

function expectCorrupt(fn: () => unknown): void {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  expect(caught).toMatchObject({ code: 'ERR_VAULT_CORRUPT' });
  const msg = String((caught as Error).message);
  expect(msg).toContain(recordKey);
  expect(msg).not.toContain(canary);
  expect(JSON.stringify(caught)).not.toContain(canary);
}

describe('seal / open', () => {
  beforeAll(() => initSodium());

  it('round-trips and has the documented layout', () => {
    const sealed = seal(key, recordKey, plaintext);
    expect(sealed[0]).toBe(SEAL_VERSION);
    expect(sealed.length).toBe(1 + 24 + plaintext.length + 16);
    expect(Buffer.from(open(key, recordKey, sealed))).toEqual(Buffer.from(plaintext));
    expect(Buffer.from(sealed).includes(Buffer.from(canary))).toBe(false);
  });

  it('uses a fresh nonce every time', () => {
    const a = seal(key, recordKey, plaintext);
    const b = seal(key, recordKey, plaintext);
    expect(Buffer.from(a.subarray(1, 25))).not.toEqual(Buffer.from(b.subarray(1, 25)));
  });

  it('does not open under another record key (associated data)', () => {
    const sealed = seal(key, recordKey, plaintext);
    expect(() => open(key, 'profile/mallory/conn/github/work', sealed)).toThrow(
      expect.objectContaining({ code: 'ERR_VAULT_CORRUPT' }),
    );
  });

  it('does not open under another master key', () => {
    const sealed = seal(key, recordKey, plaintext);
    expectCorrupt(() => open(new Uint8Array(randomBytes(32)), recordKey, sealed));
  });

  it('detects a flipped bit anywhere: version, nonce, ciphertext or tag', () => {
    const sealed = seal(key, recordKey, plaintext);
    for (let i = 0; i < sealed.length; i++) {
      const bad = Uint8Array.from(sealed);
      bad[i] = (bad[i] ?? 0) ^ 0x01;
      expectCorrupt(() => open(key, recordKey, bad));
    }
  });

  it('detects truncation at every length', () => {
    const sealed = seal(key, recordKey, plaintext);
    for (let n = 0; n < sealed.length; n++) expectCorrupt(() => open(key, recordKey, sealed.subarray(0, n)));
  });

  it('treats a wrong-sized master key as a programmer error', () => {
    expect(() => seal(new Uint8Array(16), recordKey, plaintext)).toThrow(TypeError);
    expect(() => open(new Uint8Array(33), recordKey, new Uint8Array(64))).toThrow(TypeError);
  });
});
