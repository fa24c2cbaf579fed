import { describe, expect, it } from 'vitest';
import { completionSlot } from '../../../src/cli/commands/completion.js';
import { keyVariables } from '../../../src/cli/session-env.js';

describe('completionSlot: what the word being completed names', () => {
  it.each([
    [['login'], { kind: 'provider' }],
    [['logout', 'github'], { kind: 'connection', provider: 'github' }],
    [['connection', 'show'], { kind: 'provider' }],
    [['connection', 'show', 'github'], { kind: 'connection', provider: 'github' }],
    [['connection', 'default', 'openai'], { kind: 'connection', provider: 'openai' }],
    [['provider', 'show'], { kind: 'provider' }],
    [['login', 'github', '--connection'], { kind: 'connection', provider: 'github' }],
    [['--home', '/h', 'login'], { kind: 'provider' }],
    [['run', '--allow'], { kind: 'allow' }],
    [['audit', '--provider'], { kind: 'provider' }],
  ])('%j -> %j', (words, slot) => {
    expect(completionSlot(words)).toEqual(slot);
  });

  it.each([
    [[]],
    [['connection']],
    [['login', 'github']],
    [['provider', 'show', 'x']],
    [['run', '--', 'curl']],
  ])('%j -> yargs’ own completion', (words) => {
    expect(completionSlot(words)).toBeUndefined();
  });
});

describe('keyVariables', () => {
  const providers = [
    { name: 'github', env: ['GITHUB_TOKEN', 'GH_TOKEN'], connections: ['work'] },
    { name: 'github-git', env: ['GITHUB_TOKEN'], connections: ['work'] },
    { name: 'openai', env: ['OPENAI_API_KEY'], connections: ['default'] },
    { name: 'anthropic', env: ['ANTHROPIC_API_KEY'], connections: [] },
  ];
  it('without --allow: a placeholder for every provider the profile holds a connection of', () => {
    expect(keyVariables(providers, undefined)).toEqual({
      placeholders: ['GITHUB_TOKEN', 'GH_TOKEN', 'OPENAI_API_KEY'],
      unset: [],
    });
  });
  it('with --allow: placeholders for the allowed, the other held providers’ variables removed', () => {
    expect(keyVariables(providers, [{ provider: 'openai' }])).toEqual({
      placeholders: ['OPENAI_API_KEY'],
      unset: ['GITHUB_TOKEN', 'GH_TOKEN'],
    });
  });
  it('a variable shared with an allowed provider is set, not removed', () => {
    expect(keyVariables(providers, [{ provider: 'github-git' }])).toEqual({
      placeholders: ['GITHUB_TOKEN'],
      unset: ['GH_TOKEN', 'OPENAI_API_KEY'],
    });
  });
});
