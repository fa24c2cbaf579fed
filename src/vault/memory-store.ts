import { KEYCHECK_KEY, prefixRange } from './keys.js';
import { decodeRecord, encodeRecord } from './record.js';
import type { BatchOp, KvStore, RecordValue } from './types.js';

/**
 * An in-memory KvStore for other areas' unit tests. Values go through the same JSON codec as the
 * real store, so callers get copies (no aliasing) and a Secret in a record is refused the same way.
 * It does not seal: sealing and durability are tested against the LevelDB store.
 */
export function memoryStore(): KvStore {
  const data = new Map<string, Uint8Array>();
  let closed = false;
  const live = (): void => {
    if (closed) throw new TypeError('memory store is closed');
  };
  const writable = (key: string): string => {
    if (typeof key !== 'string' || key === '') throw new TypeError('record key must be a non-empty string');
    if (key === KEYCHECK_KEY) throw new TypeError(`${KEYCHECK_KEY} is managed by the vault itself`);
    return key;
  };
  const inRange = (prefix: string): string[] => {
    const { gte, lt } = prefixRange(prefix);
    // Plain string comparison matches LevelDB's bytewise order for the BMP keys names allow.
    return [...data.keys()].filter((k) => k >= gte && k < lt).sort();
  };

  return {
    async get(key) {
      live();
      const v = data.get(key);
      return v === undefined ? undefined : decodeRecord(key, v);
    },
    async put(key, value: RecordValue) {
      live();
      data.set(writable(key), encodeRecord(value));
    },
    async del(key) {
      live();
      data.delete(writable(key));
    },
    async batch(ops: readonly BatchOp[]) {
      live();
      const staged = ops.map((op) => ({
        key: writable(op.key),
        bytes: op.type === 'put' ? encodeRecord(op.value) : undefined,
      }));
      for (const { key, bytes } of staged) {
        if (bytes === undefined) data.delete(key);
        else data.set(key, bytes);
      }
    },
    async list(prefix) {
      live();
      return inRange(prefix).map((key) => ({
        key,
        value: decodeRecord(key, data.get(key) ?? new Uint8Array()),
      }));
    },
    async keys(prefix) {
      live();
      return inRange(prefix);
    },
    async close() {
      closed = true;
    },
  };
}
