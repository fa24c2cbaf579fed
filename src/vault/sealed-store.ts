import { AppError } from '../errors.js';
import { KEYCHECK_KEY, prefixRange } from './keys.js';
import { decodeRecord, encodeRecord } from './record.js';
import { MASTER_KEY_BYTES, open, seal } from './seal.js';
import type { BatchOp, KvStore, RecordValue } from './types.js';

/**
 * The layer both engines share: key validation, sealing (XChaCha20-Poly1305, full record key as
 * associated data), the JSON record codec and the key-check record. An engine below it (LevelDB,
 * PostgreSQL) only ever sees record keys and opaque sealed bytes, so the two cannot drift apart in how
 * a record is protected.
 */

export type RawOp = { type: 'put'; key: string; value: Uint8Array } | { type: 'del'; key: string };
export interface KeyRange {
  readonly gte: string;
  readonly lt: string;
}

/** What an engine implements. Errors are already the engine's AppErrors (or TypeError for misuse). */
export interface RawKv {
  get(key: string): Promise<Uint8Array | undefined>;
  /** Durable once resolved. */
  put(key: string, sealed: Uint8Array): Promise<void>;
  del(key: string): Promise<void>;
  /** Atomic and durable; ops apply in order (a later op on the same key wins). */
  batch(ops: readonly RawOp[]): Promise<void>;
  /** Keys in bytewise UTF-8 order, as LevelDB orders them. */
  entries(range: KeyRange): Promise<Array<[string, Uint8Array]>>;
  keys(range: KeyRange): Promise<string[]>;
  close(): Promise<void>;
}

/** Called after a write is durable, with the keys it touched (the change feed's local half). */
export type WriteHook = (keys: readonly string[]) => void;

export function checkMasterKey(masterKey: Uint8Array): void {
  if (!(masterKey instanceof Uint8Array) || masterKey.length !== MASTER_KEY_BYTES) {
    throw new TypeError(`master key must be ${MASTER_KEY_BYTES} bytes`);
  }
}

function writableKey(key: string): string {
  if (typeof key !== 'string' || key === '') throw new TypeError('record key must be a non-empty string');
  if (key === KEYCHECK_KEY) throw new TypeError(`${KEYCHECK_KEY} is managed by the vault itself`);
  return key;
}

export class SealedKvStore implements KvStore {
  readonly #raw: RawKv;
  readonly #key: Uint8Array;
  readonly #onWrite: WriteHook | undefined;

  constructor(raw: RawKv, masterKey: Uint8Array, onWrite?: WriteHook) {
    checkMasterKey(masterKey);
    this.#raw = raw;
    this.#key = masterKey;
    this.#onWrite = onWrite;
  }

  #open(key: string, sealed: Uint8Array): RecordValue {
    return decodeRecord(key, open(this.#key, key, sealed));
  }

  #seal(key: string, value: RecordValue): Uint8Array {
    return seal(this.#key, key, encodeRecord(value));
  }

  #written(keys: readonly string[]): void {
    // A listener's failure must not turn a durable write into a reported failure.
    try {
      this.#onWrite?.(keys);
    } catch {
      /* listeners are caches; they must not throw */
    }
  }

  async get(key: string): Promise<RecordValue | undefined> {
    const sealed = await this.#raw.get(key);
    return sealed === undefined ? undefined : this.#open(key, sealed);
  }

  async put(key: string, value: RecordValue): Promise<void> {
    const sealed = this.#seal(writableKey(key), value);
    await this.#raw.put(key, sealed);
    this.#written([key]);
  }

  async del(key: string): Promise<void> {
    await this.#raw.del(writableKey(key));
    this.#written([key]);
  }

  async batch(ops: readonly BatchOp[]): Promise<void> {
    // Seal everything first so a bad op rejects the whole batch before anything is written.
    const sealedOps: RawOp[] = ops.map((op) =>
      op.type === 'put'
        ? { type: 'put', key: writableKey(op.key), value: this.#seal(op.key, op.value) }
        : { type: 'del', key: writableKey(op.key) },
    );
    if (sealedOps.length === 0) return;
    await this.#raw.batch(sealedOps);
    this.#written(sealedOps.map((op) => op.key));
  }

  async list(prefix: string): Promise<Array<{ key: string; value: RecordValue }>> {
    const rows = await this.#raw.entries(prefixRange(prefix));
    // A record that does not open fails the whole listing: silently skipping it would hide damage.
    return rows.map(([key, sealed]) => ({ key, value: this.#open(key, sealed) }));
  }

  async keys(prefix: string): Promise<string[]> {
    return this.#raw.keys(prefixRange(prefix));
  }

  async close(): Promise<void> {
    await this.#raw.close();
  }
}

const KEYCHECK_VALUE = 'authsome-vault-keycheck-v1';

/** The sealed key-check record a new store starts with. */
export function newKeyCheck(masterKey: Uint8Array): Uint8Array {
  return seal(masterKey, KEYCHECK_KEY, encodeRecord({ check: KEYCHECK_VALUE }));
}

export interface KeyCheckHints {
  /** What to do when the key does not match (restore the right key). */
  readonly sealed: string;
  /** What to do when the store is damaged (restore a backup). */
  readonly corrupt: string;
}

/**
 * Tells a wrong master key apart from a corrupt record: a record that does not open is a wrong key
 * (ERR_VAULT_SEALED), one that opens to something else is damage (ERR_VAULT_CORRUPT).
 */
export function verifyKeyCheck(masterKey: Uint8Array, sealed: Uint8Array, hints: KeyCheckHints): void {
  let value: RecordValue;
  try {
    value = decodeRecord(KEYCHECK_KEY, open(masterKey, KEYCHECK_KEY, sealed));
  } catch {
    throw new AppError(
      'ERR_VAULT_SEALED',
      'the master key does not match this store; the vault stays sealed and nothing was written',
      hints.sealed,
    );
  }
  if (value['check'] !== KEYCHECK_VALUE) {
    throw new AppError('ERR_VAULT_CORRUPT', 'the key-check record has unexpected content', hints.corrupt);
  }
}
