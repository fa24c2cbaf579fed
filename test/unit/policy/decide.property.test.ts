import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { decide } from '../../../src/policy/decide.js';
import { exactSegments, pathProblem } from '../../../src/policy/glob.js';
import { parsePolicy } from '../../../src/policy/schema.js';
import type { RequestFacts } from '../../../src/policy/types.js';

const facts = (path: string, method = 'GET'): RequestFacts => ({
  provider: 'github',
  connection: 'work',
  method,
  path,
  exe: '/usr/bin/gh',
});

// Characters a path segment may carry raw (RFC 3986 pchar); ';' and '.' included on purpose. Not
// '*': a glob cannot name it as a literal (it is written %2A there).
const RAW = [..."abcdeXYZ0189-._~!$&'()+,;=:@"];
// Non-ASCII text arrives percent-encoded; each entry with its upper-case twin, for case variants.
const ENCODED: Array<[string, string]> = [
  ['%C3%A9', '%C3%89'], // é É
  ['%C3%B6', '%C3%96'], // ö Ö
  ['%E2%82%AC', '%E2%82%AC'], // €
  ['%20', '%20'],
  ['%25', '%25'],
];

const piece = fc.oneof(
  { weight: 8, arbitrary: fc.constantFrom(...RAW) },
  { weight: 1, arbitrary: fc.constantFrom(...ENCODED.map(([l]) => l)) },
);
/** A segment that needs no normalising (no dot segment, no empty name before ';'). */
const segment = fc
  .array(piece, { minLength: 1, maxLength: 6 })
  .map((p) => p.join(''))
  .filter((s) => pathProblem(`/${s}`) === undefined);

type Part = { kind: 'lit'; text: string } | { kind: 'one' } | { kind: 'any' };
const part: fc.Arbitrary<Part> = fc.oneof(
  { weight: 4, arbitrary: segment.map((text) => ({ kind: 'lit' as const, text })) },
  { weight: 1, arbitrary: fc.constant({ kind: 'one' as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'any' as const }) },
);

/** A glob and a path it matches, built together. */
const globAndPath = fc
  .record({
    parts: fc.array(part, { minLength: 1, maxLength: 5 }),
    trailing: fc.boolean(),
    fill: fc.array(fc.array(segment, { maxLength: 3 }), { minLength: 5, maxLength: 5 }),
  })
  .map(({ parts, trailing, fill }) => {
    const glob =
      '/' + parts.map((p) => (p.kind === 'lit' ? p.text : p.kind === 'one' ? '*' : '**')).join('/');
    const segs = parts.flatMap((p, i) =>
      p.kind === 'lit' ? [p.text] : p.kind === 'one' ? [fill[i]![0] ?? 'x'] : fill[i]!,
    );
    const end = trailing && parts.at(-1)?.kind === 'lit' ? '/' : '';
    return { glob: glob + end, path: '/' + segs.join('/') + (segs.length && end ? '/' : end) };
  })
  .filter(({ path }) => pathProblem(path) === undefined && !path.includes('//'));

const hex = (c: string) => c.charCodeAt(0).toString(16).padStart(2, '0');

/**
 * Every spelling of a path that differs only in letter case and percent-encoding: each raw
 * character kept, case-flipped or percent-encoded (hex in either case), each encoded character's
 * hex and text case flipped, and the trailing slash added or taken away.
 */
function variant(path: string, choices: number[], slash: number): string {
  let out = '';
  let k = 0;
  const pick = () => choices[k++ % choices.length]!;
  for (let i = 0; i < path.length; i++) {
    const c = path[i]!;
    if (c === '/') {
      out += c;
      continue;
    }
    if (c === '%') {
      const enc = ENCODED.find(([l, u]) => path.startsWith(l, i) || path.startsWith(u, i));
      const len = enc ? enc[0].length : 3;
      const text = path.slice(i, i + len);
      const swapped = enc && pick() % 2 ? (text === enc[0] ? enc[1] : enc[0]) : text;
      out += pick() % 2 ? swapped.toLowerCase() : swapped;
      i += len - 1;
      continue;
    }
    const n = pick() % 4;
    if (n === 1) out += c === c.toLowerCase() ? c.toUpperCase() : c.toLowerCase();
    else if (n === 2) out += `%${hex(c).toUpperCase()}`;
    else if (n === 3) out += `%${hex(c)}`;
    else out += c;
  }
  if (slash === 1 && !out.endsWith('/')) out += '/';
  if (slash === 2 && out.endsWith('/') && out.length > 1) out = out.slice(0, -1);
  return out;
}

