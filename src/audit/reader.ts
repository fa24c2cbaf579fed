import { AppError } from '../errors.js';
import { readLines } from './lines.js';
import { parseRecord } from './parse.js';
import type { AuditEventName, AuditRecord } from './types.js';

/**
 * The `authsome audit` filters (SPEC section 6). All given conditions must hold. Fields accept an
 * explicit undefined and `event` any string, because they come straight from CLI flags.
 */
export interface AuditFilter {
  profile?: string | undefined;
  provider?: string | undefined;
  connection?: string | undefined;
  event?: AuditEventName | (string & {}) | undefined;
  /** Records with ts at or after this instant. */
  since?: Date | undefined;
  /** Keep only the last N matching records. */
  limit?: number | undefined;
  /** Matching records to leave out (counted by the caller through `onHidden`), e.g. a flood of refusals. */
  hide?: ((record: AuditRecord) => boolean) | undefined;
  onHidden?: ((record: AuditRecord) => void) | undefined;
  /**
   * Leave out `authsome doctor`'s own records: its doctor.probe refusals and its probe session's
   * session.mint / session.revoke (detail.probe). `authsome audit` does unless asked (--probes).
   */
  hideProbes?: boolean | undefined;
}

export function isProbeRecord(record: AuditRecord): boolean {
  return record.event === 'doctor.probe' || record.detail?.['probe'] === true;
}

export function matchesFilter(record: AuditRecord, filter: AuditFilter): boolean {
  if (filter.profile !== undefined && record.profile !== filter.profile) return false;
  if (filter.provider !== undefined && record.provider !== filter.provider) return false;
  if (filter.connection !== undefined && record.connection !== filter.connection) return false;
  if (filter.event !== undefined && record.event !== filter.event) return false;
  if (filter.since !== undefined && !(Date.parse(record.ts) >= filter.since.getTime())) return false;
  if (filter.hideProbes === true && isProbeRecord(record)) return false;
  return true;
}

/**
 * Matching records, oldest first. Streams the file so a large log is never held whole; with a limit only
 * the last N matches are kept. Malformed lines are skipped here and reported by verifyAudit; the hash is
 * not checked (that is verify's job) so a tampered line still shows up rather than vanishing.
 */
export async function readAudit(path: string, filter: AuditFilter = {}): Promise<AuditRecord[]> {
  const { limit } = filter;
  if (limit !== undefined && (!Number.isSafeInteger(limit) || limit < 0)) {
    throw new TypeError('limit must be a non-negative integer');
  }
  if (filter.since !== undefined && Number.isNaN(filter.since.getTime())) {
    throw new TypeError('since must be a valid Date');
  }
  if (limit === 0) return [];
  let out: AuditRecord[] = [];
  try {
    for await (const line of readLines(path)) {
      if (!line.terminated) continue; // a write still in flight, or a torn tail
      const parsed = parseRecord(line.text);
      if (!parsed.ok || !matchesFilter(parsed.record, filter)) continue;
      if (filter.hide?.(parsed.record)) {
        filter.onHidden?.(parsed.record);
        continue;
      }
      out.push(parsed.record);
      // Trim in bulk: amortised O(1) per record instead of shifting on every push.
      if (limit !== undefined && out.length >= 2 * limit) out = out.slice(-limit);
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw new AppError('ERR_AUDIT_UNAVAILABLE', `cannot read the audit log at ${path}`, undefined, {
      cause: err,
    });
  }
  return limit === undefined ? out : out.slice(-limit);
}
