import { describe, expect, it } from 'vitest';
import { assertName, closest, isValidName } from '../../src/names.js';

describe('names', () => {
  it('accepts the grammar and refuses the rest, never normalising', () => {
    for (const ok of ['a', 'work', 'agent-pr-bot', 'a.b_c-d', '0', 'x'.repeat(64)])
      expect(isValidName(ok), ok).toBe(true);
    for (const bad of ['', 'Work', '-a', '.a', 'a/b', 'a b', 'x'.repeat(65), 'é', 'a\n'])
      expect(isValidName(bad), bad).toBe(false);
    expect(() => assertName('connection', 'Work')).toThrow(
      expect.objectContaining({ code: 'ERR_NAME_INVALID' }),
    );
  });

  it('suggests a close name for typos only', () => {
    expect(closest('githb', ['github', 'gitlab', 'openai'])).toBe('github');
    expect(closest('opneai', ['github', 'openai'])).toBe('openai');
    expect(closest('stripe', ['github', 'openai'])).toBeUndefined();
  });
});
