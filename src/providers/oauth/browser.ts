import { spawn } from 'node:child_process';
import { isLoopbackLiteral } from './endpoint.js';

interface ChildLike {
  once(event: 'spawn' | 'error', listener: () => void): unknown;
  unref(): void;
}
export type SpawnLike = (
  command: string,
  args: string[],
  options: { stdio: 'ignore'; detached: boolean },
) => ChildLike;

export interface OpenBrowserDeps {
  platform?: NodeJS.Platform;
  env?: Readonly<Record<string, string | undefined>>;
  spawnImpl?: SpawnLike;
}

/** The opener for this desktop, or undefined on a headless machine (SSH, container, CI). */
export function browserCommand(
  platform: NodeJS.Platform,
  env: Readonly<Record<string, string | undefined>>,
): { command: string; args: string[] } | undefined {
  if (platform === 'darwin') return { command: 'open', args: [] };
  if (platform === 'win32') return { command: 'rundll32', args: ['url.dll,FileProtocolHandler'] };
  const display = (env['DISPLAY'] ?? '') !== '' || (env['WAYLAND_DISPLAY'] ?? '') !== '';
  return display ? { command: 'xdg-open', args: [] } : undefined;
}

/**
 * Opens `url` in the user's browser when there is one. Resolves false when there is none or the
 * opener cannot be started, so the CLI prints the URL instead. No shell is involved: the URL is one
 * argv entry, and only https (or http to a loopback literal) URLs are opened.
 */
export async function openBrowser(url: string, deps: OpenBrowserDeps = {}): Promise<boolean> {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return false;
  }
  const ok =
    parsed.protocol === 'https:' || (parsed.protocol === 'http:' && isLoopbackLiteral(parsed.hostname));
  if (!ok) return false;
  const cmd = browserCommand(deps.platform ?? process.platform, deps.env ?? process.env);
  if (cmd === undefined) return false;
  const spawnImpl: SpawnLike = deps.spawnImpl ?? ((c, a, o) => spawn(c, a, o));
  return new Promise<boolean>((resolve) => {
    try {
      const child = spawnImpl(cmd.command, [...cmd.args, parsed.href], { stdio: 'ignore', detached: true });
      child.once('error', () => resolve(false));
      child.once('spawn', () => {
        child.unref();
        resolve(true);
      });
    } catch {
      resolve(false);
    }
  });
}
