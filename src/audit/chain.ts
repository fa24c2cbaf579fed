import { createHash } from 'node:crypto';
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
  'detail',
  'prev',
] as const;

/** Every key a line may carry; verify refuses others so an added field cannot ride along unhashed. */
export const LINE_KEYS: ReadonlySet<string> = new Set<string>([...RECORD_KEYS, 'hash']);

type Unhashed = Omit<AuditRecord, 'hash'>;

function objectJson(entries: ReadonlyArray<readonly [string, string]>): string {
  return `{${entries.map(([k, json]) => `${JSON.stringify(k)}:${json}`).join(',')}}`;
}

/** Canonical JSON of a record without its hash: fixed key order, absent keys omitted, detail keys sorted. */
export function canonicalJson(record: Unhashed): string {
  const entries: Array<readonly [string, string]> = [];
  for (const key of RECORD_KEYS) {
    const value: unknown = record[key];
    if (value === undefined) continue;
    if (key === 'detail' && typeof value === 'object' && value !== null) {
      const detail = value as Record<string, unknown>;
      const sorted = Object.keys(detail).sort();
      entries.push([key, objectJson(sorted.map((k) => [k, JSON.stringify(detail[k]) ?? 'null'] as const))]);
    } else {
      entries.push([key, JSON.stringify(value) ?? 'null']);
    }
  }
  return objectJson(entries);
}

/** hex sha256(prev + '\n' + canonicalJson(record without hash)). */
export function hashRecord(record: Unhashed): string {
  return hashOf(record.prev, canonicalJson(record));
}

function hashOf(prev: string, canonical: string): string {
  return createHash('sha256').update(`${prev}\n${canonical}`).digest('hex');
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
