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
}

export async function readDaemonInfo(path: string): Promise<DaemonInfo | undefined> {
  try {
    const v = JSON.parse(await readFile(path, 'utf8')) as Partial<DaemonInfo>;
    if (typeof v.pid !== 'number' || typeof v.controlPort !== 'number' || typeof v.proxyPort !== 'number') return undefined;
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

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
