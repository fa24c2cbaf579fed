import type { AuditInput } from '../audit/types.js';

/**
 * Refusals are audited, but a caller must not be able to fill the disk with them (issue 18 item 3):
 * 16 workers without a token once grew audit.log by 99 MB in 5 s. So a proxy.deny record stores a
 * bounded path (cut, with its length), and refusals are folded per key (the profile and session, or
 * the source address when no session token was shown, and the reason) and window: the first FULL_PER_WINDOW of a
 * window are written as they come, the rest are counted and written as ONE record with `count` when the
 * window closes. The number of keys is bounded too (an attacker can pick among 127.0.0.0/8 as its
 * source): past MAX_KEYS, further keys share one overflow key per reason.
 *
 * Injections are never folded: this sees refusals only (proxy.deny, and policy.deny per rule).
 */
export const MAX_DENY_PATH = 256;
const WINDOW_MS = 10_000;
const FULL_PER_WINDOW = 5;
const MAX_KEYS = 256;

interface Window {
  readonly opened: number;
  full: number;
  folded: number;
  /** The last folded record: what the summary says about them (profile, reason, status). */
  last: AuditInput | undefined;
  readonly source: string;
}

/** The path as a deny record keeps it: at most MAX_DENY_PATH characters, the full length beside it. */
export function boundedPath(rec: AuditInput): AuditInput {
  const path = rec.path;
  if (path === undefined || path.length <= MAX_DENY_PATH) return rec;
  return {
    ...rec,
    path: path.slice(0, MAX_DENY_PATH),
    detail: { ...rec.detail, path_len: path.length, path_cut: true },
  };
}

export class DenyFolder {
  readonly #write: (rec: AuditInput) => void;
  readonly #clock: () => number;
  readonly #windows = new Map<string, Window>();
  #timer: NodeJS.Timeout | undefined;

  constructor(write: (rec: AuditInput) => void, clock: () => number = Date.now) {
    this.#write = write;
    this.#clock = clock;
  }

  /**
   * One refusal (proxy.deny, policy.deny, doctor.probe). `source`: the session that identified the
   * request, or without one the client's address; the event, reason and policy rule are part of the key.
   */
  deny(rec: AuditInput, source: string | undefined): void {
    const now = this.#clock();
    const who = `${rec.profile === '-' ? 'src' : `profile:${rec.profile}|session`}:${source ?? '?'}`;
    let key = `${rec.event}|${who}|${rec.reason ?? ''}|${rec.rule ?? ''}`;
    let w = this.#windows.get(key);
    if (w && now - w.opened >= WINDOW_MS) {
      this.#close(key, w);
      w = undefined;
    }
    if (!w) {
      if (this.#windows.size >= MAX_KEYS) {
        key = `overflow|${rec.event}|${rec.reason ?? ''}`;
        w = this.#windows.get(key);
      }
      if (!w) {
        w = { opened: now, full: 0, folded: 0, last: undefined, source: source ?? '?' };
        this.#windows.set(key, w);
        this.#timer ??= setInterval(() => this.#sweep(), WINDOW_MS / 2).unref();
      }
    }
    if (w.full < FULL_PER_WINDOW) {
      w.full++;
      this.#write(boundedPath(rec));
      return;
    }
    w.folded++;
    w.last = rec;
  }

  /** Writes the summaries of every open window (at shutdown, so nothing counted is lost). */
  flush(): void {
    for (const [key, w] of this.#windows) this.#close(key, w);
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
  }

  #sweep(): void {
    const now = this.#clock();
    for (const [key, w] of this.#windows) if (now - w.opened >= WINDOW_MS) this.#close(key, w);
    if (this.#windows.size === 0 && this.#timer) {
      clearInterval(this.#timer);
      this.#timer = undefined;
    }
  }

  #close(key: string, w: Window): void {
    this.#windows.delete(key);
    const last = w.last;
    if (!last || w.folded === 0) return;
    const rec: AuditInput = {
      event: last.event,
      profile: last.profile,
      count: w.folded,
      detail: {
        folded: true,
        window_s: WINDOW_MS / 1000,
        ...(last.profile === '-' ? { source: w.source } : {}),
        ...(key.startsWith('overflow|') ? { overflow: true } : {}),
      },
    };
    if (last.reason !== undefined) rec.reason = last.reason;
    if (last.status !== undefined) rec.status = last.status;
    if (last.rule !== undefined) rec.rule = last.rule;
    this.#write(rec);
  }
}
