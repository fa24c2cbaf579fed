import { spawn } from 'node:child_process';
import { openSync, closeSync, existsSync, fstatSync, readFileSync } from 'node:fs';
import { open, readFile, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { AppError } from '../errors.js';
import { loggedErrorAt } from './daemon-log.js';
import type { HomePaths } from '../config/paths.js';
import { readDaemonInfo, isAlive, isDaemonProcess, type DaemonInfo } from './daemon-file.js';

const CLI_MAIN = fileURLToPath(new URL('../cli/main.js', import.meta.url));

/**
 * The daemon named by daemon.json, if that process is still the daemon. A daemon killed with -9 leaves
 * its daemon.json behind: a dead pid, or later a reused one, means "not running".
 */
export async function runningDaemon(paths: HomePaths): Promise<DaemonInfo | undefined> {
  const info = await readDaemonInfo(paths.daemonJson);
  return info && isDaemonProcess(info) ? info : undefined;
}

/**
 * Why a daemon that exited while starting failed, from what it printed to the log since `from`: its own
 * `authsome: … [ERR_…]` line and next step when it printed one (the usual case), else the last lines.
 */
function startFailure(path: string, from: number, exited: number | null): AppError {
  let text = '';
  try {
    text = readFileSync(path).subarray(from).toString('utf8').trim();
  } catch {
    // no log: report the exit code alone
  }
  const lines = text.split('\n');
  const at = lines.findLastIndex((_, i) => loggedErrorAt(lines, i) !== undefined);
  const where = `the full log is ${path}`;
  const err = at === -1 ? undefined : loggedErrorAt(lines, at);
  if (err) {
    // The daemon's own code (ERR_HOME_PERMISSIONS, ERR_VAULT_SEALED…): its exit code, and one code shown.
    return new AppError(
      err.code,
      `the daemon could not start: ${err.message}`,
      err.hint ? `${err.hint} (${where})` : where,
    );
  }
  const tail = lines.slice(-6).join('\n');
  return new AppError(
    'ERR_DAEMON_START_FAILED',
    `the daemon exited while starting (code ${exited})${tail ? `:\n${tail}` : ''}`,
    `fix the cause above; ${where}`,
  );
}

/**
 * Serialises daemon starts of one home across CLI processes (an O_EXCL lock file holding the holder's
 * pid). Without it, commands run side by side after a crash each spawn a daemon: all but one fail on the
 * store lock, and their commands fail with them. A lock whose holder died is taken over.
 */
async function withStartLock<T>(paths: HomePaths, timeoutMs: number, fn: () => Promise<T>): Promise<T> {
  const lock = join(paths.serverDir, 'daemon.start.lock');
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const fh = await open(lock, 'wx', 0o600);
      try {
        await fh.writeFile(`${process.pid}\n`);
      } finally {
        await fh.close();
      }
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    if (await staleLock(lock)) {
      await rm(lock, { force: true });
      continue;
    }
    if (Date.now() > deadline) {
      throw new AppError(
        'ERR_DAEMON_START_FAILED',
        'another authsome command has been starting the daemon for too long',
        `retry; if it persists, remove ${lock}`,
      );
    }
    await sleep(20 + Math.random() * 30);
  }
  try {
    return await fn();
  } finally {
    await rm(lock, { force: true });
  }
}

/** The holder died (kill -9 of a CLI): its pid is gone, or it never got to write one. */
async function staleLock(lock: string): Promise<boolean> {
  const [text, st] = await Promise.all([
    readFile(lock, 'utf8').catch(() => undefined),
    stat(lock).catch(() => undefined),
  ]);
  if (text === undefined || st === undefined) return false; // just released: retry at once
  const pid = Number(text.trim());
  if (Number.isSafeInteger(pid) && pid > 0) return !isAlive(pid);
  return Date.now() - st.mtimeMs > 2_000; // empty: a holder between create and write, unless it is old
}

/** Starts `authsome daemon serve` detached and waits until it has written daemon.json. */
export async function startDaemon(
  paths: HomePaths,
  timeoutMs = 15_000,
  /** Flags for `daemon serve` (e.g. --listen ADDR). */
  serveArgs: readonly string[] = [],
): Promise<DaemonInfo> {
  const existing = await runningDaemon(paths);
  if (existing) return existing;
  if (!existsSync(paths.masterKey)) {
    throw new AppError(
      'ERR_HOME_NOT_INITIALISED',
      `no authsome home at ${paths.home}`,
      'run `authsome init` first',
    );
  }
  return withStartLock(paths, timeoutMs, async () => {
    // Another command may have started it while this one waited for the lock.
    const started = await runningDaemon(paths);
    return started ?? (await spawnDaemon(paths, timeoutMs, serveArgs));
  });
}

async function spawnDaemon(
  paths: HomePaths,
  timeoutMs: number,
  serveArgs: readonly string[],
): Promise<DaemonInfo> {
  const log = openSync(paths.daemonLog, 'a', 0o600);
  const logStart = fstatSync(log).size;
  const child = spawn(process.execPath, [CLI_MAIN, 'daemon', 'serve', '--home', paths.home, ...serveArgs], {
    detached: true,
    stdio: ['ignore', log, log],
    env: process.env,
  });
  closeSync(log);
  let exited: number | null | undefined;
  child.once('exit', (code) => {
    exited = code;
  });
  child.unref();
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const info = await readDaemonInfo(paths.daemonJson);
    if (info && info.pid === child.pid) return info;
    if (exited !== undefined) {
      // It may have lost a race for the store to a daemon started outside this lock (`daemon serve`).
      const other = await runningDaemon(paths);
      if (other) return other;
      throw startFailure(paths.daemonLog, logStart, exited);
    }
    await sleep(25);
  }
  throw new AppError(
    'ERR_DAEMON_START_FAILED',
    `the daemon did not become ready within ${timeoutMs / 1000}s`,
    `see ${paths.daemonLog}`,
  );
}

/** SIGTERM (drain, flush audit, close store), then wait for the process to go. */
export async function stopDaemon(paths: HomePaths, timeoutMs = 15_000): Promise<DaemonInfo | undefined> {
  const info = await runningDaemon(paths);
  if (!info) return undefined;
  process.kill(info.pid, 'SIGTERM');
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!isAlive(info.pid)) return info;
    await sleep(25);
  }
  throw new AppError(
    'ERR_DAEMON_UNREACHABLE',
    `the daemon (pid ${info.pid}) did not stop within ${timeoutMs / 1000}s`,
    `kill ${info.pid}`,
  );
}
