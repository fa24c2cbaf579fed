import { mkdir } from 'node:fs/promises';
import { Level } from 'level';
import { AppError, isAppError } from '../errors.js';
import { KEYCHECK_KEY } from './keys.js';
import { initSodium } from './seal.js';
import {
  checkMasterKey,
  newKeyCheck,
  SealedKvStore,
  verifyKeyCheck,
  type KeyRange,
  type RawKv,
  type RawOp,
  type WriteHook,
} from './sealed-store.js';
import type { KvStore } from './types.js';

/** The embedded engine (SPEC section 3): one LevelDB directory, opened by one daemon at a time. */

export interface OpenVaultOptions {
  readonly dir: string;
  readonly masterKey: Uint8Array;
  /** Called after each durable write with the keys it touched (the in-process change feed). */
  readonly onWrite?: WriteHook;
}

type Db = Level<string, Uint8Array>;

/** Every write is fsynced: a credential the user was told is saved must survive a power cut. */
const DURABLE = { sync: true } as const;
const HINTS = {
  sealed: 'restore the server/master.key that created this store',
  corrupt: 'restore server/kv_store from a backup',
};

export async function openVault({ dir, masterKey, onWrite }: OpenVaultOptions): Promise<KvStore> {
  checkMasterKey(masterKey);
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
  return new SealedKvStore(new LevelRawKv(db), masterKey, onWrite);
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
        HINTS.corrupt,
      );
    }
    await db.put(KEYCHECK_KEY, newKeyCheck(masterKey), DURABLE);
    return;
  }
  verifyKeyCheck(masterKey, sealedCheck, HINTS);
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

/**
 * LevelDB does not roll back a log record it could only partly append (ENOSPC or EIO mid-write): the
 * torn bytes stay in the log, the process carries on, and every record appended after them is dropped
 * with them when the log is replayed on the next open. So a write acknowledged after a failed one
 * would vanish in a crash. Two rules close that gap: writes run one at a time (nothing can be appended
 * behind a write that is failing), and after a failed write the database is closed and reopened, which
 * replays the log up to the torn record into a table and starts a fresh log, before anything else
 * touches it. A failed sync also leaves LevelDB refusing every later write until it is reopened.
 */
class LevelRawKv implements RawKv {
  readonly #db: Db;
  /** The tail of the write queue; never rejects. */
  #writes: Promise<void> = Promise.resolve();
  #tainted = false;
  #reopening: Promise<void> | undefined;
  #closed = false;

  constructor(db: Db) {
    this.#db = db;
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

  get(key: string): Promise<Uint8Array | undefined> {
    return guard(async () => (await this.#ready()).get(key));
  }

  put(key: string, sealed: Uint8Array): Promise<void> {
    return this.#write((db) => db.put(key, sealed, DURABLE));
  }

  del(key: string): Promise<void> {
    return this.#write((db) => db.del(key, DURABLE));
  }

  batch(ops: readonly RawOp[]): Promise<void> {
    return this.#write((db) => db.batch([...ops], DURABLE));
  }

  entries(range: KeyRange): Promise<Array<[string, Uint8Array]>> {
    return guard(async () => (await this.#ready()).iterator(range).all());
  }

  keys(range: KeyRange): Promise<string[]> {
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
