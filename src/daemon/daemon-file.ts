import { readFileSync } from 'node:fs';
import { readFile, writeFile, rename, rm } from 'node:fs/promises';

/** server/daemon.json: how the CLI finds a running daemon (several homes can run side by side). */
export interface DaemonInfo {
  pid: number;
  host: string;
  controlPort: number;
  proxyHost: string;
  proxyPort: number;
  startedAt: string;
  version: string;
  /**
   * The kernel's start time of the daemon process (Linux: /proc/<pid>/stat field 22). A pid is reused
   * once its process is gone, so after a crash daemon.json may name an unrelated live process; the
   * start time tells them apart, and keeps `daemon stop` from signalling someone else's process.
   */
  procStart?: string;
  /** Team mode: the node's name. */
  node?: string;
  /** Remote callers (--listen): where the TLS listeners are. */
  listen?: { host: string; controlPort: number; proxyPort: number };
}

export async function readDaemonInfo(path: string): Promise<DaemonInfo | undefined> {
  try {
    const v = JSON.parse(await readFile(path, 'utf8')) as Partial<DaemonInfo>;
    if (!Number.isSafeInteger(v.pid) || (v.pid as number) <= 0) return undefined;
    if (typeof v.controlPort !== 'number' || typeof v.proxyPort !== 'number') return undefined;
    return v as DaemonInfo;
  } catch {
    return undefined;
  }
}

export async function writeDaemonInfo(path: string, info: DaemonInfo): Promise<void> {
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, JSON.stringify(info, null, 2) + '\n', { mode: 0o600 });
  await rename(tmp, path);
}

/** Removes daemon.json only if it still names this process (a newer daemon may have replaced it). */
export async function removeDaemonInfo(path: string, pid: number): Promise<void> {
  const cur = await readDaemonInfo(path);
  if (cur?.pid === pid) await rm(path, { force: true });
}

/**
 * Whether pid names a live process. A process that has exited but is not yet reaped (a detached daemon
 * is reparented to init, which may reap it late) still answers kill(pid, 0): it counts as gone.
 */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
  return procStat(pid)?.[0] !== 'Z';
}

/** The fields of /proc/<pid>/stat from field 3 (state) on, where the OS has it (Linux). */
function procStat(pid: number): string[] | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // "pid (comm) state ppid …": comm may hold spaces and parentheses, so split after the last ')'.
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
}

/** Start time of a process in clock ticks since boot, where the OS tells (Linux); else undefined. */
export function processStartTime(pid: number): string | undefined {
  const start = procStat(pid)?.[19]; // field 22 overall
  return start !== undefined && /^\d+$/.test(start) ? start : undefined;
}

/** Is the process daemon.json names still that daemon (alive, and not a reused pid)? */
export function isDaemonProcess(info: DaemonInfo): boolean {
  if (!isAlive(info.pid)) return false;
  if (info.procStart === undefined) return true; // written where start times are unknown
  const now = processStartTime(info.pid);
  return now === undefined || now === info.procStart;
}
