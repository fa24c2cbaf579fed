import type { BatchOp, KvStore, RecordValue } from '../../../src/vault/types.js';

/** A tiny KvStore for identity tests. Values are deep-copied in and out, like a real store. */
export class MemoryKvStore implements KvStore {
  readonly data = new Map<string, string>();
  closed = false;

  async get(key: string): Promise<RecordValue | undefined> {
    const v = this.data.get(key);
    return v === undefined ? undefined : (JSON.parse(v) as RecordValue);
  }

  async put(key: string, value: RecordValue): Promise<void> {
    this.data.set(key, JSON.stringify(value));
  }

  async del(key: string): Promise<void> {
    this.data.delete(key);
  }

  async batch(ops: readonly BatchOp[]): Promise<void> {
    for (const op of ops) {
      if (op.type === 'put') this.data.set(op.key, JSON.stringify(op.value));
      else this.data.delete(op.key);
    }
  }

  async list(prefix: string): Promise<Array<{ key: string; value: RecordValue }>> {
    return (await this.keys(prefix)).map((key) => ({
      key,
      value: JSON.parse(this.data.get(key)!) as RecordValue,
    }));
  }

  async keys(prefix: string): Promise<string[]> {
    if (!prefix.endsWith('/')) throw new TypeError('prefix must end with /');
    return [...this.data.keys()].filter((k) => k.startsWith(prefix)).sort();
  }

  async close(): Promise<void> {
    this.closed = true;
  }

  /** Everything stored, as one string: for "the secret is not in here" scans. */
  dump(): string {
    return [...this.data.entries()].map(([k, v]) => `${k}=${v}`).join('\n');
  }
}
