import { AppError } from '../errors.js';
import { readAnchor } from '../daemon/audit-anchor.js';
import type { Ctx } from './context.js';

export type ExpectedHead = { seq: number; hash: string; from: 'daemon' | 'anchor' } | { unchecked: string };

/**
 * What the log must hold: the running daemon's last durable record, or, while none runs, the anchor
 * the daemon left when it last started or stopped (its copy in server/audit-anchor.json; the CLI
 * never opens the store). A log cut short, emptied or swapped is a valid chain on its own: only this
 * comparison tells. Never starts the daemon (a start would recover a torn tail and append to the log
 * being checked). When neither can be read, the file is still checked and the output says what was not.
 */
export async function expectedHead(ctx: Ctx): Promise<ExpectedHead> {
  try {
    const client = await ctx.client(undefined, { start: false });
    if (client) {
      const status = await client.call<{ audit?: { seq?: unknown; hash?: unknown } }>('GET', '/v1/status');
      const { seq, hash } = status.audit ?? {};
      if (typeof seq === 'number' && typeof hash === 'string') return { seq, hash, from: 'daemon' };
      return { unchecked: 'the running daemon did not report its audit head; is it an older version?' };
    }
    const anchor = await readAnchor(ctx.paths.auditAnchor);
    if (anchor) return { ...anchor, from: 'anchor' };
    return {
      unchecked: `no anchor at ${ctx.paths.auditAnchor} (the daemon writes it at every start and stop)`,
    };
  } catch (err) {
    return { unchecked: err instanceof AppError ? `${err.code}: ${err.message}` : String(err) };
  }
}
