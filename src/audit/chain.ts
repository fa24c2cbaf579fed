import { hash as oneShotHash } from 'node:crypto';
import type { AuditRecord } from './types.js';

/** The `prev` of the first record: there is nothing before it to chain to. */
export const GENESIS = '0'.repeat(64);

/**
 * The fixed key order of a record (SPEC section 6 plus `reason`/`detail`). Hashing depends on byte-exact
 * JSON, so the order is spelled out here instead of trusting object insertion order, which JS reorders
 * for integer-like keys.
 */
export const RECORD_KEYS = [
  'ts',
  'seq',
  'event',
  'profile',
  'provider',
  'connection',
  'method',
  'host',
  'path',
  'status',
  'request_id',
  'reason',
  'rule',
  'pid',
  'exe',
  'count',
  'node',
  'detail',
  'prev',
] as const;

/** Every key a line may carry; verify refuses others so an added field cannot ride along unhashed. */
export const LINE_KEYS: ReadonlySet<string> = new Set<string>([...RECORD_KEYS, 'hash']);

type Unhashed = Omit<AuditRecord, 'hash'>;

/** `"key":` for each key in RECORD_KEYS order, built once. */
const KEY_PREFIX = RECORD_KEYS.map((k) => `${JSON.stringify(k)}:`);

function detailJson(detail: Record<string, unknown>): string {
  let out = '';
  for (const k of Object.keys(detail).sort()) {
    out += `${out === '' ? '{' : ','}${JSON.stringify(k)}:${JSON.stringify(detail[k]) ?? 'null'}`;
  }
  return out === '' ? '{}' : `${out}}`;
}

/**
 * Canonical JSON of a record without its hash: fixed key order, absent keys omitted, detail keys sorted.
 * Built by string concatenation (no intermediate arrays): it runs once per proxied request.
 */
export function canonicalJson(record: Unhashed): string {
  let out = '';
  for (let i = 0; i < RECORD_KEYS.length; i++) {
    const key = RECORD_KEYS[i]!;
    const value: unknown = record[key];
    if (value === undefined) continue;
    const json =
      key === 'detail' && typeof value === 'object' && value !== null
        ? detailJson(value as Record<string, unknown>)
        : (JSON.stringify(value) ?? 'null');
    out += `${out === '' ? '{' : ','}${KEY_PREFIX[i]!}${json}`;
  }
  return out === '' ? '{}' : `${out}}`;
}

/** hex sha256(prev + '\n' + canonicalJson(record without hash)). */
export function hashRecord(record: Unhashed): string {
  return hashOf(record.prev, canonicalJson(record));
}

function hashOf(prev: string, canonical: string): string {
  return oneShotHash('sha256', `${prev}\n${canonical}`, 'hex');
}

/** Hash and line of a new record, from one canonical encoding (the writer's hot path). */
export function chainRecord(record: Unhashed): { hash: string; line: string } {
  const body = canonicalJson(record);
  const hash = hashOf(record.prev, body);
  return { hash, line: `${body.slice(0, -1)},"hash":${JSON.stringify(hash)}}` };
}

/** The line as written to audit.log (without the newline): canonical JSON with `hash` last. */
export function serializeRecord(record: AuditRecord): string {
  const { hash, ...rest } = record;
  const body = canonicalJson(rest);
  return `${body.slice(0, -1)},"hash":${JSON.stringify(hash)}}`;
}
