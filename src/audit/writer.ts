import { AppError } from '../errors.js';
import { chainRecord } from './chain.js';
import {
  openForAppend,
  sizeAt,
  stillAt,
  writeAll,
  type AuditFile,
  type FileId,
  type OpenAuditFile,
} from './file.js';
import { recoverLog, type Head } from './recover.js';
import type { AuditInput, AuditRecord, AuditSink } from './types.js';
import { validateInput } from './validate.js';

export interface AuditWriterOptions {
  clock?: () => Date;
  /** false skips datasync (page cache only): for the benchmark's comparison, never for the daemon. */
  fsync?: boolean;
  /** Internal hook: how the append handle is opened (tests count syncs and inject disk faults). */
  openFile?: OpenAuditFile;
}

export type AuditListener = (record: AuditRecord) => void;

interface Pending {
  input: AuditInput;
  ts: string;
  resolve: (record: AuditRecord) => void;
  reject: (err: AppError) => void;
}

const nextCheckPhase = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

const HINT = 'check free space and permissions of AUTHSOME_HOME; the next request retries';
const RESTART_HINT =
  'find out what changed AUTHSOME_HOME/audit.log (authsome audit verify), then restart the daemon (authsome daemon stop; authsome daemon start)';

function unavailable(message: string, cause: unknown): AppError {
  return cause instanceof AppError ? cause : new AppError('ERR_AUDIT_UNAVAILABLE', message, HINT, { cause });
}

/**
 * The daemon's only audit writer (SPEC section 6). append() resolves once its line is durable (promise 3:
 * audit before send). Group commit: appends queue while a flush runs; the next flush writes the whole
 * queue with one durable write (O_DSYNC; write + fdatasync where the platform lacks it), so throughput
 * scales with concurrency instead of sync latency.
 * seq/prev/hash are assigned at flush time in queue order, so the in-memory head only ever moves to a
 * durable record and a failed batch needs no re-chaining of later ones.
 */
export class AuditWriter implements AuditSink {
  readonly path: string;
  readonly #clock: () => Date;
  readonly #fsync: boolean;
  readonly #openFile: OpenAuditFile;
  #head: Head;
  #file: AuditFile | undefined;
  /** Which file #file is (dev/ino from fstat at open), to notice the path being deleted or replaced. */
  #fileId: FileId = {};
  /** A failed batch may have left bytes past head.size: trim them before the next write. */
  #dirty = false;
  #queue: Pending[] = [];
  #flushing = false;
  #idle: Array<() => void> = [];
  #closed = false;
  readonly #listeners = new Set<AuditListener>();

  private constructor(path: string, head: Head, opts: AuditWriterOptions) {
    this.path = path;
    this.#head = head;
    this.#clock = opts.clock ?? (() => new Date());
    this.#fsync = opts.fsync ?? true;
    this.#openFile = opts.openFile ?? openForAppend;
  }

  /** Opens (creating 0600) the log, recovering a torn tail: saved aside, truncated, reported. */
  static async open(path: string, opts: AuditWriterOptions = {}): Promise<AuditWriter> {
    let head;
    try {
      head = await recoverLog(path, opts.clock ?? (() => new Date()));
    } catch (err) {
      throw unavailable(`cannot open the audit log at ${path}`, err);
    }
    const writer = new AuditWriter(path, { seq: head.seq, prev: head.prev, size: head.size }, opts);
    if (head.torn !== undefined) {
      const detail = { torn_bytes: head.torn.bytes, saved_to: head.torn.savedTo };
      await writer.append({ event: 'audit.recovered', profile: '-', detail }).catch(async (err: unknown) => {
        await writer.close();
        throw err;
      });
    }
    return writer;
  }

