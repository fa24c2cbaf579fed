import { existsSync } from 'node:fs';
import { verifyAudit } from '../../audit/index.js';
import type { HomePaths } from '../../config/paths.js';
import { expectedHead } from '../audit-head.js';
import type { Ctx } from '../context.js';
import { fail, pass, warn, type Check } from './types.js';

/**
 * The audit log, as `authsome audit verify` sees it: there, an intact chain, and holding the daemon's
 * last record (or the stopped daemon's anchor). A log that fails here makes the daemon refuse
 * changes and injections, so doctor names it instead of failing on the first refused request.
 */
export async function checkAudit(ctx: Ctx, p: HomePaths): Promise<Check> {
  const title = 'audit log';
  if (!existsSync(p.auditLog))
    return fail(
      'audit',
      title,
      `${p.auditLog} is missing (deleted or moved)`,
      'restore it from a backup; then restart the daemon (authsome daemon stop; authsome daemon start): the new log records the gap',
      'ERR_AUDIT_UNAVAILABLE',
    );
  const head = await expectedHead(ctx);
  const res = await verifyAudit(p.auditLog, 'seq' in head ? head : undefined);
  if (!res.ok)
    return fail(
      'audit',
      title,
      `broken at line ${res.firstBroken?.line}: ${res.firstBroken?.reason}`,
      'authsome audit verify   (names the line; restore the log from a backup, or keep it as evidence)',
      'ERR_AUDIT_BROKEN',
    );
  if (!('seq' in head))
    return warn(
      'audit',
      title,
      `${res.lines} lines, chain intact; not compared with the daemon's records (${head.unchecked})`,
    );
  return pass('audit', title, `${res.lines} lines, chain intact, holds seq ${head.seq}`);
}
