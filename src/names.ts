import { AppError } from './errors.js';

/** Names of profiles, connections and providers (SPEC section 2). Never normalised. */
export const NAME_PATTERN = /^[a-z0-9][a-z0-9._-]{0,63}$/;

export type NameKind = 'profile' | 'connection' | 'provider' | 'node';

export function isValidName(name: unknown): name is string {
  return typeof name === 'string' && NAME_PATTERN.test(name);
}

export function assertName(kind: NameKind, name: unknown): string {
  if (!isValidName(name)) {
    // A long value in a name's place is often a secret pasted into the wrong spot: not repeated.
    const shown =
      typeof name !== 'string'
        ? String(typeof name)
        : name.length <= 16
          ? JSON.stringify(name)
          : `(${name.length} characters, not shown in case it is a secret)`;
    throw new AppError(
      'ERR_NAME_INVALID',
      `invalid ${kind} name ${shown}: names are 1-64 characters of a-z, 0-9, '.', '_' or '-', starting with a letter or digit`,
      `choose a ${kind} name such as "work" or "agent-pr-bot"`,
    );
  }
  return name;
}

/** The closest candidate within edit distance 2 (for "did you mean" hints), if any. */
export function closest(name: string, candidates: Iterable<string>): string | undefined {
  let best: string | undefined;
  let bestD = 3;
  for (const c of candidates) {
    const d = editDistance(name, c, bestD);
    if (d < bestD) {
      best = c;
      bestD = d;
    }
  }
  return best;
}

function editDistance(a: string, b: string, cap: number): number {
  if (Math.abs(a.length - b.length) >= cap) return cap;
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[b.length]!;
}
