import { createHmac, generateKeyPairSync, sign as cryptoSign, type KeyObject } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import type { JWK } from 'jose';
import { AppError } from '../../../src/errors.js';
import {
  bodyHash,
  PopError,
  PopVerifier,
  publicJwkOf,
  signPop,
  type PopRejectReason,
} from '../../../src/identity/index.js';

const T0 = 1_800_000_000_000.25; // ms; fractional on purpose
const URL_ = 'http://127.0.0.1:7998/v1/sessions?x=1';
const BODY = new TextEncoder().encode('{"ttl":"1h"}');
const REQ = { method: 'POST', url: URL_, body: BODY };

const mk = () => generateKeyPairSync('ed25519').privateKey;
const alice = mk();
const bob = mk();
const mallory = mk();
const KEYS = new Map<string, JWK>([
  ['alice', publicJwkOf(alice)],
  ['bob', publicJwkOf(bob)],
]);

function setup(opts: { startedAtMs?: number; now?: number; maxJtiEntries?: number } = {}) {
  const clock = { now: opts.now ?? T0 + 1_000 };
  const verifier = new PopVerifier({
    lookupKey: async (h) => KEYS.get(h),
    startedAtMs: opts.startedAtMs ?? T0,
    clock: () => clock.now,
    ...(opts.maxJtiEntries === undefined ? {} : { maxJtiEntries: opts.maxJtiEntries }),
  });
  return { clock, verifier };
}

const sign = (over: Partial<Parameters<typeof signPop>[0]> = {}) =>
  signPop({ key: alice, handle: 'alice', method: 'POST', url: URL_, body: BODY, now: T0 + 500, ...over });

const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
function claims(over: Record<string, unknown> = {}) {
  const iat = (T0 + 500) / 1000;
  return {
    sub: 'alice',
    iat,
    exp: iat + 60,
    jti: 'AAAAAAAAAAAAAAAAAAAAAA',
    htm: 'POST',
    htu: URL_,
    bh: bodyHash(BODY),
    ...over,
  };
}
/** A hand-made token with any header: Ed25519 signature for a KeyObject, HMAC-SHA256 for bytes. */
async function forge(
  header: Record<string, unknown>,
  key: KeyObject | Uint8Array,
  payload: Record<string, unknown> = claims(),
) {
  const input = `${b64(header)}.${b64(payload)}`;
  const sig =
    key instanceof Uint8Array
      ? createHmac('sha256', key).update(input).digest()
      : cryptoSign(null, Buffer.from(input), key);
  return `${input}.${sig.toString('base64url')}`;
}

