import type { RateSpec } from './types.js';

/**
 * "60/min", "1000/day" (SPEC section 9). The short units s, m, h, d and the long second, minute,
 * hour are accepted too and normalised to sec, min, hour, day. No months or weeks: a bucket that
 * refills over weeks is better written as "N/day".
 */
const UNITS: Record<string, { name: string; ms: number }> = {
  s: { name: 'sec', ms: 1000 },
  sec: { name: 'sec', ms: 1000 },
  second: { name: 'sec', ms: 1000 },
  m: { name: 'min', ms: 60_000 },
  min: { name: 'min', ms: 60_000 },
  minute: { name: 'min', ms: 60_000 },
  h: { name: 'hour', ms: 3_600_000 },
  hour: { name: 'hour', ms: 3_600_000 },
  d: { name: 'day', ms: 86_400_000 },
  day: { name: 'day', ms: 86_400_000 },
};

export const RATE_PATTERN = /^([1-9][0-9]{0,8})\/(s|sec|second|m|min|minute|h|hour|d|day)$/;

/** The rate, or undefined when the text is not one. */
export function parseRate(text: string): RateSpec | undefined {
  const m = RATE_PATTERN.exec(text);
  if (!m) return undefined;
  const unit = UNITS[m[2]!]!;
  const count = Number(m[1]);
  return Object.freeze({ text: `${count}/${unit.name}`, count, perMs: unit.ms });
}
