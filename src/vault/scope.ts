import { profilePrefix } from './keys.js';
import type { BatchOp, KvStore, ProfileScope, RecordValue } from './types.js';

/**
 * Relative keys are structural paths below the profile prefix. Names may legitimately contain '..'
 * (e.g. "a..b" matches the name pattern), so '.' and '..' are refused as whole segments only.
 */
function checkRel(rel: string, allowTrailingSlash: boolean): void {
  if (typeof rel !== 'string' || rel === '') throw new TypeError('relative key must be a non-empty string');
  if (rel.startsWith('/'))
    throw new TypeError(`relative key must not start with '/': ${JSON.stringify(rel)}`);
  const body = allowTrailingSlash && rel.endsWith('/') ? rel.slice(0, -1) : rel;
  for (const seg of body.split('/')) {
    if (seg === '' || seg === '.' || seg === '..') {
      throw new TypeError(`relative key has an empty or dot segment: ${JSON.stringify(rel)}`);
    }
  }
}

/** '' (the whole profile) or a relative prefix ending in '/'. */
function checkedPrefix(relPrefix: string): string {
  if (relPrefix !== '') {
    checkRel(relPrefix, true);
    if (!relPrefix.endsWith('/'))
      throw new TypeError(`list prefix must end with '/': ${JSON.stringify(relPrefix)}`);
  }
  return relPrefix;
}

export function profileScope(store: KvStore, handle: string): ProfileScope {
  // profilePrefix validates the handle, so the prefix itself can never contain a second '/'.
  const prefix = profilePrefix(handle);
  const full = (rel: string): string => {
    checkRel(rel, false);
    return prefix + rel;
  };
  const strip = (key: string): string => key.slice(prefix.length);

  return {
    handle,
    // async throughout so that a bad key rejects the promise instead of throwing synchronously.
    async get(rel: string) {
      return store.get(full(rel));
    },
    async put(rel: string, value: RecordValue) {
      await store.put(full(rel), value);
    },
    async del(rel: string) {
      await store.del(full(rel));
    },
    async batch(ops: readonly BatchOp[]) {
      await store.batch(ops.map((op) => ({ ...op, key: full(op.key) })));
    },
    async list(relPrefix: string) {
      const rows = await store.list(prefix + checkedPrefix(relPrefix));
      return rows.map(({ key, value }) => ({ key: strip(key), value }));
    },
    async keys(relPrefix: string) {
      return (await store.keys(prefix + checkedPrefix(relPrefix))).map(strip);
    },
    async destroy() {
      const keys = await store.keys(prefix);
      await store.batch(keys.map((key) => ({ type: 'del' as const, key })));
      return keys.length;
    },
  };
}
