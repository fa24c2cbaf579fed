import { mkdir } from 'node:fs/promises';
import { Level } from 'level';
import { AppError, isAppError } from '../errors.js';
import { KEYCHECK_KEY, prefixRange } from './keys.js';
import { decodeRecord, encodeRecord } from './record.js';
import { initSodium, MASTER_KEY_BYTES, open, seal } from './seal.js';
import type { BatchOp, KvStore, RecordValue } from './types.js';

export interface OpenVaultOptions {
  readonly dir: string;
  readonly masterKey: Uint8Array;
}

type Db = Level<string, Uint8Array>;

/** Every write is fsynced: a credential the user was told is saved must survive a power cut. */
const DURABLE = { sync: true } as const;
const KEYCHECK_VALUE = 'authsome-vault-keycheck-v1';

export async function openVault({ dir, masterKey }: OpenVaultOptions): Promise<KvStore> {
  if (!(masterKey instanceof Uint8Array) || masterKey.length !== MASTER_KEY_BYTES) {
    throw new TypeError(`master key must be ${MASTER_KEY_BYTES} bytes`);
  }
  await initSodium();
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const db: Db = new Level<string, Uint8Array>(dir, { keyEncoding: 'utf8', valueEncoding: 'view' });
  try {
    await db.open();
  } catch (e) {
    throw openFailure(e, dir);
  }
  try {
    await checkKey(db, masterKey);
  } catch (e) {
    await db.close().catch(() => undefined);
    throw isAppError(e) ? e : unavailable(e);
  }
  return new LevelKvStore(db, masterKey);
}

/**
 * Tells a wrong master key apart from a corrupt record. On a store that already holds data nothing
 * is written before the check passes, so a wrong key can never damage the store.
 */
async function checkKey(db: Db, masterKey: Uint8Array): Promise<void> {
  const sealedCheck = await db.get(KEYCHECK_KEY);
  if (sealedCheck === undefined) {
    const any = await db.keys({ limit: 1 }).all();
    if (any.length > 0) {
      throw new AppError(
        'ERR_VAULT_CORRUPT',
        'the store holds records but no key-check record',
        'restore server/kv_store from a backup',
      );
    }
    const check = encodeRecord({ check: KEYCHECK_VALUE });
    await db.put(KEYCHECK_KEY, seal(masterKey, KEYCHECK_KEY, check), DURABLE);
    return;
  }
  let value: RecordValue;
  try {
    value = decodeRecord(KEYCHECK_KEY, open(masterKey, KEYCHECK_KEY, sealedCheck));
  } catch {
    throw new AppError(
      'ERR_VAULT_SEALED',
      'the master key does not match this store; the vault stays sealed and nothing was written',
      'restore the server/master.key that created this store',
    );
  }
  if (value['check'] !== KEYCHECK_VALUE) {
    throw new AppError(
      'ERR_VAULT_CORRUPT',
      'the key-check record has unexpected content',
      'restore server/kv_store from a backup',
    );
  }
}

function openFailure(e: unknown, dir: string): AppError {
  const code = (e as { code?: unknown } | null)?.code;
  const causeCode = (e as { cause?: { code?: unknown } } | null)?.cause?.code;
  if (code === 'LEVEL_LOCKED' || causeCode === 'LEVEL_LOCKED') {
    return new AppError(
      'ERR_VAULT_LOCKED',
      'another authsome daemon has the store open',
      'stop it first: authsome daemon stop',
      { cause: e },
    );
  }
  return new AppError('ERR_VAULT_UNAVAILABLE', `could not open the vault store at ${dir}`, undefined, {
    cause: e,
  });
}

/** LevelDB errors carry codes and paths, never values, so keeping them as the cause is safe. */
function unavailable(e: unknown): AppError {
  return new AppError('ERR_VAULT_UNAVAILABLE', 'the vault store failed', 'check the daemon log', {
    cause: e,
  });
}

async function guard<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    throw isAppError(e) || e instanceof TypeError ? e : unavailable(e);
  }
}

function writableKey(key: string): string {
  if (typeof key !== 'string' || key === '') throw new TypeError('record key must be a non-empty string');
  if (key === KEYCHECK_KEY) throw new TypeError(`${KEYCHECK_KEY} is managed by the vault itself`);
  return key;
}

