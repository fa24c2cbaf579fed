import { describe, expect, it } from 'vitest';
import { mask, MASK_MIN_LENGTH } from '../../src/secret.js';

describe('mask', () => {
  it('shows nothing of a value shorter than the minimum', () => {
    for (const v of ['a', 'sk-12345', 'x'.repeat(16), 'y'.repeat(MASK_MIN_LENGTH - 1)])
      expect(mask(v)).toBe('****');
  });

  it('keeps only the first 4 characters of a long value, and at least 20 stay hidden', () => {
    const v = `ghp_${'z'.repeat(MASK_MIN_LENGTH - 4)}`;
    expect(mask(v)).toBe(`ghp_…**** (${MASK_MIN_LENGTH} chars)`);
    expect(mask(v)).not.toContain('z');
    expect(MASK_MIN_LENGTH - 4).toBeGreaterThanOrEqual(20);
  });
});
