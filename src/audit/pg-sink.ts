import { AppError, isAppError } from '../errors.js';
import { chainRecord, GENESIS, hashRecord } from './chain.js';
import { parseRecord } from './parse.js';
import type { AuditFilter } from './reader.js';
import { matchesFilter } from './reader.js';
import type { AuditInput, AuditRecord } from './types.js';
import { validateInput } from './validate.js';

/**
 * The audit trail of a team (SPEC section 10) in PostgreSQL: one hash chain per node in
 * `authsome_audit (node, seq, ts, record, prev, hash)`, `record` the line exactly as hashed (the same
 * canonical JSON as an audit.log line, `node` included). Audit before send holds as with the file:
 * append resolves once the INSERT carrying the record has committed. Group commit: appends that arrive
 * while an INSERT is in flight go together in the next one (one statement, so all or none).
 *
 * The database is the truth for the chain: a node restarted after kill -9 reads its head from it, and
 * after a failed INSERT (the commit may or may not have happened) the next batch reads the head again
 * before chaining on it. Unreachable database: appends reject with ERR_STORE_UNAVAILABLE (503), so the
 * proxy sends nothing, and the next request tries again (no restart).
 */

/** What the sink needs of the store's PostgreSQL handle (src/vault/pg-store.ts PgHandle). */
export interface SqlRunner {
  query<R extends Record<string, unknown>>(text: string, values?: unknown[]): Promise<{ rows: R[] }>;
}

export type PgAuditListener = (record: AuditRecord) => void;

interface Pending {
  readonly input: AuditInput;
  readonly ts: string;
  resolve(r: AuditRecord): void;
  reject(e: Error): void;
}

/** Rows per INSERT at most (a statement's parameters are bounded: 6 a row). */
const MAX_BATCH = 1000;

export class PgAuditSink {
  readonly node: string;
  readonly #db: SqlRunner;
  readonly #clock: () => Date;
  #head: { seq: number; hash: string };
  /** The last batch failed: read the head from the database before chaining on it. */
  #unsure = false;
  #queue: Pending[] = [];
  #flushing: Promise<void> | undefined;
  #closed = false;
  readonly #listeners = new Set<PgAuditListener>();

  private constructor(db: SqlRunner, node: string, head: { seq: number; hash: string }, clock: () => Date) {
    this.#db = db;
    this.node = node;
    this.#head = head;
    this.#clock = clock;
  }

  static async open(db: SqlRunner, node: string, clock: () => Date = () => new Date()): Promise<PgAuditSink> {
    return new PgAuditSink(db, node, await readHead(db, node), clock);
  }

