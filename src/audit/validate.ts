import { isDetailValue } from './parse.js';
import { AUDIT_EVENTS, type AuditInput } from './types.js';

const EVENTS: ReadonlySet<string> = new Set(AUDIT_EVENTS);
const STRING_FIELDS = ['provider', 'connection', 'method', 'host', 'path', 'request_id', 'reason'] as const;
const INPUT_KEYS: ReadonlySet<string> = new Set([
  'event',
  'profile',
  'status',
  'detail',
  'rule',
  'pid',
  'exe',
  'count',
  'node',
  ...STRING_FIELDS,
]);

/**
 * Checks an append at the call site (a bad event is a programmer mistake: TypeError) and returns a
 * clean copy holding only known keys, so nothing the caller attached by accident (a Secret, a request
 * object) can reach the log (SPEC section 8, promise 2). Values are never echoed in messages.
 */
export function validateInput(input: AuditInput): AuditInput {
  if (typeof input !== 'object' || input === null) throw new TypeError('audit input must be an object');
  for (const key of Object.keys(input)) {
    if (!INPUT_KEYS.has(key)) throw new TypeError(`unknown audit field "${key}"`);
  }
  if (typeof input.event !== 'string' || !EVENTS.has(input.event)) {
    throw new TypeError('unknown audit event (see AUDIT_EVENTS)');
  }
  if (typeof input.profile !== 'string' || input.profile === '') {
    throw new TypeError('audit profile must be a non-empty string');
  }
  const out: AuditInput = { event: input.event, profile: input.profile };
  for (const key of STRING_FIELDS) {
    const value: unknown = input[key];
    if (value === undefined) continue;
    if (typeof value !== 'string') throw new TypeError(`audit field "${key}" must be a string`);
    // SPEC section 6: the path is logged without its query, which may carry credentials.
    out[key] = key === 'path' ? withoutQuery(value) : value;
  }
  if (input.status !== undefined) {
    if (!Number.isSafeInteger(input.status)) throw new TypeError('audit status must be an integer');
    out.status = input.status;
  }
  if (input.rule !== undefined) out.rule = nullableCount(input.rule, 'rule');
  if (input.pid !== undefined) out.pid = nullableCount(input.pid, 'pid');
  if (input.exe !== undefined) {
    if (input.exe !== null && typeof input.exe !== 'string')
      throw new TypeError('audit exe must be a string or null');
    out.exe = input.exe;
  }
  if (input.count !== undefined) {
    if (!Number.isSafeInteger(input.count) || input.count < 1)
      throw new TypeError('audit count must be a positive integer');
    out.count = input.count;
  }
  if (input.node !== undefined) {
    if (typeof input.node !== 'string' || input.node === '')
      throw new TypeError('audit node must be a non-empty string');
    out.node = input.node;
  }
  if (input.detail !== undefined) out.detail = validateDetail(input.detail);
  return out;
}

function nullableCount(v: unknown, key: string): number | null {
  if (v === null) return null;
  if (!Number.isSafeInteger(v) || (v as number) < 0)
    throw new TypeError(`audit ${key} must be a non-negative integer or null`);
  return v as number;
}

function withoutQuery(path: string): string {
  const q = path.indexOf('?');
  const f = path.indexOf('#');
  const cut = q < 0 ? f : f < 0 ? q : Math.min(q, f);
  return cut < 0 ? path : path.slice(0, cut);
}

function validateDetail(detail: unknown): Record<string, string | number | boolean> {
  if (typeof detail !== 'object' || detail === null || Array.isArray(detail)) {
    throw new TypeError('audit detail must be a plain object');
  }
  const proto: unknown = Object.getPrototypeOf(detail);
  if (proto !== Object.prototype && proto !== null)
    throw new TypeError('audit detail must be a plain object');
  const entries = Object.entries(detail);
  for (const [key, value] of entries) {
    if (!isDetailValue(value)) {
      throw new TypeError(`audit detail "${key}" must be a string, finite number or boolean`);
    }
  }
  // fromEntries defines own properties, so even a "__proto__" key stays data, not a prototype.
  return Object.fromEntries(entries) as Record<string, string | number | boolean>;
}
