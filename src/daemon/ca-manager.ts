import type { SecureContext } from 'node:tls';
import { X509Certificate } from 'node:crypto';
import { LeafCache } from '../ca/leaf-cache.js';
import { loadCa } from '../ca/root.js';
import { finishRotation, fingerprint, readRotation, startRotation, type Rotation } from '../ca/rotate.js';
import { ensureTrustFiles } from '../ca/trust-files.js';
import type { LeafSource, LocalCa } from '../ca/types.js';
import type { AuditSink } from '../audit/types.js';
import { AppError } from '../errors.js';

/** setTimeout's limit (~24.8 days); a later switch re-arms. */
const MAX_TIMER_MS = 2 ** 31 - 1;

export interface CaStatus {
  fingerprint: string;
  subject: string;
  notAfter: string;
  rotation?: Rotation;
}

/**
 * The CA the proxy mints leaves from, swappable while the daemon runs (`ca rotate`, rotate.ts): the
 * proxy holds this object, and a finished rotation replaces the leaf cache behind it, so every leaf
 * minted from then on comes from the new CA and no leaf of the old one is served again. Rotations
 * are serialised; each step is audited (`ca.rotate`).
 */
export class CaManager implements LeafSource {
  readonly #dir: string;
  readonly #audit: AuditSink;
  #ca: LocalCa;
  #leaves: LeafCache;
  #timer: NodeJS.Timeout | undefined;
  #busy: Promise<unknown> = Promise.resolve();
  #closed = false;

  private constructor(dir: string, ca: LocalCa, leaves: LeafCache, audit: AuditSink) {
    this.#dir = dir;
    this.#ca = ca;
    this.#leaves = leaves;
    this.#audit = audit;
  }

  static async open(dir: string, ca: LocalCa, audit: AuditSink): Promise<CaManager> {
    const m = new CaManager(dir, ca, await LeafCache.create(ca), audit);
    await m.#arm();
    return m;
  }

  /** The CA that signs now (remote listeners mint their server certificate from it). */
  get current(): LocalCa {
    return this.#ca;
  }

  secureContextFor(host: string): Promise<SecureContext> {
    return this.#leaves.secureContextFor(host);
  }

  warm(hosts: Iterable<string>): Promise<void> {
    return this.#leaves.warm(hosts);
  }

  async status(): Promise<CaStatus> {
    const cert = new X509Certificate(this.#ca.certPem);
    const rotation = await readRotation(this.#dir);
    return {
      fingerprint: fingerprint(this.#ca.certPem),
      subject: cert.subject.replace(/\n/g, ', '),
      notAfter: new Date(cert.validTo).toISOString(),
      ...(rotation ? { rotation } : {}),
    };
  }

  /** Starts a rotation (next.pem beside ca.pem, trust files holding both); overlap 0 finishes it at once. */
  rotate(by: string, overlapMs: number): Promise<CaStatus> {
    return this.#serial(async () => {
      const expires = Date.parse(new X509Certificate(this.#ca.certPem).validTo);
      if (overlapMs > 0 && Date.now() + overlapMs >= expires)
        throw new AppError(
          'ERR_INPUT_INVALID',
          `the current CA expires (${new Date(expires).toISOString()}) before that overlap would end`,
          'choose a shorter --overlap, or `--overlap 0` to switch at once',
        );
      const r = await startRotation(this.#dir, overlapMs);
      await ensureTrustFiles(this.#dir);
      await this.#audit.append({
        event: 'ca.rotate',
        profile: by,
        detail: {
          phase: 'start',
          next: r.next,
          switch_at: r.switchAt,
          overlap_s: Math.round(overlapMs / 1000),
        },
      });
      if (overlapMs <= 0) await this.#finish(by);
      else await this.#arm();
      return this.status();
    });
  }

  /** Ends the overlap now: the new CA signs, the old root and key are gone. */
  finish(by: string): Promise<CaStatus> {
    return this.#serial(async () => {
      if (!(await readRotation(this.#dir)))
        throw new AppError(
          'ERR_INPUT_INVALID',
          'no CA rotation is in progress',
          'start one with `authsome ca rotate` (or `--overlap 0` to switch at once)',
        );
      await this.#finish(by);
      return this.status();
    });
  }

  close(): void {
    this.#closed = true;
    if (this.#timer) clearTimeout(this.#timer);
  }

  async #finish(by: string): Promise<void> {
    const done = await finishRotation(this.#dir);
    const ca = await loadCa(this.#dir);
    // A new cache: no leaf of the old CA is served again (TLS sessions already open keep theirs).
    this.#leaves = await LeafCache.create(ca);
    this.#ca = ca;
    await ensureTrustFiles(this.#dir);
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    await this.#audit.append({
      event: 'ca.rotate',
      profile: by,
      detail: { phase: 'finish', ca: done?.fingerprint ?? fingerprint(ca.certPem) },
    });
  }

  /** A timer for the switch of the rotation in progress (at once when it is due already). */
  async #arm(): Promise<void> {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    const r = await readRotation(this.#dir);
    if (!r || this.#closed) return;
    const wait = Math.max(0, Date.parse(r.switchAt) - Date.now());
    this.#timer = setTimeout(
      () => {
        this.#timer = undefined;
        if (wait > MAX_TIMER_MS) return void this.#arm();
        void this.#serial(async () => {
          const still = await readRotation(this.#dir);
          if (still && Date.parse(still.switchAt) <= Date.now()) await this.#finish('-');
        }).catch((e: unknown) => {
          // The daemon log says why; the rotation stays in progress and `ca rotate --finish` can retry.
          console.error(`authsome: the CA rotation could not finish: ${(e as Error).message}`);
        });
      },
      Math.min(wait, MAX_TIMER_MS),
    );
    this.#timer.unref();
  }

  #serial<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.#busy.then(fn, fn);
    this.#busy = next.catch(() => undefined);
    return next;
  }
}