  /** The last durable record of this node's chain. */
  get head(): { seq: number; hash: string } {
    return { ...this.#head };
  }

  append(input: AuditInput): Promise<AuditRecord> {
    let clean: AuditInput;
    try {
      clean = validateInput({ ...input, node: this.node });
    } catch (e) {
      return Promise.reject(e instanceof Error ? e : new TypeError(String(e)));
    }
    if (this.#closed) return Promise.reject(unavailable('the audit trail is closed'));
    return new Promise<AuditRecord>((resolve, reject) => {
      this.#queue.push({ input: clean, ts: this.#clock().toISOString(), resolve, reject });
      this.#flushing ??= this.#flush();
    });
  }

  /** The database answers: a change stored before its record is refused while it does not. */
  async ready(): Promise<void> {
    if (this.#closed) throw unavailable('the audit trail is closed');
    await this.#db.query('SELECT 1');
  }

  /** Whether the trail still holds this record of this node's chain. */
  async holds(rec: { seq: number; hash: string }): Promise<boolean> {
    if (rec.seq === 0) return true;
    const r = await this.#db.query<{ hash: string }>(
      'SELECT hash FROM authsome_audit WHERE node = $1 AND seq = $2',
      [this.node, rec.seq],
    );
    return r.rows[0]?.hash === rec.hash;
  }

  onAppend(listener: PgAuditListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  async close(): Promise<void> {
    this.#closed = true;
    while (this.#flushing) await this.#flushing;
  }

  async #flush(): Promise<void> {
    try {
      while (this.#queue.length > 0) {
        const batch = this.#queue.splice(0, MAX_BATCH);
        await this.#write(batch);
      }
    } finally {
      this.#flushing = undefined;
    }
  }

  async #write(batch: Pending[]): Promise<void> {
    let records: AuditRecord[];
    let lines: string[];
    try {
      if (this.#unsure) {
        this.#head = await readHead(this.#db, this.node);
        this.#unsure = false;
      }
      ({ records, lines } = this.#chain(batch));
      const values: unknown[] = [];
      const rows = records.map((r, i) => {
        const b = i * 6;
        values.push(this.node, r.seq, r.ts, lines[i], r.prev, r.hash);
        return `($${b + 1}, $${b + 2}, $${b + 3}, $${b + 4}, $${b + 5}, $${b + 6})`;
      });
      await this.#db.query(
        `INSERT INTO authsome_audit (node, seq, ts, record, prev, hash) VALUES ${rows.join(', ')}`,
        values,
      );
    } catch (e) {
      this.#unsure = true;
      const err = isAppError(e) ? e : unavailable('the audit trail could not be written', e);
      for (const p of batch) p.reject(err);
      return;
    }
    const last = records[records.length - 1]!;
    this.#head = { seq: last.seq, hash: last.hash };
    for (let i = 0; i < batch.length; i++) batch[i]!.resolve(records[i]!);
    for (const r of records)
      for (const l of this.#listeners) {
        try {
          l(r);
        } catch {
          // a listener's failure is not the writer's
        }
      }
  }

  #chain(batch: Pending[]): { records: AuditRecord[]; lines: string[] } {
    let { seq, hash } = this.#head;
    const records: AuditRecord[] = [];
    const lines: string[] = [];
    for (const p of batch) {
      const unhashed = { ts: p.ts, seq: seq + 1, ...p.input, prev: hash };
      const { hash: h, line } = chainRecord(unhashed);
      records.push({ ...unhashed, hash: h });
      lines.push(line);
      seq += 1;
      hash = h;
    }
    return { records, lines };
  }
}

async function readHead(db: SqlRunner, node: string): Promise<{ seq: number; hash: string }> {
  const r = await db.query<{ seq: string | number; hash: string }>(
    'SELECT seq, hash FROM authsome_audit WHERE node = $1 ORDER BY seq DESC LIMIT 1',
    [node],
  );
  const row = r.rows[0];
  return row ? { seq: Number(row.seq), hash: row.hash } : { seq: 0, hash: GENESIS };
}

function unavailable(message: string, cause?: unknown): AppError {
  return new AppError(
    'ERR_STORE_UNAVAILABLE',
    message,
    'check that the team database is reachable; requests succeed again once it is back',
    cause === undefined ? undefined : { cause },
  );
}

/**
 * Every node's records matching `filter`, merged by time (ts, then node and seq), oldest first; with
 * a limit, the last N. `node` narrows to one node's chain.
 */
export async function readAuditDb(
  db: SqlRunner,
  filter: AuditFilter & { node?: string | undefined },
): Promise<AuditRecord[]> {
  const where: string[] = [];
  const values: unknown[] = [];
  const add = (sql: string, v: unknown): void => {
    values.push(v);
    where.push(sql.replace('?', `$${values.length}`));
  };
  if (filter.node !== undefined) add('node = ?', filter.node);
  if (filter.since !== undefined) add('ts >= ?', filter.since.toISOString());
  // The rest is read from the record itself (its JSON text), then checked again by matchesFilter.
  for (const key of ['profile', 'provider', 'connection', 'event'] as const) {
    const v = filter[key];
    if (v !== undefined) add(`(record::jsonb ->> '${key}') = ?`, v);
  }
  const limit = filter.limit;
  const sql =
    `SELECT record FROM authsome_audit${where.length ? ` WHERE ${where.join(' AND ')}` : ''}` +
    ` ORDER BY ts DESC, node DESC, seq DESC${limit !== undefined && filter.hide === undefined && filter.hideProbes !== true ? ` LIMIT ${Number(limit)}` : ''}`;
  const r = await db.query<{ record: string }>(sql, values);
  const out: AuditRecord[] = [];
  for (const row of r.rows) {
    const parsed = parseRecord(row.record);
    if (!parsed.ok || !matchesFilter(parsed.record, filter)) continue;
    if (filter.hide?.(parsed.record)) {
      filter.onHidden?.(parsed.record);
      continue;
    }
    out.push(parsed.record);
  }
  out.reverse();
  return limit === undefined ? out : out.slice(-limit);
}

export interface ChainVerdict {
  node: string;
  ok: boolean;
  rows: number;
  head: { seq: number; hash: string };
  firstBroken?: { seq: number; reason: string };
}

/** Checks every node's chain (or one node's): each row's hash, its link to the one before, no gap. */
export async function verifyAuditDb(db: SqlRunner, node?: string): Promise<ChainVerdict[]> {
  const nodes = node
    ? [node]
    : (await db.query<{ node: string }>('SELECT DISTINCT node FROM authsome_audit ORDER BY node')).rows.map(
        (r) => r.node,
      );
  const out: ChainVerdict[] = [];
  for (const n of nodes) out.push(await verifyChain(db, n));
  return out;
}

const PAGE = 5000;

async function verifyChain(db: SqlRunner, node: string): Promise<ChainVerdict> {
  let prev = GENESIS;
  let expected = 1;
  let rows = 0;
  const broken = (seq: number, reason: string): ChainVerdict => ({
    node,
    ok: false,
    rows,
    head: { seq: expected - 1, hash: prev },
    firstBroken: { seq, reason },
  });
  for (;;) {
    const r = await db.query<{ seq: string | number; record: string; prev: string; hash: string }>(
      'SELECT seq, record, prev, hash FROM authsome_audit WHERE node = $1 AND seq >= $2 ORDER BY seq LIMIT $3',
      [node, expected, PAGE],
    );
    for (const row of r.rows) {
      const seq = Number(row.seq);
      if (seq !== expected) return broken(expected, `row ${expected} is missing (next is ${seq})`);
      const parsed = parseRecord(row.record);
      if (!parsed.ok) return broken(seq, parsed.reason);
      const rec = parsed.record;
      if (rec.seq !== seq || rec.node !== node) return broken(seq, 'the record does not match its row');
      if (rec.prev !== prev || row.prev !== prev) return broken(seq, 'prev does not chain to the row before');
      const { hash, ...rest } = rec;
      if (hashRecord(rest) !== hash || row.hash !== hash)
        return broken(seq, 'hash does not match the content');
      prev = hash;
      expected = seq + 1;
      rows++;
    }
    if (r.rows.length < PAGE) break;
  }
  return { node, ok: true, rows, head: { seq: expected - 1, hash: prev } };
}
