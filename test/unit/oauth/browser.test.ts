import { describe, expect, it } from 'vitest';
import { EventEmitter } from 'node:events';
import { browserCommand, openBrowser } from '../../../src/providers/oauth.js';
import type { SpawnLike } from '../../../src/providers/oauth.js';

function fakeSpawn(outcome: 'spawn' | 'error') {
  const calls: Array<{ command: string; args: string[]; detached: boolean }> = [];
  const spawnImpl: SpawnLike = (command, args, options) => {
    calls.push({ command, args, detached: options.detached });
    const child = Object.assign(new EventEmitter(), { unref: () => undefined });
    setImmediate(() => child.emit(outcome, new Error('ENOENT')));
    return child;
  };
  return { calls, spawnImpl };
}

describe('openBrowser', () => {
  it('uses xdg-open with a display, open on macOS, nothing when headless', () => {
    expect(browserCommand('linux', { DISPLAY: ':0' })?.command).toBe('xdg-open');
    expect(browserCommand('linux', { WAYLAND_DISPLAY: 'wayland-0' })?.command).toBe('xdg-open');
    expect(browserCommand('linux', {})).toBeUndefined();
    expect(browserCommand('darwin', {})?.command).toBe('open');
  });

  it('passes the URL as one argv entry, detached, and reports whether it started', async () => {
    const ok = fakeSpawn('spawn');
    const url = 'https://example.test/authorize?a=1&b=$(rm -rf ~)';
    expect(
      await openBrowser(url, { platform: 'linux', env: { DISPLAY: ':0' }, spawnImpl: ok.spawnImpl }),
    ).toBe(true);
    expect(ok.calls).toEqual([{ command: 'xdg-open', args: [new URL(url).href], detached: true }]);
    const missing = fakeSpawn('error');
    expect(await openBrowser(url, { platform: 'darwin', env: {}, spawnImpl: missing.spawnImpl })).toBe(false);
  });

  it('returns false headless and for non-https URLs, without spawning', async () => {
    const s = fakeSpawn('spawn');
    const env = { DISPLAY: ':0' };
    expect(
      await openBrowser('https://example.test', { platform: 'linux', env: {}, spawnImpl: s.spawnImpl }),
    ).toBe(false);
    for (const url of [
      'http://example.test/',
      'file:///etc/passwd',
      '-oProxyCommand=x',
      'javascript:alert(1)',
    ]) {
      expect(await openBrowser(url, { platform: 'linux', env, spawnImpl: s.spawnImpl })).toBe(false);
    }
    expect(s.calls).toHaveLength(0);
  });
});
