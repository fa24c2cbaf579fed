import { close, constants, fdatasync, fstat, ftruncate, open, stat, write } from 'node:fs';

/**
 * The few file operations the writer's append path needs: `openForAppend` below in the daemon; tests
 * pass a wrapper around a `FileHandle` (which satisfies it too) to count syncs or inject EIO/ENOSPC,
 * since file modes cannot make writes fail for root.
 */
export interface AuditFile {
  write(buffer: Buffer, offset: number, length: number): Promise<{ bytesWritten: number }>;
  datasync(): Promise<void>;
  truncate(length: number): Promise<void>;
  /** `dev`/`ino` (when given) tell the writer whether the path still names this file. */
  stat(): Promise<{ size: number; dev?: number; ino?: number }>;
  close(): Promise<void>;
  /**
   * True when the file was opened with O_DSYNC: each write returns only once its bytes are on disk,
   * so the writer needs no separate datasync (one system call and one thread-pool trip per batch).
   */
  readonly durableWrites?: boolean;
}

export interface OpenAuditOptions {
  /** Ask for durable writes (O_DSYNC) where the platform has it. */
  durable: boolean;
}

export type OpenAuditFile = (path: string, opts: OpenAuditOptions) => Promise<AuditFile>;

/**
 * O_APPEND: every write lands at the end even if the size we believe in is stale. With `durable`,
 * O_DSYNC too (Linux, macOS); where the constant is missing the writer falls back to datasync().
 */
export const openForAppend: OpenAuditFile = async (path, { durable }) => {
  const dsync = durable ? (constants.O_DSYNC ?? 0) : 0;
  const flags = constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT | dsync;
  const fd = await call<number>((cb) => open(path, flags, 0o600, cb));
  return fdFile(fd, dsync !== 0);
};

/** Node's callback API wrapped once: on the hot path it costs less than a FileHandle's promises. */
function call<T>(start: (cb: (err: NodeJS.ErrnoException | null, value: T) => void) => void): Promise<T> {
  return new Promise((resolve, reject) => start((err, value) => (err ? reject(err) : resolve(value))));
}

function fdFile(fd: number, durableWrites: boolean): AuditFile {
  let closed: Promise<void> | undefined;
  return {
    durableWrites,
    write: (buf, offset, length) =>
      call<number>((cb) => write(fd, buf, offset, length, null, cb)).then((bytesWritten) => ({
        bytesWritten,
      })),
    datasync: () => call<void>((cb) => fdatasync(fd, (err) => cb(err, undefined))),
    truncate: (length) => call<void>((cb) => ftruncate(fd, length, (err) => cb(err, undefined))),
    stat: () => call((cb) => fstat(fd, cb)),
    close: () => (closed ??= call<void>((cb) => close(fd, (err) => cb(err, undefined)))),
  };
}

/** A write(2) may be short (e.g. the disk fills mid-way); loop until done or it throws. */
export async function writeAll(file: Pick<AuditFile, 'write'>, buf: Buffer): Promise<void> {
  for (let off = 0; off < buf.length;) {
    const { bytesWritten } = await file.write(buf, off, buf.length - off);
    if (bytesWritten <= 0) throw Object.assign(new Error('write made no progress'), { code: 'EIO' });
    off += bytesWritten;
  }
}

/**
 * Whether `path` still names the file `id` describes (false when it was deleted or replaced, e.g. by
 * an editor's save-by-rename). True when the identity is unknown (test doubles without an inode).
 */
export function stillAt(path: string, id: FileId): Promise<boolean> {
  if (id.ino === undefined || id.dev === undefined) return Promise.resolve(true);
  return sizeAt(path, id).then((size) => size !== undefined);
}

export interface FileId {
  dev?: number | undefined;
  ino?: number | undefined;
}

/** The size of the file at `path`; undefined when it is missing or (`id` known) another file. */
export function sizeAt(path: string, id: FileId | undefined): Promise<number | undefined> {
  return new Promise((resolve) =>
    stat(path, (err, st) =>
      resolve(
        err || (id?.ino !== undefined && (st.ino !== id.ino || st.dev !== id.dev)) ? undefined : st.size,
      ),
    ),
  );
}
