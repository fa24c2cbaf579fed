/** A JSON record as stored (after opening the seal). Secret fields are plain strings here. */
export type RecordValue = { readonly [k: string]: unknown };

export type BatchOp = { type: 'put'; key: string; value: RecordValue } | { type: 'del'; key: string };

/** The raw encrypted KV store. Keys are full record keys (see keys.ts); values are sealed with the key as AD. */
export interface KvStore {
  get(key: string): Promise<RecordValue | undefined>;
  /** Durable (synced) write. */
  put(key: string, value: RecordValue): Promise<void>;
  del(key: string): Promise<void>;
  /** Atomic, durable. */
  batch(ops: readonly BatchOp[]): Promise<void>;
  /** Every record whose key starts with prefix (prefix must end with '/'), in key order. */
  list(prefix: string): Promise<Array<{ key: string; value: RecordValue }>>;
  keys(prefix: string): Promise<string[]>;
  close(): Promise<void>;
}

/**
 * One profile's view of the store. Every key it takes is relative and is prefixed with
 * `profile/<handle>/` by construction, so no call can reach another profile's records.
 */
export interface ProfileScope {
  readonly handle: string;
  get(rel: string): Promise<RecordValue | undefined>;
  put(rel: string, value: RecordValue): Promise<void>;
  del(rel: string): Promise<void>;
  batch(ops: readonly BatchOp[]): Promise<void>;
  list(relPrefix: string): Promise<Array<{ key: string; value: RecordValue }>>;
  /** The keys alone (nothing is opened, so a damaged record cannot fail the listing). */
  keys(relPrefix: string): Promise<string[]>;
  /** Deletes every record of this profile (used by profile delete). */
  destroy(): Promise<number>;
}