/**
 * LevelDB does not roll back a log record it could only partly append (ENOSPC or EIO mid-write): the
 * torn bytes stay in the log, the process carries on, and every record appended after them is dropped
 * with them when the log is replayed on the next open. So a write acknowledged after a failed one
 * would vanish in a crash. Two rules close that gap: writes run one at a time (nothing can be appended
 * behind a write that is failing), and after a failed write the database is closed and reopened, which
 * replays the log up to the torn record into a table and starts a fresh log, before anything else
 * touches it. A failed sync also leaves LevelDB refusing every later write until it is reopened.
 */
class LevelKvStore implements KvStore {
  readonly #db: Db;
  readonly #key: Uint8Array;
  /** The tail of the write queue; never rejects. */
  #writes: Promise<void> = Promise.resolve();
  #tainted = false;
  #reopening: Promise<void> | undefined;
  #closed = false;

  constructor(db: Db, masterKey: Uint8Array) {
    this.#db = db;
    this.#key = masterKey;
  }

  #open(key: string, sealed: Uint8Array): RecordValue {
    return decodeRecord(key, open(this.#key, key, sealed));
  }

  #seal(key: string, value: RecordValue): Uint8Array {
    return seal(this.#key, key, encodeRecord(value));
  }

  /** Reopens after a failed write; while the disk is still full this fails, and the next call retries. */
  async #ready(): Promise<Db> {
    while (this.#tainted && !this.#closed) {
      this.#reopening ??= (async () => {
        try {
          await this.#db.close().catch(() => undefined);
          await this.#db.open();
          this.#tainted = false;
        } finally {
          this.#reopening = undefined;
        }
      })();
      await this.#reopening;
    }
    return this.#db;
  }

  #write(op: (db: Db) => Promise<void>): Promise<void> {
    if (this.#closed) return Promise.reject(unavailable(new Error('the vault store is closed')));
    const run = this.#writes.then(async () => {
      const db = await this.#ready();
      try {
        await op(db);
      } catch (e) {
        this.#tainted = true;
        throw e;
      }
    });
    this.#writes = run.catch(() => undefined);
    return guard(() => run);
  }

  async get(key: string): Promise<RecordValue | undefined> {
    return guard(async () => {
      const sealed = await (await this.#ready()).get(key);
      return sealed === undefined ? undefined : this.#open(key, sealed);
    });
  }

  async put(key: string, value: RecordValue): Promise<void> {
    const sealed = this.#seal(writableKey(key), value);
    await this.#write((db) => db.put(key, sealed, DURABLE));
  }

  async del(key: string): Promise<void> {
    writableKey(key);
    await this.#write((db) => db.del(key, DURABLE));
  }

  async batch(ops: readonly BatchOp[]): Promise<void> {
    // Seal everything first so a bad op rejects the whole batch before anything is written.
    const sealedOps = ops.map((op) =>
      op.type === 'put'
        ? { type: 'put' as const, key: writableKey(op.key), value: this.#seal(op.key, op.value) }
        : { type: 'del' as const, key: writableKey(op.key) },
    );
    if (sealedOps.length === 0) return;
    await this.#write((db) => db.batch(sealedOps, DURABLE));
  }

  async list(prefix: string): Promise<Array<{ key: string; value: RecordValue }>> {
    const range = prefixRange(prefix);
    return guard(async () => {
      const out: Array<{ key: string; value: RecordValue }> = [];
      // A record that does not open fails the whole listing: silently skipping it would hide damage.
      for await (const [key, sealed] of (await this.#ready()).iterator(range))
        out.push({ key, value: this.#open(key, sealed) });
      return out;
    });
  }

  async keys(prefix: string): Promise<string[]> {
    const range = prefixRange(prefix);
    return guard(async () => (await this.#ready()).keys(range).all());
  }

  /** Waits for queued writes (a shutdown must not cut an acknowledged write short), then closes. */
  async close(): Promise<void> {
    this.#closed = true;
    await this.#writes;
    await this.#reopening?.catch(() => undefined);
    await this.#db.close();
  }
}
