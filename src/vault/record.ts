import { Secret } from '../secret.js';
import { corrupt } from './seal.js';
import type { RecordValue } from './types.js';

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

function isRecord(v: unknown): v is RecordValue {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * A Secret would JSON-encode as "[redacted]" and the credential would be silently lost, so a record
 * holding one is a programmer mistake: callers reveal() secrets into plain strings before storing.
 */
function refuseSecrets(this: unknown, key: string, value: unknown): unknown {
  const original = (this as Record<string, unknown>)[key];
  if (original instanceof Secret) throw new TypeError(`record field ${JSON.stringify(key)} is a Secret`);
  return value;
}

export function encodeRecord(value: RecordValue): Uint8Array {
  if (!isRecord(value)) throw new TypeError('a vault record must be a plain JSON object');
  return encoder.encode(JSON.stringify(value, refuseSecrets));
}

/** Parses an opened record; malformed content is ERR_VAULT_CORRUPT naming the key, never the bytes. */
export function decodeRecord(recordKey: string, bytes: Uint8Array): RecordValue {
  let parsed: unknown;
  try {
    parsed = JSON.parse(decoder.decode(bytes));
  } catch {
    throw corrupt(recordKey, 'is not valid JSON');
  }
  if (!isRecord(parsed)) throw corrupt(recordKey, 'is not a JSON object');
  return parsed;
}