async function rejected(
  p: Promise<unknown>,
  reason?: PopRejectReason | PopRejectReason[],
): Promise<PopError> {
  const err = await p.then(
    () => expect.unreachable('token was accepted'),
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(PopError);
  expect(err).toBeInstanceOf(AppError);
  const e = err as PopError;
  expect(e.code).toBe('ERR_AUTH_POP_INVALID');
  expect(e.message).toBe('proof-of-possession token rejected');
  expect(e.status).toBe(401);
  // What reaches the caller never says which check failed.
  expect(JSON.stringify(e.toJSON())).not.toContain(e.reason);
  if (reason !== undefined) expect([reason].flat()).toContain(e.reason);
  return e;
}

describe('PoP tokens', () => {
  it('a valid token verifies to its handle', async () => {
    const { verifier } = setup();
    const token = await sign();
    const [h, p] = token.split('.') as [string, string];
    expect(JSON.parse(Buffer.from(h, 'base64url').toString())).toEqual({
      alg: 'EdDSA',
      typ: 'authsome-pop+jwt',
    });
    const c = JSON.parse(Buffer.from(p, 'base64url').toString()) as Record<string, unknown>;
    expect(c['iat']).toBe((T0 + 500) / 1000);
    expect(c['exp']).toBe((T0 + 500) / 1000 + 60);
    expect(c['jti']).toMatch(/^[A-Za-z0-9_-]{22}$/);
    expect(await verifier.verify(`PoP ${token}`, REQ)).toEqual({ handle: 'alice' });
  });

  it('hashes string, bytes and no body alike, and drops the URL fragment', async () => {
    const { verifier } = setup();
    const t1 = await sign({ body: '{"ttl":"1h"}', url: `${URL_}#frag` });
    expect(await verifier.verify(`PoP ${t1}`, REQ)).toEqual({ handle: 'alice' });
    const t2 = await sign({ body: undefined, method: 'get' });
    expect(await verifier.verify(`pop ${t2}`, { method: 'GET', url: URL_, body: new Uint8Array() })).toEqual({
      handle: 'alice',
    });
  });

  it('accepts a hand-made token of the right shape (so the forged cases below are meaningful)', async () => {
    const { verifier } = setup();
    const token = await forge({ alg: 'EdDSA', typ: 'authsome-pop+jwt' }, alice);
    expect(await verifier.verify(`PoP ${token}`, REQ)).toEqual({ handle: 'alice' });
  });

  it('lets a store failure in lookupKey through as itself, not as a token rejection', async () => {
    const down = new AppError('ERR_VAULT_UNAVAILABLE', 'store closed');
    const verifier = new PopVerifier({
      lookupKey: () => Promise.reject(down),
      startedAtMs: T0,
      clock: () => T0 + 1_000,
    });
    await expect(verifier.verify(`PoP ${await sign()}`, REQ)).rejects.toBe(down);
  });

  it('refuses a missing header and other schemes', async () => {
    const { verifier } = setup();
    await rejected(verifier.verify(undefined, REQ), 'missing');
    await rejected(verifier.verify(`Bearer ${await sign()}`, REQ), 'scheme');
    await rejected(verifier.verify('PoP  x.y.z', REQ), 'scheme');
    await rejected(verifier.verify('PoP a.b', REQ), 'malformed');
  });

  it('refuses alg none (hand-crafted), with or without a signature part', async () => {
    const { verifier } = setup();
    const unsigned = `${b64({ alg: 'none', typ: 'authsome-pop+jwt' })}.${b64(claims())}`;
    await rejected(verifier.verify(`PoP ${unsigned}.`, REQ));
    await rejected(verifier.verify(`PoP ${unsigned}.${'A'.repeat(86)}`, REQ), 'header');
  });

  it('refuses HS256 keyed with the public key (alg confusion)', async () => {
    const { verifier } = setup();
    const jwk = KEYS.get('alice')!;
    for (const secret of [
      Buffer.from(jwk.x!, 'base64url'),
      new TextEncoder().encode(JSON.stringify(jwk)),
      new TextEncoder().encode(jwk.x!),
    ]) {
      const token = await forge({ alg: 'HS256', typ: 'authsome-pop+jwt' }, secret);
      await rejected(verifier.verify(`PoP ${token}`, REQ), 'header');
    }
  });

  it('never trusts a key named in the token', async () => {
    const { verifier } = setup();
    const jwk = publicJwkOf(mallory);
    for (const extra of [
      { jwk },
      { jku: 'https://evil.test/jwks' },
      { x5u: 'https://evil.test/c' },
      { x5c: ['AAAA'] },
      { kid: 'https://evil.test/k' },
      { kid: 'alice' },
      { crit: ['exp'] },
    ]) {
      const token = await forge({ alg: 'EdDSA', typ: 'authsome-pop+jwt', ...extra }, mallory);
      await rejected(verifier.verify(`PoP ${token}`, REQ), 'header');
    }
  });

  it('refuses a wrong typ or alg spelling', async () => {
    const { verifier } = setup();
    for (const header of [
      { alg: 'EdDSA', typ: 'JWT' },
      { alg: 'EdDSA' },
      { alg: 'Ed25519', typ: 'authsome-pop+jwt' },
      { alg: 'EdDSA', typ: 'application/authsome-pop+jwt' },
    ]) {
      await rejected(verifier.verify(`PoP ${await forge(header, alice)}`, REQ), 'header');
    }
  });

  it("refuses alice's key claiming to be bob, unknown and invalid handles", async () => {
    const { verifier } = setup();
    await rejected(verifier.verify(`PoP ${await sign({ handle: 'bob' })}`, REQ), 'signature');
    await rejected(verifier.verify(`PoP ${await sign({ handle: 'carol' })}`, REQ), 'unknown-sub');
    await rejected(
      verifier.verify(`PoP ${await sign({ key: mallory, handle: 'carol' })}`, REQ),
      'unknown-sub',
    );
    await rejected(verifier.verify(`PoP ${await sign({ handle: 'Alice' })}`, REQ), 'sub');
  });

  it('refuses a replay, also when both copies arrive at once', async () => {
    const { verifier } = setup();
    const token = await sign();
    await verifier.verify(`PoP ${token}`, REQ);
    await rejected(verifier.verify(`PoP ${token}`, REQ), 'replay');
    const t2 = await sign();
    const results = await Promise.allSettled([
      verifier.verify(`PoP ${t2}`, REQ),
      verifier.verify(`PoP ${t2}`, REQ),
    ]);
    expect(results.map((r) => r.status).sort()).toEqual(['fulfilled', 'rejected']);
  });

  it('refuses a token made before the daemon started (replay across a restart)', async () => {
    const token = await sign({ now: T0 - 1 });
    const before = setup({ startedAtMs: T0 - 10_000 });
    expect(await before.verifier.verify(`PoP ${token}`, REQ)).toEqual({ handle: 'alice' });
    const restarted = setup({ startedAtMs: T0 });
    await rejected(restarted.verifier.verify(`PoP ${token}`, REQ), 'before-start');
  });

  it('refuses expired, too long-lived and future tokens', async () => {
    const { verifier, clock } = setup();
    const token = await sign();
    clock.now = T0 + 500 + 61_000;
    await rejected(verifier.verify(`PoP ${token}`, REQ), ['too-old', 'expired']);
    clock.now = T0 + 1_000;
    await rejected(verifier.verify(`PoP ${await sign({ now: T0 + 1_000 + 30_000 })}`, REQ), 'iat-future');
    const iat = (T0 + 500) / 1000;
    await rejected(
      verifier.verify(
        `PoP ${await forge({ alg: 'EdDSA', typ: 'authsome-pop+jwt' }, alice, claims({ exp: iat + 3600 }))}`,
        REQ,
      ),
      'claims',
    );
    await rejected(
      verifier.verify(
        `PoP ${await forge({ alg: 'EdDSA', typ: 'authsome-pop+jwt' }, alice, claims({ iat: String(iat) }))}`,
        REQ,
      ),
      'claims',
    );
    const noExp: Record<string, unknown> = claims();
    delete noExp['exp'];
    await rejected(
      verifier.verify(`PoP ${await forge({ alg: 'EdDSA', typ: 'authsome-pop+jwt' }, alice, noExp)}`, REQ),
      'claims',
    );
  });

  it('binds method, URL and body', async () => {
    const { verifier } = setup();
    await rejected(verifier.verify(`PoP ${await sign()}`, { ...REQ, method: 'DELETE' }), 'htm');
    await rejected(verifier.verify(`PoP ${await sign()}`, { ...REQ, url: `${URL_}&y=2` }), 'htu');
    await rejected(
      verifier.verify(`PoP ${await sign()}`, { ...REQ, url: 'http://127.0.0.1:7998/v1/sessions?X=1' }),
      'htu',
    );
    await rejected(
      verifier.verify(`PoP ${await sign()}`, { ...REQ, body: new TextEncoder().encode('{"ttl":"2h"}') }),
      'bh',
    );
  });

  it('bounds the jti cache by refusing, not evicting, and frees entries once they expire', async () => {
    const { verifier, clock } = setup({ maxJtiEntries: 2 });
    await verifier.verify(`PoP ${await sign()}`, REQ);
    await verifier.verify(`PoP ${await sign()}`, REQ);
    await rejected(verifier.verify(`PoP ${await sign()}`, REQ), 'jti-cache-full');
    clock.now = T0 + 500 + 60_001;
    await verifier.verify(`PoP ${await sign({ now: clock.now - 10 })}`, REQ);
    expect(verifier.seenCount).toBe(1);
  });

  describe('every single-byte change of a valid token is refused', () => {
    const flip = (token: string, pos: number, mask: number) => {
      const bytes = Buffer.from(token, 'latin1');
      bytes[pos] = bytes[pos]! ^ mask;
      return bytes.toString('latin1');
    };

    it('exhaustively over positions (bit 0 and case bit)', async () => {
      const token = await sign();
      for (let pos = 0; pos < token.length; pos++) {
        for (const mask of [0x01, 0x20]) {
          // A fresh verifier each time, so the jti cache is not what saves us.
          await rejected(setup().verifier.verify(`PoP ${flip(token, pos, mask)}`, REQ));
        }
      }
    });

    it('including every other spelling of the last signature character (spare-bit malleability)', async () => {
      const token = await sign();
      const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
      for (const c of alphabet) {
        if (c === token.at(-1)) continue;
        await rejected(setup().verifier.verify(`PoP ${token.slice(0, -1)}${c}`, REQ));
      }
    });

    it('for random positions and masks (fast-check)', async () => {
      const token = await sign();
      await fc.assert(
        fc.asyncProperty(
          fc.nat({ max: token.length - 1 }),
          fc.integer({ min: 1, max: 255 }),
          async (pos, mask) => {
            await rejected(setup().verifier.verify(`PoP ${flip(token, pos, mask)}`, REQ));
          },
        ),
        { numRuns: 400 },
      );
    });
  });
});
