import { spawn } from 'node:child_process';
import { openSync, closeSync, existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { AppError } from '../errors.js';
import type { HomePaths } from '../config/paths.js';
import { readDaemonInfo, isAlive, type DaemonInfo } from './daemon-file.js';

const CLI_MAIN = fileURLToPath(new URL('../cli/main.js', import.meta.url));

/** The daemon named by daemon.json, if its process is alive. */
export async function runningDaemon(paths: HomePaths): Promise<DaemonInfo | undefined> {
  const info = await readDaemonInfo(paths.daemonJson);
  return info && isAlive(info.pid) ? info : undefined;
}

function logTail(path: string): string {
  try {
    return readFileSync(path, 'utf8').trim().split('\n').slice(-6).join('\n');
  } catch {
    return '';
  }
}

/** Starts `authsome daemon serve` detached and waits until it has written daemon.json. */
export async function startDaemon(paths: HomePaths, timeoutMs = 15_000): Promise<DaemonInfo> {
  const existing = await runningDaemon(paths);
  if (existing) return existing;
  if (!existsSync(paths.masterKey)) {
    throw new AppError('ERR_HOME_NOT_INITIALISED', `no authsome home at ${paths.home}`, 'run `authsome init` first');
  }
  const log = openSync(paths.daemonLog, 'a', 0o600);
  const child = spawn(process.execPath, [CLI_MAIN, 'daemon', 'serve', '--home', paths.home], {
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
      const tail = logTail(paths.daemonLog);
      throw new AppError('ERR_DAEMON_START_FAILED', `the daemon exited while starting (code ${exited})${tail ? `:\n${tail}` : ''}`, `fix the cause above; the full log is ${paths.daemonLog}`);
    }
    await sleep(25);
  }
  throw new AppError('ERR_DAEMON_START_FAILED', `the daemon did not become ready within ${timeoutMs / 1000}s`, `see ${paths.daemonLog}`);
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
  throw new AppError('ERR_DAEMON_UNREACHABLE', `the daemon (pid ${info.pid}) did not stop within ${timeoutMs / 1000}s`, `kill ${info.pid}`);
}
