import { readAudit, verifyAudit, type AuditRecord, type VerifyResult } from '../audit/index.js';
import { AUDIT_EVENTS } from '../audit/types.js';
import { AppError } from '../errors.js';

/** What the dashboard needs of the audit writer: where the log is, its durable head, new records. */
export interface AuditSource {
  readonly path: string;
  head(): { seq: number; hash: string };
  onAppend(listener: (r: AuditRecord) => void): () => void;
}

export interface TimelineQuery {
  profile?: string | undefined;
  provider?: string | undefined;
  connection?: string | undefined;
  event?: string | undefined;
  node?: string | undefined;
  /** Records with seq below this (the page's "older"). */
  before?: number | undefined;
  limit: number;
}

export interface Facets {
  profiles: string[];
  providers: string[];
  connections: string[];
  events: string[];
  nodes: string[];
}

export interface Chart {
  /** Start of the first bucket (ms) and each bucket's width. */
  start: number;
  bucketMs: number;
  buckets: number;
  /** provider → injected requests per bucket. */
  series: Record<string, number[]>;
}

const EVENTS: ReadonlySet<string> = new Set(AUDIT_EVENTS);
const MAX_LIMIT = 1000;
/** Verify reads the whole log: at most this often, and only when the head moved. */
const VERIFY_EVERY_MS = 3_000;
const RECHECK_MS = 30_000;

interface ProfileIndex {
  providers: Set<string>;
  connections: Set<string>;
  events: Set<string>;
  nodes: Set<string>;
  /** "provider/connection" → ts of its last proxy.inject */
  lastUsed: Map<string, string>;
}

/**
 * The dashboard's reads of the audit log: the timeline (the `authsome audit` filters plus node), the
 * verify badge (`audit verify` against the daemon's own head), and an index of what each profile's
 * records name (filter choices, and a connection's last use), built by one pass over the log on first
 * use and kept current from the writer's listener. Everything is scoped by the caller's `visible`.
 */
export class UiAudit {
  readonly #src: AuditSource;
  #index: Map<string, ProfileIndex> | undefined;
  #building: Promise<Map<string, ProfileIndex>> | undefined;
  /** Records appended while the first pass ran (applied after it: the pass may have missed them). */
  #pending: AuditRecord[] | undefined;
  #verified: { seq: number; at: number; result: VerifyResult } | undefined;
  #verifying: Promise<VerifyResult> | undefined;
  readonly #off: () => void;

