import { mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AuditFile, OpenAuditFile } from '../../../src/audit/index.js';

export interface TempDir {
  dir: string;
  log: string;
  cleanup(): Promise<void>;
}

export async function tempDir(): Promise<TempDir> {
  const dir = await mkdtemp(join(tmpdir(), 'authsome-audit-'));
  return { dir, log: join(dir, 'audit.log'), cleanup: () => rm(dir, { recursive: true, force: true }) };
}

/** A fixed clock that advances one second per call, so `since` filters are deterministic. */
export function steppingClock(start = Date.parse('2025-01-01T00:00:00.000Z')): () => Date {
  let t = start;
  return () => {
    const d = new Date(t);
    t += 1000;
    return d;
  };
}

export function errno(code: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`${code}: injected fault`), { code });
}

/**
 * Wraps real FileHandles: counts calls and lets a test inject faults. `writeFault` may write part of
 * the buffer first (as a disk filling up mid-write does) before throwing.
 */
export class FaultyFs {
  writes = 0;
  datasyncs = 0;
  opens = 0;
  writeFault: { partialBytes: number; error: NodeJS.ErrnoException } | undefined;
  syncFault: NodeJS.ErrnoException | undefined;
  /** Delay each datasync, so appends pile up behind a slow flush. */
  syncDelayMs = 0;
  readonly handles = new Set<AuditFile>();

  readonly openFile: OpenAuditFile = async (path) => {
    this.opens += 1;
    const fh = await open(path, 'a', 0o600);
    const file: AuditFile = {
      write: async (buf, off, len) => {
        this.writes += 1;
        const fault = this.writeFault;
        if (fault !== undefined) {
          if (fault.partialBytes > 0) await fh.write(buf, off, Math.min(len, fault.partialBytes));
          throw fault.error;
        }
        return fh.write(buf, off, len);
      },
      datasync: async () => {
        this.datasyncs += 1;
        if (this.syncDelayMs > 0) await new Promise((r) => setTimeout(r, this.syncDelayMs));
        if (this.syncFault !== undefined) throw this.syncFault;
        return fh.datasync();
      },
      truncate: (len) => fh.truncate(len),
      stat: () => fh.stat(),
      close: async () => {
        this.handles.delete(file);
        await fh.close();
      },
    };
    this.handles.add(file);
    return file;
  };
}
