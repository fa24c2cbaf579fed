import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { buildNeedles, MIN_NEEDLE, SecretScanner } from '../../../src/proxy/secret-scan.js';

const SECRET = 'sk-canary-7Hq2ZpX9wLr4';

/** Feeds `text` to a scanner in the given pieces; returns what the caller would receive. */
function through(needles: Buffer[], pieces: Buffer[]): { out: string; hits: number } {
  const s = new SecretScanner(needles);
  const parts: Buffer[] = pieces.map((p) => Buffer.from(s.push(Buffer.from(p))));
  parts.push(s.flush());
  return { out: Buffer.concat(parts).toString('latin1'), hits: s.hits };
}

function split(text: string, cuts: number[]): Buffer[] {
  const b = Buffer.from(text, 'latin1');
  const at = [...new Set(cuts.map((c) => c % (b.length + 1)))].sort((x, y) => x - y);
  const out: Buffer[] = [];
  let prev = 0;
  for (const c of [...at, b.length]) {
    out.push(b.subarray(prev, c));
    prev = c;
  }
  return out;
}

describe('SecretScanner', () => {
  const needles = buildNeedles([`Bearer ${SECRET}`], [SECRET]);

  it('masks every occurrence in place, keeping the length', () => {
    const text = `a ${SECRET} b Bearer ${SECRET} c ${Buffer.from(SECRET).toString('base64')}`;
    const { out, hits } = through(needles, [Buffer.from(text)]);
    expect(out).toHaveLength(text.length);
    expect(out).not.toContain(SECRET);
    expect(out).not.toContain(Buffer.from(SECRET).toString('base64'));
    expect(hits).toBeGreaterThanOrEqual(3);
  });

  it('whatever the chunk boundaries, the output equals the one-piece result (fast-check)', () => {
    const filler = fc.string({
      unit: fc.constantFrom('a', 's', 'k', '-', 'B', ' ', '\n', 'x'),
      maxLength: 40,
    });
    fc.assert(
      fc.property(
        fc.array(
          fc.oneof(
            filler,
            fc.constant(SECRET),
            fc.constant(`Bearer ${SECRET}`),
            fc.constant(SECRET.slice(0, 9)),
          ),
          {
            maxLength: 8,
          },
        ),
        fc.array(fc.nat({ max: 400 }), { maxLength: 30 }),
        (parts, cuts) => {
          const text = parts.join('');
          const whole = through(needles, [Buffer.from(text, 'latin1')]).out;
          expect(through(needles, split(text, cuts)).out).toBe(whole);
          expect(whole).not.toContain(SECRET);
          expect(whole).toHaveLength(text.length);
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('holds back only a tail that could start a needle (ordinary chunk ends flow at once)', () => {
    const s = new SecretScanner(needles);
    expect(s.push(Buffer.from('data: event\n\n')).toString()).toBe('data: event\n\n');
    expect(s.push(Buffer.from('abc sk-can')).toString()).toBe('abc ');
    expect(s.push(Buffer.from('dle')).toString()).toBe('sk-candle');
    expect(s.flush()).toHaveLength(0);
  });

  it('finds needles in header text', () => {
    const s = new SecretScanner(needles);
    expect(s.inText(`https://x.test/?k=${SECRET}`)).toBe(true);
    expect(s.inText('nothing here')).toBe(false);
  });

  it('builds raw, encoded and credential-part needles, never short ones', () => {
    const n = buildNeedles(
      [`Basic ${Buffer.from('u:pw').toString('base64')}`, 'Token abc'],
      ['short', SECRET],
    ).map((b) => b.toString());
    expect(n).toContain(SECRET);
    expect(n).toContain(Buffer.from(SECRET).toString('hex'));
    // base64url: the complete 3-byte groups (the last partial one depends on what follows).
    expect(n).toContain(
      Buffer.from(SECRET)
        .toString('base64url')
        .slice(0, Math.floor(SECRET.length / 3) * 4),
    );
    // The credential part covers the whole header value (which contains it).
    expect(n).toContain(Buffer.from('u:pw').toString('base64'));
    expect(n).not.toContain(`Basic ${Buffer.from('u:pw').toString('base64')}`);
    expect(n).toContain('Token abc');
    expect(n.every((x) => Buffer.byteLength(x) >= MIN_NEEDLE)).toBe(true);
    expect(n).not.toContain('short');
  });

  it('a secret with reserved characters: every common URL and JSON escaping of it is masked', () => {
    const key = 'sk-SLASH/abc+def/ghi=jkl0123456789';
    const forms = [
      encodeURIComponent(key), // %2F %2B %3D
      'sk-SLASH%2fabc%2bdef%2fghi%3djkl0123456789', // lower-case hex
      'sk-SLASH/abc%2Bdef/ghi%3Djkl0123456789', // Python quote(): '/' kept
      'sk-SLASH/abc%2bdef/ghi%3djkl0123456789',
      'sk-SLASH\\/abc+def\\/ghi=jkl0123456789', // json_encode escapes '/'
    ];
    for (const form of forms) {
      const s = new SecretScanner(buildNeedles([`Bearer ${key}`], [key]));
      const out = s.push(Buffer.from(`{"next":"https://x.test/cb?k=${form}"}`)).toString();
      expect(out, form).not.toContain(form);
      expect(s.inText(`Location: https://x.test/cb?k=${form}`), form).toBe(true);
    }
  });

  it('base64 and base64url of the secret inside other text, at any offset: nothing of its middle decodes back (fast-check)', () => {
    const all = buildNeedles([`Bearer ${SECRET}`], [SECRET]);
    const middle = Buffer.from(SECRET.slice(2, -2));
    fc.assert(
      fc.property(
        fc.string({ maxLength: 12 }),
        fc.string({ maxLength: 12 }),
        fc.constantFrom('base64' as const, 'base64url' as const),
        (before, after, enc) => {
          const text = Buffer.from(`${before}${SECRET}${after}`).toString(enc);
          const { out, hits } = through(all, [Buffer.from(text)]);
          expect(hits).toBeGreaterThanOrEqual(1);
          // Decoded from every alignment, with the mask read as base64 'A's, the middle never reappears.
          for (let o = 0; o < 4; o++)
            expect(Buffer.from(out.slice(o).replace(/\*/g, 'A'), enc).includes(middle)).toBe(false);
        },
      ),
    );
  });

  it('hex of the secret in upper case too', () => {
    const upper = Buffer.from(SECRET).toString('hex').toUpperCase();
    const { out } = through(buildNeedles([], [SECRET]), [Buffer.from(`id=${upper};`)]);
    expect(out).toBe(`id=${'*'.repeat(upper.length)};`);
  });

  it('drops a needle that contains another (the inner one already breaks every copy)', () => {
    const n = buildNeedles([`Bearer ${SECRET}`], [SECRET]).map((b) => b.toString());
    expect(n).toContain(SECRET);
    expect(n).not.toContain(`Bearer ${SECRET}`);
    expect(n).not.toContain(`Bearer%20${SECRET}`);
    for (const a of n) for (const b of n) if (a !== b) expect(a.includes(b)).toBe(false);
    const { out } = through(
      n.map((x) => Buffer.from(x)),
      [Buffer.from(`h: Bearer ${SECRET}`)],
    );
    expect(out).toBe(`h: Bearer ${'*'.repeat(SECRET.length)}`);
  });
});