  constructor(src: AuditSource) {
    this.#src = src;
    this.#off = src.onAppend((r) => {
      if (this.#index) add(this.#index, r);
      else this.#pending?.push(r);
    });
  }

  close(): void {
    this.#off();
  }

  static parseQuery(q: URLSearchParams): TimelineQuery {
    const name = (k: string): string | undefined => {
      const v = q.get(k);
      if (v === null || v === '') return undefined;
      if (v.length > 128) throw new AppError('ERR_INPUT_INVALID', `"${k}" is too long`, 'pick from the list');
      return v;
    };
    const event = name('event');
    if (event !== undefined && !EVENTS.has(event))
      throw new AppError('ERR_INPUT_INVALID', 'no audit event has that name', 'pick one from the list');
    const num = (k: string): number | undefined => {
      const v = q.get(k);
      if (v === null || v === '') return undefined;
      if (!/^\d{1,15}$/.test(v))
        throw new AppError('ERR_INPUT_INVALID', `"${k}" must be a whole number`, 'e.g. 200');
      return Number(v);
    };
    return {
      profile: name('profile'),
      provider: name('provider'),
      connection: name('connection'),
      event,
      node: name('node'),
      before: num('before'),
      limit: Math.min(num('limit') ?? 200, MAX_LIMIT),
    };
  }

  /** The last `limit` matching records the caller may see, oldest first. */
  async timeline(q: TimelineQuery, visible: (r: AuditRecord) => boolean): Promise<AuditRecord[]> {
    return readAudit(this.#src.path, {
      profile: q.profile,
      provider: q.provider,
      connection: q.connection,
      event: q.event,
      limit: q.limit,
      hide: (r) =>
        !visible(r) ||
        (q.node !== undefined && r.node !== q.node) ||
        (q.before !== undefined && r.seq >= q.before),
    });
  }

  /** `authsome audit verify` with the running daemon's head (cached while the head stands still). */
  async verify(): Promise<VerifyResult & { head: number }> {
    const head = this.#src.head();
    const now = Date.now();
    const v = this.#verified;
    // Read again when the head moved (at most every few seconds), and now and then even when it did
    // not: a log changed behind the daemon's back shows up without new traffic.
    if (v && now - v.at < (v.seq === head.seq ? RECHECK_MS : VERIFY_EVERY_MS))
      return { ...v.result, head: v.seq };
    this.#verifying ??= this.#verifyNow(head).finally(() => (this.#verifying = undefined));
    const result = await this.#verifying;
    return { ...result, head: this.#verified?.seq ?? head.seq };
  }

  async #verifyNow(head: { seq: number; hash: string }): Promise<VerifyResult> {
    let result = await verifyAudit(this.#src.path, head);
    // A batch being written as the file is read ends in a line without its newline yet: read again.
    for (let i = 0; i < 3 && isTornTail(result); i++) {
      await new Promise((r) => setTimeout(r, 100));
      result = await verifyAudit(this.#src.path, head);
    }
    this.#verified = { seq: head.seq, at: Date.now(), result };
    return result;
  }

  /** Distinct values the caller's records name, for the filter lists. */
  async facets(profiles: readonly string[] | 'all'): Promise<Facets> {
    const index = await this.#ensureIndex();
    const out = {
      providers: new Set<string>(),
      connections: new Set<string>(),
      events: new Set<string>(),
      nodes: new Set<string>(),
    };
    const names = profiles === 'all' ? [...index.keys()] : profiles.filter((p) => index.has(p));
    for (const p of names) {
      const i = index.get(p)!;
      for (const k of ['providers', 'connections', 'events', 'nodes'] as const)
        for (const v of i[k]) out[k].add(v);
    }
    const sorted = (s: Set<string>) => [...s].sort();
    return {
      profiles: [...names].sort(),
      providers: sorted(out.providers),
      connections: sorted(out.connections),
      events: sorted(out.events),
      nodes: sorted(out.nodes),
    };
  }

  /** When each of the profile's connections last had a credential injected ("provider/connection" → ts). */
  async lastUsed(profile: string): Promise<ReadonlyMap<string, string>> {
    return (await this.#ensureIndex()).get(profile)?.lastUsed ?? new Map();
  }

  /** Injected requests per provider, per bucket, over the last `minutes` (the page's chart). */
  async chart(visible: (r: AuditRecord) => boolean, minutes: number, now = Date.now()): Promise<Chart> {
    const buckets = 60;
    const bucketMs = Math.max(1, Math.round((minutes * 60_000) / buckets));
    const start = Math.floor(now / bucketMs) * bucketMs - (buckets - 1) * bucketMs;
    const series: Record<string, number[]> = {};
    const records = await readAudit(this.#src.path, {
      event: 'proxy.inject',
      since: new Date(start),
      hide: (r) => !visible(r),
    });
    for (const r of records) {
      const i = Math.floor((Date.parse(r.ts) - start) / bucketMs);
      if (i < 0 || i >= buckets) continue;
      const name = r.provider ?? '(none)';
      (series[name] ??= new Array<number>(buckets).fill(0))[i]! += 1;
    }
    return { start, bucketMs, buckets, series };
  }

  #ensureIndex(): Promise<Map<string, ProfileIndex>> {
    if (this.#index) return Promise.resolve(this.#index);
    this.#building ??= (async () => {
      this.#pending = [];
      try {
        const index = new Map<string, ProfileIndex>();
        for (const r of await readAudit(this.#src.path)) add(index, r);
        for (const r of this.#pending) add(index, r);
        this.#index = index;
        return index;
      } finally {
        this.#pending = undefined;
        this.#building = undefined;
      }
    })();
    return this.#building;
  }
}

function isTornTail(r: VerifyResult): boolean {
  return !r.ok && r.firstBroken?.line === r.lines && r.firstBroken.reason.startsWith('torn');
}

/** Idempotent: the first pass and the listener may both see a record. */
function add(index: Map<string, ProfileIndex>, r: AuditRecord): void {
  let i = index.get(r.profile);
  if (!i) {
    i = {
      providers: new Set(),
      connections: new Set(),
      events: new Set(),
      nodes: new Set(),
      lastUsed: new Map(),
    };
    index.set(r.profile, i);
  }
  i.events.add(r.event);
  if (r.provider) i.providers.add(r.provider);
  if (r.connection) i.connections.add(r.connection);
  if (r.node) i.nodes.add(r.node);
  if (r.event === 'proxy.inject' && r.provider && r.connection) {
    const k = `${r.provider}/${r.connection}`;
    const prev = i.lastUsed.get(k);
    if (prev === undefined || prev < r.ts) i.lastUsed.set(k, r.ts);
  }
}
