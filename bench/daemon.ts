import { closeSync, openSync, readFileSync, existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ChildProcess } from 'node:child_process';
import { spawnTracked, stopChild, trackPid, untrackPid } from './children.js';

export const REPO = resolve(import.meta.dirname, '../..');
export const CLI = join(REPO, 'dist/src/cli/main.js');

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
  ms: number;
}

/** Runs the built CLI once (bounded: killed after timeoutMs). */
export function cli(
  env: NodeJS.ProcessEnv,
  args: string[],
  input = '',
  timeoutMs = 30_000,
): Promise<CliResult> {
  return new Promise((resolvePromise, reject) => {
    const t0 = performance.now();
    const child = spawnTracked(process.execPath, [CLI, ...args], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolvePromise({ code: code ?? -1, stdout, stderr, ms: performance.now() - t0 });
    });
    child.stdin!.end(input);
  });
}

export async function cliOk(env: NodeJS.ProcessEnv, args: string[], input = ''): Promise<CliResult> {
  const r = await cli(env, args, input);
  if (r.code !== 0) throw new Error(`authsome ${args.join(' ')} failed (${r.code}): ${r.stderr.trim()}`);
  return r;
}

export interface DaemonInfo {
  pid: number;
  controlPort: number;
  proxyPort: number;
}

export function readDaemonInfo(home: string): DaemonInfo | undefined {
  try {
    const v = JSON.parse(readFileSync(join(home, 'server/daemon.json'), 'utf8')) as Partial<DaemonInfo>;
    return typeof v.pid === 'number' && typeof v.proxyPort === 'number' ? (v as DaemonInfo) : undefined;
  } catch {
    return undefined;
  }
}

/** A daemon this bench runs in the foreground (`authsome daemon serve`), so it owns its pid. */
export interface Daemon {
  readonly home: string;
  readonly pid: number;
  readonly proxyPort: number;
  readonly child: ChildProcess;
  stop(): Promise<void>;
}

export async function serveDaemon(
  env: NodeJS.ProcessEnv,
  nodeArgs: string[] = [],
  timeoutMs = 20_000,
): Promise<Daemon> {
  const home = env['AUTHSOME_HOME']!;
  const logPath = join(home, 'server/bench-daemon.log');
  const log = openSync(logPath, 'a', 0o600);
  const child = spawnTracked(process.execPath, [...nodeArgs, CLI, 'daemon', 'serve'], {
    env,
    stdio: ['ignore', log, log],
    cwd: REPO,
  });
  closeSync(log);
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(
        `daemon exited while starting: ${readFileSync(logPath, 'utf8').trim().split('\n').slice(-8).join('\n')}`,
      );
    }
    const info = readDaemonInfo(home);
    if (info && info.pid === child.pid) {
      return { home, pid: info.pid, proxyPort: info.proxyPort, child, stop: () => stopChild(child, 15_000) };
    }
    await sleep(20);
  }
  await stopChild(child, 1000);
  throw new Error(`daemon did not write daemon.json within ${timeoutMs} ms`);
}

/** Stops the background daemon that `init` started (SIGTERM by its pid, SIGKILL if it lingers). */
export async function stopBackgroundDaemon(home: string): Promise<void> {
  const info = readDaemonInfo(home);
  if (!info) return;
  trackPid(info.pid);
  try {
    process.kill(info.pid, 'SIGTERM');
  } catch {
    untrackPid(info.pid);
    return;
  }
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline && existsSync(`/proc/${info.pid}`)) await sleep(20);
  if (existsSync(`/proc/${info.pid}`)) process.kill(info.pid, 'SIGKILL');
  untrackPid(info.pid);
}

export interface Mem {
  rssMB: number;
  hwmMB: number;
}

/** VmRSS / VmHWM of a process from /proc (Linux only), in MB (10^6 bytes). */
export function memOf(pid: number): Mem {
  try {
    const s = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (k: string): number => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(s)?.[1] ?? NaN);
    return { rssMB: (kb('VmRSS') * 1024) / 1e6, hwmMB: (kb('VmHWM') * 1024) / 1e6 };
  } catch {
    return { rssMB: NaN, hwmMB: NaN };
  }
}

/** Samples VmRSS every intervalMs until stopped; reports the peak. */
export function sampleRss(pid: number, intervalMs = 25): { stop(): { peakMB: number; samples: number } } {
  let peak = 0;
  let samples = 0;
  const t = setInterval(() => {
    const m = memOf(pid).rssMB;
    if (m > peak) peak = m;
    samples++;
  }, intervalMs);
  return {
    stop() {
      clearInterval(t);
      const m = memOf(pid).rssMB;
      if (m > peak) peak = m;
      return { peakMB: peak, samples: samples + 1 };
    },
  };
}

/** Registers the pid of a daemon that the CLI started in the background, so an abort ends it too. */
export function trackPidOf(home: string): void {
  const info = readDaemonInfo(home);
  if (info) trackPid(info.pid);
}
