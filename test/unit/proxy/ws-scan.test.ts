import { describe, expect, it } from 'vitest';
import type { Transform } from 'node:stream';
import { frameScanner } from '../../../src/proxy/ws-scan.js';

const SECRET = 'sk-canary-7Hq2ZpX9wLr4';
const MASK = '*'.repeat(SECRET.length);

/** An unmasked server frame: FIN + opcode, 7-bit or 16-bit length. */
function frame(payload: string, opcode = 0x1, fin = true): Buffer {
  const p = Buffer.from(payload, 'latin1');
  const b0 = (fin ? 0x80 : 0) | opcode;
  const head =
    p.length < 126 ? Buffer.from([b0, p.length]) : Buffer.from([b0, 126, p.length >> 8, p.length & 0xff]);
  return Buffer.concat([head, p]);
}

/** Writes the pieces; resolves with what came out once `expected` bytes did (no end() needed). */
function through(s: Transform, pieces: Buffer[], expected: number): Promise<Buffer> {
  const got: Buffer[] = [];
  let n = 0;
  return new Promise((resolve, reject) => {
    s.on('error', reject);
    s.on('data', (d: Buffer) => {
      got.push(d);
      n += d.length;
      if (n >= expected) resolve(Buffer.concat(got));
    });
    for (const p of pieces) s.write(p);
  });
}

function cut(buf: Buffer, at: number[]): Buffer[] {
  const out: Buffer[] = [];
  let prev = 0;
  for (const c of [...at, buf.length]) {
    out.push(buf.subarray(prev, c));
    prev = c;
  }
  return out;
}

describe('frameScanner (WebSocket frames from the upstream)', () => {
  it('masks the secret inside a payload, frame headers and lengths unchanged, however the bytes are cut', async () => {
    const input = Buffer.concat([frame(`{"auth":"${SECRET}"}`), frame('ok'), frame(`x${SECRET}`.repeat(8))]);
    const want = Buffer.concat([frame(`{"auth":"${MASK}"}`), frame('ok'), frame(`x${MASK}`.repeat(8))]);
    for (const at of [[], [1], [2, 3], [5, 11, 30], [27, 28, 29, 31, 32, 40]]) {
      let hits = 0;
      const out = await through(
        frameScanner([Buffer.from(SECRET)], () => hits++),
        cut(Buffer.from(input), at),
        want.length,
      );
      expect(out.toString('latin1')).toBe(want.toString('latin1'));
      expect(hits).toBe(1);
    }
  });

  it('releases a frame at its end even when it ends in the start of a needle (nothing held while quiet)', async () => {
    const f = frame('hello there s');
    const out = await through(
      frameScanner([Buffer.from(SECRET)], () => undefined),
      [Buffer.from(f)],
      f.length,
    );
    expect(out.equals(f)).toBe(true);
  });

  it('scans control frames too (a close reason), and passes frames without a secret untouched', async () => {
    const input = Buffer.concat([frame('plain', 0x2), frame(`bye ${SECRET}`, 0x8)]);
    const want = Buffer.concat([frame('plain', 0x2), frame(`bye ${MASK}`, 0x8)]);
    const out = await through(
      frameScanner([Buffer.from(SECRET)], () => undefined),
      [input],
      want.length,
    );
    expect(out.equals(want)).toBe(true);
  });

  it('does not see a secret split across two frames of one message (documented limit)', async () => {
    const input = Buffer.concat([frame(SECRET.slice(0, 9), 0x1, false), frame(SECRET.slice(9), 0x0)]);
    let hits = 0;
    const out = await through(
      frameScanner([Buffer.from(SECRET)], () => hits++),
      [input],
      input.length,
    );
    expect(out.equals(input)).toBe(true);
    expect(hits).toBe(0);
  });

  it.each([
    ['a masked server frame', Buffer.from([0x81, 0x85, 1, 2, 3, 4, 0, 0, 0, 0, 0])],
    ['a frame with RSV1 set (compressed, no extension negotiated)', Buffer.from([0xc1, 0x03, 1, 2, 3])],
    ['a frame with RSV3 set', Buffer.from([0x91, 0x01, 0x41])],
  ])('ends the stream on %s (its payload could not be scanned)', async (_name, bytes) => {
    const s = frameScanner([Buffer.from(SECRET)], () => undefined);
    const got: Buffer[] = [];
    const err = await new Promise<Error>((resolve) => {
      s.on('error', resolve);
      s.on('data', (d: Buffer) => got.push(d));
      s.write(bytes);
    });
    expect(err).toMatchObject({ code: 'ERR_UPSTREAM_FAILED' });
    expect(got).toEqual([]); // not even the frame header went out
  });
});