  /** seq and hash of the last durable record (seq 0 and GENESIS for an empty log). */
  get head(): { seq: number; hash: string } {
    return { seq: this.#head.seq, hash: this.#head.prev };
  }

  /** Rejects with TypeError for a malformed input (never thrown synchronously: callers chain .catch). */
  append(input: AuditInput): Promise<AuditRecord> {
    let clean: AuditInput;
    try {
      clean = validateInput(input);
    } catch (err) {
      return Promise.reject(err as TypeError);
    }
    if (this.#closed) {
      return Promise.reject(new AppError('ERR_AUDIT_UNAVAILABLE', 'the audit writer is closed', HINT));
    }
    const ts = this.#clock().toISOString();
    return new Promise((resolve, reject) => {
      this.#queue.push({ input: clean, ts, resolve, reject });
      if (this.#flushing) return;
      this.#flushing = true;
      void this.#drain();
    });
  }

  /**
   * Rejects with ERR_AUDIT_UNAVAILABLE when a record could not be written now (the writer is closed,
   * or the log was deleted, replaced or changed outside it). For changes that are stored before they
   * are audited (control API): checked first, a broken log refuses them instead of letting them
   * happen unrecorded. A disk that fills between the check and the record is still possible.
   */
  async ready(): Promise<void> {
    if (this.#closed) throw new AppError('ERR_AUDIT_UNAVAILABLE', 'the audit writer is closed', HINT);
    // The file must be the one written to, and hold what was written: no more (appended to, or a
    // batch in flight or a failed one not cut back yet), and no less (cut short).
    const size = await sizeAt(this.path, this.#file === undefined ? undefined : this.#fileId);
    const ok =
      size !== undefined &&
      (this.#flushing || this.#dirty ? size >= this.#head.size : size === this.#head.size);
    if (!ok) {
      throw new AppError(
        'ERR_AUDIT_UNAVAILABLE',
        'the audit log was deleted, replaced or changed outside the daemon, so nothing is changed',
        RESTART_HINT,
      );
    }
  }

  /** Called after each durable record, in seq order; for `audit --follow`. Returns an unsubscribe. */
  onAppend(listener: AuditListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Flushes what is queued, then closes. Later appends reject. */
  async close(): Promise<void> {
    this.#closed = true;
    if (this.#flushing) await new Promise<void>((resolve) => this.#idle.push(resolve));
    const file = this.#file;
    this.#file = undefined;
    this.#listeners.clear();
    await file?.close();
  }

  async #drain(): Promise<void> {
    // Each batch starts after the event loop's current I/O phase (setImmediate), not at once: the
    // requests that arrived in the same wake-up (and those released by the previous batch) join it,
    // so under load one sync covers many records, and an idle daemon waits only microseconds.
    await nextCheckPhase();
    while (this.#queue.length > 0) {
      const batch = this.#queue;
      this.#queue = [];
      // #commit handles disk errors itself; this only guards against a bug leaving waiters hanging.
      await this.#commit(batch).catch((err: unknown) => {
        for (const p of batch) p.reject(unavailable('the audit log could not be written', err));
      });
      await nextCheckPhase();
    }
    this.#flushing = false; // same tick as the empty-queue check: no append can slip between
    for (const resolve of this.#idle.splice(0)) resolve();
  }

  async #commit(batch: Pending[]): Promise<void> {
    let { seq, prev } = this.#head;
    let text = '';
    const records: AuditRecord[] = [];
    for (const p of batch) {
      // p.input is validateInput's private copy: completed in place instead of copied again.
      const record = p.input as AuditRecord;
      record.ts = p.ts;
      record.seq = ++seq;
      record.prev = prev;
      const { hash, line } = chainRecord(record);
      record.hash = hash;
      text += `${line}\n`;
      prev = hash;
      records.push(record);
    }
    const buf = Buffer.from(text, 'utf8');
    try {
      const file = await this.#handle();
      // Checked alongside the write (no extra wait): a record written into a deleted or replaced file
      // is not in audit.log, so it must not count as durable (promise 3).
      const [, same] = await Promise.all([this.#writeDurably(file, buf), stillAt(this.path, this.#fileId)]);
      if (!same) {
        throw new AppError(
          'ERR_AUDIT_UNAVAILABLE',
          'the audit log was deleted or replaced while the daemon was running',
          RESTART_HINT,
        );
      }
    } catch (err) {
      await this.#discard();
      const error = unavailable('the audit log could not be written', err);
      for (const p of batch) p.reject(error);
      return;
    }
    this.#head = { seq, prev, size: this.#head.size + buf.length };
    batch.forEach((p, i) => p.resolve(records[i]!));
    for (const record of records) {
      for (const listener of this.#listeners) {
        try {
          listener(record);
        } catch {
          // a follower's bug must not fail the request whose record is already durable
        }
      }
    }
  }

  async #writeDurably(file: AuditFile, buf: Buffer): Promise<void> {
    await writeAll(file, buf);
    if (this.#fsync && file.durableWrites !== true) await file.datasync();
  }

  async #handle(): Promise<AuditFile> {
    if (this.#file !== undefined) return this.#file;
    const file = await this.#openFile(this.path, { durable: this.#fsync });
    try {
      const { size, dev, ino } = await file.stat();
      this.#fileId = { dev, ino };
      if (this.#dirty && size > this.#head.size) await file.truncate(this.#head.size);
      else if (size !== this.#head.size) {
        // Someone else wrote or cut the file: appending would fork the chain. Fail closed.
        throw new AppError('ERR_AUDIT_UNAVAILABLE', 'the audit log changed outside the writer', RESTART_HINT);
      }
    } catch (err) {
      await file.close().catch(() => undefined);
      throw err;
    }
    this.#dirty = false;
    this.#file = file;
    return file;
  }

  /** After a failed batch: cut partial bytes back to the last durable record, reopen on next use. */
  async #discard(): Promise<void> {
    const file = this.#file;
    this.#file = undefined;
    // No handle means the open/size check failed before any write: nothing of ours to cut, and
    // marking dirty would let the next open truncate bytes someone else wrote.
    if (file === undefined) return;
    this.#dirty = true;
    await file.truncate(this.#head.size).catch(() => undefined);
    await file.close().catch(() => undefined);
  }
}
