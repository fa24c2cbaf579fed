import { open, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import { GENESIS } from './chain.js';
import { writeAll } from './file.js';
import { parseLine } from './parse.js';

/** Where the chain continues from: the last complete, valid line. */
export interface Head {
  seq: number;
  prev: string;
  /** Bytes of the file up to and including that line's newline. */
  size: number;
}

export interface Recovered extends Head {
  /** Set when bytes after the head were moved aside. */
  torn?: { bytes: number; savedTo: string };
}

const WINDOW = 64 * 1024;

/**
 * Finds the last complete line (ends in '\n') that parses and hashes correctly, reading backwards from
 * the end in growing windows so a large log is not read whole. A crash mid-group-commit can leave
 * several whole lines plus a fragment, or zero-filled blocks; all of it after the head counts as torn.
 */
export async function findHead(fh: FileHandle, fileSize: number): Promise<Head> {
  for (let window = Math.min(fileSize, WINDOW); window > 0; window = Math.min(fileSize, window * 2)) {
    const start = fileSize - window;
    const buf = Buffer.alloc(window);
    const { bytesRead } = await fh.read(buf, 0, window, start);
    const data = buf.subarray(0, bytesRead);
    let end = data.lastIndexOf(0x0a);
    while (end !== -1) {
      const before = end === 0 ? -1 : data.lastIndexOf(0x0a, end - 1);
      if (before === -1 && start > 0) break; // the line may begin before this window: widen it
      const parsed = parseLine(data.toString('utf8', before + 1, end));
      if (parsed.ok) return { seq: parsed.record.seq, prev: parsed.record.hash, size: start + end + 1 };
      end = before;
    }
    if (start === 0) break;
  }
  return { seq: 0, prev: GENESIS, size: 0 };
}

async function createTornFile(logPath: string, stamp: string): Promise<{ fh: FileHandle; path: string }> {
  for (let n = 0; ; n += 1) {
    const path = `${logPath}.torn-${stamp}${n === 0 ? '' : `-${n}`}`;
    try {
      return { fh: await open(path, 'wx', 0o600), path };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || n > 100) throw err;
    }
  }
}

/** fsync of the directory makes a created file or a new size survive a crash (POSIX leaves it open). */
export async function syncDir(path: string): Promise<void> {
  const dir = await open(dirname(path), 'r').catch(() => undefined);
  if (dir === undefined) return;
  await dir.sync().catch(() => undefined); // not supported on every platform; best effort
  await dir.close();
}

/**
 * Opens (creating, 0600) the log and finds its head. Torn bytes are never kept in the chain nor dropped:
 * they are copied to `<log>.torn-<stamp>` and made durable there before the log is truncated, so a
 * crash in between only leaves a second copy. The caller records an `audit.recovered` event.
 */
export async function recoverLog(path: string, clock: () => Date): Promise<Recovered> {
  const fh = await open(path, 'a+', 0o600);
  try {
    const st = await fh.stat();
    if ((st.mode & 0o777) !== 0o600) await fh.chmod(0o600); // SPEC section 3: audit.log is 0600
    const head = await findHead(fh, st.size);
    if (head.size === st.size) {
      if (st.size === 0) await syncDir(path);
      return head;
    }
    const torn = await createTornFile(path, clock().toISOString().replace(/[:.]/g, '-'));
    try {
      const buf = Buffer.alloc(Math.min(st.size - head.size, WINDOW));
      for (let pos = head.size; pos < st.size;) {
        const { bytesRead } = await fh.read(buf, 0, Math.min(buf.length, st.size - pos), pos);
        if (bytesRead === 0) break;
        await writeAll(torn.fh, buf.subarray(0, bytesRead));
        pos += bytesRead;
      }
      await torn.fh.sync();
    } finally {
      await torn.fh.close();
    }
    await syncDir(path);
    await fh.truncate(head.size);
    await fh.sync();
    return { ...head, torn: { bytes: st.size - head.size, savedTo: torn.path } };
  } finally {
    await fh.close();
  }
}
