import { open } from 'node:fs/promises';

/**
 * The few file operations the writer's append path needs. A real `FileHandle` satisfies it; tests pass
 * a wrapper to count syncs or inject EIO/ENOSPC, since file modes cannot make writes fail for root.
 */
export interface AuditFile {
  write(buffer: Buffer, offset: number, length: number): Promise<{ bytesWritten: number }>;
  datasync(): Promise<void>;
  truncate(length: number): Promise<void>;
  stat(): Promise<{ size: number }>;
  close(): Promise<void>;
}

export type OpenAuditFile = (path: string) => Promise<AuditFile>;

/** O_APPEND: every write lands at the end even if the size we believe in is stale. */
export const openForAppend: OpenAuditFile = (path) => open(path, 'a', 0o600);

/** A write(2) may be short (e.g. the disk fills mid-way); loop until done or it throws. */
export async function writeAll(file: Pick<AuditFile, 'write'>, buf: Buffer): Promise<void> {
  for (let off = 0; off < buf.length;) {
    const { bytesWritten } = await file.write(buf, off, buf.length - off);
    if (bytesWritten <= 0) throw Object.assign(new Error('write made no progress'), { code: 'EIO' });
    off += bytesWritten;
  }
}