describe('decide: properties of SPEC 9 strictness (fast-check)', () => {
  it('(b) a deny or approve rule is never escaped by case or percent-encoding', () => {
    fc.assert(
      fc.property(
        globAndPath,
        fc.constantFrom('deny' as const, 'approve' as const),
        fc.array(fc.nat(), { minLength: 1, maxLength: 40 }),
        fc.nat(2),
        fc.constantFrom('DELETE', 'delete', 'Delete'),
        ({ glob, path }, action, choices, slash, method) => {
          const policy = parsePolicy({
            default: 'allow',
            rules: [
              { methods: ['DELETE'], path: glob, action },
              { path: '/**', action: 'allow' },
            ],
          });
          // The generator is right: the rule matches the path as built.
          expect(decide(policy, facts(path, 'DELETE'))).toMatchObject({ action, ruleIndex: 0 });
          const v = variant(path, choices, slash);
          const d = decide(policy, facts(v, method));
          expect(d.action, `${glob} vs ${v}`).not.toBe('allow');
          if (d.reason === undefined) expect(d).toMatchObject({ action, ruleIndex: 0 });
          else expect(pathProblem(v)).toBeDefined();
        },
      ),
      { numRuns: 2000 },
    );
  });

  // Ways to make a readable path need normalising (SPEC 9), inserted anywhere in one.
  const trick = fc.oneof(
    fc.constantFrom('.', '..', '%2e', '%2E', '.%2e', '%2E.', '%2e%2E', '..;x', ';x', ''),
    fc
      .constantFrom(...RAW.filter((c) => /[A-Za-z0-9\-._~]/.test(c)))
      .chain((c) => fc.constantFrom(`%${hex(c)}`, `%${hex(c).toUpperCase()}`).map((e) => `a${e}b`)),
    fc.constantFrom(
      'a%2Fb',
      'a%2fb',
      'a%5Cb',
      'a%5cb',
      'a\\b',
      '\\',
      'a b',
      'é',
      'a%zz',
      'a%4',
      'a%C3',
      '%00',
    ),
  );

  it('(a) an allow rule never matches a path that needs normalising', () => {
    fc.assert(
      fc.property(
        fc.array(segment, { maxLength: 4 }),
        fc.nat(4),
        trick,
        fc.array(segment, { maxLength: 2 }),
        (before, at, t, after) => {
          const segs = [...before];
          segs.splice(Math.min(at, segs.length), 0, t);
          // A last segment, so an empty one ('') is always between two slashes.
          const path = '/' + [...segs, ...after, 'z'].join('/');
          expect(pathProblem(path), path).toBeDefined();
          // An allow rule whose glob would match anything, and one with no path beside a rule with one.
          for (const rules of [
            [{ path: '/**', action: 'allow' }],
            [{ action: 'allow' }, { path: '/never', action: 'deny' }],
            [{ methods: ['GET'], path: '/**', action: 'allow' }],
          ]) {
            const d = decide(parsePolicy({ default: 'deny', rules }), facts(path));
            expect(d, path).toEqual({ action: 'deny', ruleIndex: null, reason: 'needs-normalising' });
          }
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('an allow rule matches only the spelling it names (letter case and encoding of the path)', () => {
    fc.assert(
      fc.property(
        globAndPath.filter(({ glob }) => !glob.includes('*')),
        fc.array(fc.nat(), { minLength: 1, maxLength: 40 }),
        fc.nat(2),
        ({ glob, path }, choices, slash) => {
          const policy = parsePolicy({ default: 'deny', rules: [{ path: glob, action: 'allow' }] });
          expect(decide(policy, facts(path))).toMatchObject({ action: 'allow', ruleIndex: 0 });
          const v = variant(path, choices, slash);
          // Only the hex digits' case may differ (the same octets, RFC 3986 6.2.2.1).
          const same = exactSegments(v).join('/') === exactSegments(path).join('/');
          const d = decide(policy, facts(v));
          expect(d.action === 'allow', `${glob} vs ${v}`).toBe(same);
        },
      ),
      { numRuns: 1000 },
    );
  });
});
