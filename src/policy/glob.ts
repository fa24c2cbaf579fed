/**
 * Path globs and request paths (SPEC section 9). Two views of every path, one per side of doubt:
 *
 * - exact (allow rules): the path as sent, segment by segment, percent-encoding hex in upper case
 *   (RFC 3986 6.2.2.1: `%c3` and `%C3` are the same octet, so this can never widen a match);
 *   compared byte for byte, so an allow rule matches only the spelling it names.
 * - loose (deny and approve rules): each segment percent-decoded, lower-cased, its `;parameters`
 *   dropped (servers such as Tomcat drop them before routing), and one trailing slash ignored; so
 *   no change of case or encoding, no `;x` and no trailing slash gets a request out of such a rule.
 *
 * A path whose reading is ambiguous is refused outright while the policy names any path
 * (`needsNormalising`): upstream servers normalise those differently, so no glob can be trusted
 * to mean the same thing there.
 */

/** RFC 3986 pchar, plus '/' and '%' (checked separately): anything else must be percent-encoded. */
const PATH_CHARS = /^[A-Za-z0-9\-._~!$&'()*+,;=:@%/]+$/;
const PCT = /%([0-9A-Fa-f]{2})/g;
const UNRESERVED = /^[A-Za-z0-9\-._~]$/;

export type Seg = { readonly kind: 'lit'; readonly exact: string; readonly loose: string } | OneOrAny;
type OneOrAny = { readonly kind: 'one' } | { readonly kind: 'any' };
const ONE: Seg = Object.freeze({ kind: 'one' });
const ANY: Seg = Object.freeze({ kind: 'any' });

/**
 * Why one segment (between slashes, not the empty trailing one) cannot be read unambiguously, or
 * undefined. Shared by request paths and rule globs, so a glob can only name readable paths.
 */
function segmentProblem(seg: string): string | undefined {
  const bare = seg.split(';', 1)[0]!;
  if (bare === '') return seg === '' ? 'has an empty segment (//)' : `has a segment with no name ("${seg}")`;
  if (bare === '.' || bare === '..') return `has a dot segment ("${seg}")`;
  if (!seg.includes('%')) return undefined;
  if (/%(?![0-9A-Fa-f]{2})/.test(seg)) return 'has a "%" that is not followed by two hex digits';
  for (const m of seg.matchAll(PCT)) {
    const ch = String.fromCharCode(parseInt(m[1]!, 16));
    if (UNRESERVED.test(ch)) return `percent-encodes "${ch}" (${m[0]}), which never needs encoding`;
    if (ch === '/' || ch === '\\') return `percent-encodes a ${ch === '/' ? 'slash' : 'backslash'} (${m[0]})`;
    if (ch === '\0') return 'percent-encodes a NUL (%00)';
  }
  try {
    decodeURIComponent(seg);
  } catch {
    return 'has percent-encoded bytes that are not UTF-8';
  }
  return undefined;
}

/** The common case in one linear test: segments without '.', '%' or ';', no empty one but a trailing slash. */
const PLAIN = /^(?:\/[A-Za-z0-9\-_~!$&'()*+,=:@]+)*\/?$/;

/** Why a request path would need normalising to be read (SPEC 9), or undefined when it is plain. */
export function pathProblem(path: string): string | undefined {
  if (PLAIN.test(path) && path !== '') return undefined;
  if (!path.startsWith('/')) return 'does not start with "/"';
  if (!PATH_CHARS.test(path))
    return 'has characters that must be percent-encoded (space, backslash, non-ASCII, controls, quotes…)';
  const segs = path.slice(1).split('/');
  // One trailing slash is a different resource, not an ambiguity: `/items/` is read as written.
  const last = segs.length - 1;
  for (let i = 0; i < segs.length; i++) {
    if (i === last && segs[i] === '') break;
    const bad = segmentProblem(segs[i]!);
    if (bad) return bad;
  }
  return undefined;
}

const upperHex = (s: string): string =>
  s.includes('%') ? s.replace(PCT, (_m, h: string) => `%${h.toUpperCase()}`) : s;

/** The loose form of one segment; its input is already known to decode. */
function looseSeg(seg: string): string {
  const decoded = seg.includes('%') ? decodeURIComponent(seg) : seg;
  const semi = decoded.indexOf(';');
  return (semi < 0 ? decoded : decoded.slice(0, semi)).toLowerCase();
}

/** Segments of a readable path, for allow rules: a trailing slash is a final '' segment. */
export function exactSegments(path: string): string[] {
  return upperHex(path).slice(1).split('/');
}

/** Segments of a readable path, for deny and approve rules (see the module comment). */
export function looseSegments(path: string): string[] {
  const segs = path.slice(1).split('/');
  if (segs.at(-1) === '') segs.pop();
  return segs.map(looseSeg);
}

/** A compiled glob: two segment lists, one per side. */
export interface Glob {
  readonly source: string;
  readonly exact: readonly Seg[];
  readonly loose: readonly Seg[];
}

/** Why a rule's `path` is not a glob of SPEC 9, or undefined. */
export function globProblem(glob: string): string | undefined {
  if (!glob.startsWith('/')) return 'must start with "/"';
  if (glob.length > 1024) return 'must be at most 1024 characters';
  if (glob.includes('?')) return '"?" is not a wildcard here (only * and ** are), and a path has no query';
  if (!PATH_CHARS.test(glob))
    return 'has characters that must be percent-encoded (space, backslash, non-ASCII, [ ], { }…); only * and ** are wildcards';
  const segs = glob.slice(1).split('/');
  if (segs.length > 64) return 'has more than 64 segments';
  const last = segs.length - 1;
  for (let i = 0; i < segs.length; i++) {
    const s = segs[i]!;
    if (i === last && s === '') break;
    if (s === '*' || s === '**') continue;
    if (s.includes('*'))
      return `has "*" inside the segment "${s}": * and ** are wildcards only as a whole segment (/repos/*/pulls)`;
    const bad = segmentProblem(s);
    if (bad) return bad;
  }
  return undefined;
}

/** Compiles a glob that `globProblem` accepted (a TypeError otherwise: the schema checks first). */
export function compileGlob(glob: string): Glob {
  const bad = globProblem(glob);
  if (bad) throw new TypeError(`invalid path glob ${JSON.stringify(glob)}: ${bad}`);
  const raw = glob.slice(1).split('/');
  const seg = (s: string): Seg =>
    s === '*' ? ONE : s === '**' ? ANY : { kind: 'lit', exact: upperHex(s), loose: looseSeg(s) };
  const exact = raw.map(seg);
  const looseRaw = raw.at(-1) === '' ? raw.slice(0, -1) : raw;
  return { source: glob, exact, loose: looseRaw.map(seg) };
}

/**
 * Glob match over segments: `*` one non-empty segment, `**` zero or more. Greedy with one backtrack
 * point per `**` (the classic wildcard algorithm), so it is O(pattern × path) at worst.
 */
export function matchSegments(pattern: readonly Seg[], segs: readonly string[], loose: boolean): boolean {
  let pi = 0;
  let si = 0;
  let starP = -1;
  let starS = 0;
  while (si < segs.length) {
    const p = pattern[pi];
    if (p !== undefined && p.kind === 'any') {
      starP = pi++;
      starS = si;
      continue;
    }
    const s = segs[si]!;
    // Loose segments are never empty (a trailing slash is dropped), but one may decode to "" ("%3Bx").
    if (p !== undefined && (p.kind === 'one' ? loose || s !== '' : (loose ? p.loose : p.exact) === s)) {
      pi++;
      si++;
      continue;
    }
    if (starP < 0) return false;
    pi = starP + 1;
    si = ++starS;
  }
  while (pi < pattern.length && pattern[pi]!.kind === 'any') pi++;
  return pi === pattern.length;
}
