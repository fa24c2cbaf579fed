import type { ServerResponse } from 'node:http';
import type { AuditRecord } from '../audit/index.js';
import type { HeldEvent } from '../policy/index.js';
import { setSecurityHeaders } from './ui-http.js';
import type { UiSession } from './ui-sessions.js';

/**
 * The page's live feed (server-sent events, one stream per open page): new audit records (batched
 * every AUDIT_BATCH_MS), holds and releases of approvals, and session revocations, each only to the
 * pages whose profile may see it. The stream re-checks its cookie session every HEARTBEAT_MS and ends
 * when the session is gone (logout, expiry, a deleted profile) or the daemon stops.
 */

export interface EventSources {
  onAudit(listener: (r: AuditRecord) => void): () => void;
  onApproval(listener: (ev: HeldEvent) => void): () => void;
  onSessionsRevoked(listener: (revoked: ReadonlyArray<{ id: string; profile: string }>) => void): () => void;
}

interface Client {
  readonly res: ServerResponse;
  readonly session: UiSession;
  readonly owner: boolean;
  /** Whether the cookie session behind this stream is still live. */
  readonly recheck: () => Promise<boolean>;
  audit: AuditRecord[];
}

const AUDIT_BATCH_MS = 200;
const HEARTBEAT_MS = 15_000;
/** A page that stops reading (a frozen tab) is dropped past this much unsent data. */
const MAX_BUFFERED = 1 << 20;
/** Records queued for one page between two flushes; past it the page is told to read the timeline again. */
const MAX_BATCH = 500;

export class UiEvents {
  readonly #clients = new Set<Client>();
  readonly #offs: Array<() => void>;
  #flushTimer: NodeJS.Timeout | undefined;
  readonly #heartbeat: NodeJS.Timeout;
  #closed = false;

  constructor(src: EventSources) {
    this.#offs = [
      src.onAudit((r) => this.#audit(r)),
      src.onApproval((ev) => this.#approval(ev)),
      src.onSessionsRevoked((revoked) => {
        const profiles = new Set(revoked.map((r) => r.profile));
        for (const c of this.#clients)
          if (profiles.has(c.session.profile)) this.#send(c, 'sessions', { revoked: revoked.length });
      }),
    ];
    this.#heartbeat = setInterval(() => void this.#beat(), HEARTBEAT_MS);
    this.#heartbeat.unref();
  }

  get size(): number {
    return this.#clients.size;
  }

  /** Turns the response into an event stream for this page. */
  attach(res: ServerResponse, session: UiSession, owner: boolean, recheck: () => Promise<boolean>): void {
    if (this.#closed) {
      res.destroy();
      return;
    }
    setSecurityHeaders(res);
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      'x-accel-buffering': 'no',
      // A stream's connection is never reused: once it ends, the socket goes (a stop does not wait on it).
      connection: 'close',
    });
    res.socket?.setNoDelay(true);
    const client: Client = { res, session, owner, recheck, audit: [] };
    this.#clients.add(client);
    res.on('close', () => this.#clients.delete(client));
    res.write(`retry: 3000\n\n`);
    this.#send(client, 'hello', { profile: session.profile, owner });
  }

  /** Ends the streams of one UI session (its logout). */
  endSession(id: string): void {
    for (const c of this.#clients) if (c.session.id === id) this.#end(c, 'logout');
  }

  /** Daemon stop: every stream ends, so the drain does not wait for them. */
  close(): void {
    this.#closed = true;
    for (const off of this.#offs) off();
    clearInterval(this.#heartbeat);
    if (this.#flushTimer) clearTimeout(this.#flushTimer);
    for (const c of this.#clients) this.#end(c, 'shutdown');
  }

  #visible(c: Client, profile: string): boolean {
    return c.owner || profile === c.session.profile;
  }

  #audit(r: AuditRecord): void {
    let queued = false;
    for (const c of this.#clients) {
      if (!this.#visible(c, r.profile)) continue;
      if (c.audit.length < MAX_BATCH + 1) c.audit.push(r);
      queued = true;
    }
    if (queued && this.#flushTimer === undefined)
      this.#flushTimer = setTimeout(() => this.#flush(), AUDIT_BATCH_MS);
  }

  #flush(): void {
    this.#flushTimer = undefined;
    for (const c of this.#clients) {
      if (c.audit.length === 0) continue;
      const batch = c.audit;
      c.audit = [];
      if (batch.length > MAX_BATCH) this.#send(c, 'reload', { reason: 'many records' });
      else this.#send(c, 'audit', batch);
    }
  }

  #approval(ev: HeldEvent): void {
    const data =
      ev.type === 'held'
        ? { type: ev.type, held: ev.held }
        : { type: ev.type, held: ev.held, result: ev.outcome.result };
    for (const c of this.#clients) if (this.#visible(c, ev.held.profile)) this.#send(c, 'approval', data);
  }

  async #beat(): Promise<void> {
    for (const c of [...this.#clients]) {
      const ok = await c.recheck().catch(() => true);
      if (!ok) this.#end(c, 'expired');
      else if (this.#clients.has(c)) this.#write(c, `: keep-alive\n\n`);
    }
  }

  #send(c: Client, event: string, data: unknown): void {
    this.#write(c, `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
  }

  #write(c: Client, text: string): void {
    if (c.res.writableEnded || c.res.destroyed) {
      this.#clients.delete(c);
      return;
    }
    if (c.res.writableLength > MAX_BUFFERED) {
      this.#clients.delete(c);
      c.res.destroy();
      return;
    }
    c.res.write(text);
  }

  #end(c: Client, reason: string): void {
    this.#send(c, 'end', { reason });
    this.#clients.delete(c);
    c.res.end();
  }
}
