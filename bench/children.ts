import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { rmSync } from 'node:fs';

/**
 * Every process and temp dir the bench creates, so that any exit (normal, error, Ctrl-C) ends the
 * processes by their own pid and removes the dirs. Nothing is ever killed by name.
 */
const live = new Set<ChildProcess>();
/** Daemons started indirectly (by `authsome init`), known only by the pid in daemon.json. */
const foreignPids = new Set<number>();
const dirs = new Set<string>();

export function spawnTracked(cmd: string, args: readonly string[], opts: SpawnOptions): ChildProcess {
  const child = spawn(cmd, args, opts);
  live.add(child);
  child.once('exit', () => live.delete(child));
  child.once('error', () => live.delete(child));
  return child;
}

/** Pids of the processes this bench runs right now (for CPU accounting). */
export function livePids(): number[] {
  const out: number[] = [];
  for (const c of live)
    if (c.pid !== undefined && c.exitCode === null && c.signalCode === null) out.push(c.pid);
  return out;
}

export function trackPid(pid: number): void {
  foreignPids.add(pid);
}

export function untrackPid(pid: number): void {
  foreignPids.delete(pid);
}

export function trackDir(dir: string): void {
  dirs.add(dir);
}

/** SIGTERM, then SIGKILL after graceMs if it is still there. Resolves when it has exited. */
export function stopChild(child: ChildProcess, graceMs = 10_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

function killEverything(): void {
  for (const c of live) {
    try {
      c.kill('SIGKILL');
    } catch {
      // already gone
    }
  }
  for (const pid of foreignPids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  live.clear();
  foreignPids.clear();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
  dirs.clear();
}

let installed = false;
export function installCleanup(): void {
  if (installed) return;
  installed = true;
  process.on('exit', killEverything);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(sig, () => {
      console.error(`\nbench: ${sig}, stopping children`);
      killEverything();
      process.exit(130);
    });
  }
  process.on('uncaughtException', (e) => {
    console.error('bench: uncaught', e);
    killEverything();
    process.exit(1);
  });
  process.on('unhandledRejection', (e) => {
    console.error('bench: unhandled rejection', e);
    killEverything();
    process.exit(1);
  });
}
