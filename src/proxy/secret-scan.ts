/**
 * Secrets in responses (issue 6 item 4): an upstream that echoes the injected credential (debug
 * endpoints, error pages quoting the request, redirects carrying a query key) must not hand it to
 * the caller. Only responses of injected requests are scanned, with Buffer.indexOf per needle.
 *
 * Body policy: every occurrence is overwritten in place with a same-length mask, so Content-Length
 * and the rest of the body stay valid. A needle split across chunks is caught by holding back the
 * longest chunk tail that is a proper prefix of some needle (at most maxNeedle-1 bytes, usually 0):
 * a stream whose chunks end in ordinary bytes (SSE's blank line, NDJSON's newline) is not delayed.
 */

/** Needles shorter than this would mask ordinary text; the full injected header value is always longer. */
export const MIN_NEEDLE = 8;
const MASK = 0x2a; // '*'

export class SecretScanner {
  readonly #needles: readonly Buffer[];
  readonly #texts: readonly string[];
  readonly #maxLen: number;
  #carry: Buffer | undefined;
  /** Occurrences redacted so far. */
  hits = 0;

  constructor(needles: readonly Buffer[]) {
    this.#needles = needles;
    this.#texts = needles.map((n) => n.toString('latin1'));
    this.#maxLen = needles.reduce((m, n) => Math.max(m, n.length), 0);
  }

  /** Does any needle occur in this text (latin1, as headers travel)? */
  inText(text: string): boolean {
    for (const n of this.#texts) if (text.includes(n)) return true;
    return false;
  }

  /** Takes the next chunk (may be modified in place); returns the bytes safe to send now. */
  push(chunk: Buffer): Buffer {
    const buf = this.#carry ? Buffer.concat([this.#carry, chunk]) : chunk;
    this.#carry = undefined;
    this.#redact(buf);
    const hold = this.#heldTail(buf);
    if (hold === 0) return buf;
    this.#carry = Buffer.from(buf.subarray(buf.length - hold));
    return buf.subarray(0, buf.length - hold);
  }

  /** The held-back tail at the end of the body (it completed no needle). */
  flush(): Buffer {
    const rest = this.#carry ?? Buffer.alloc(0);
    this.#carry = undefined;
    return rest;
  }

  #redact(buf: Buffer): void {
    for (const n of this.#needles) {
      let at = buf.indexOf(n);
      while (at >= 0) {
        buf.fill(MASK, at, at + n.length);
        this.hits++;
        at = buf.indexOf(n, at + n.length);
      }
    }
  }

  /** Length of the longest suffix of buf that is a proper prefix of some needle. */
  #heldTail(buf: Buffer): number {
    const len = buf.length;
    const from = Math.max(0, len - (this.#maxLen - 1));
    for (let i = from; i < len; i++) {
      const rest = len - i;
      for (const n of this.#needles) {
        if (rest < n.length && buf[i] === n[0] && buf.compare(n, 0, rest, i, len) === 0) return rest;
      }
    }
    return 0;
  }
}

/**
 * The secret as it appears inside any base64 or base64url text, wherever it starts: base64 encodes
 * 3-byte groups, so text before the secret (`base64("Bearer " + key)`) shifts it by 0, 1 or 2 bytes.
 * For each shift, the characters that depend on the secret's bytes alone: from the first one not
 * mixed with the bytes before it, to the last complete group (the rest depends on what follows).
 * Masking these leaves at most the encoding of the secret's first and last 2 bytes.
 */
function base64Forms(secret: Buffer): string[] {
  const out: string[] = [];
  for (const shift of [0, 1, 2]) {
    const enc = Buffer.concat([Buffer.alloc(shift), secret]).toString('base64');
    const body = enc.slice([0, 2, 3][shift], Math.floor((shift + secret.length) / 3) * 4);
    out.push(body, body.replace(/\+/g, '-').replace(/\//g, '_'));
  }
  return out;
}

/**
 * The ways a URL or JSON encoder spells a value: percent-encoding of every reserved character
 * (`encodeURIComponent`), of all but `/` (Python's `quote`), or of none of them (`encodeURI`), each
 * with upper- or lower-case hex; and JSON with `/` escaped (PHP's `json_encode`). For a value of
 * letters, digits and `-_.~` (most API keys) these are all the value itself.
 */
function escapedForms(v: string): string[] {
  const pct = [encodeURIComponent(v), encodeURIComponent(v).replace(/%2F/g, '/'), encodeURI(v)];
  return [
    ...pct,
    ...pct.map((e) => e.replace(/%[0-9A-F]{2}/g, (m) => m.toLowerCase())),
    v.replace(/\//g, '\\/'),
  ];
}

/**
 * The needles for one injected request: each injected header value and its credential part (the
 * text after the auth scheme), each injected query value (raw and URL-encoded), and each secret field
 * in the forms a leak usually takes (raw, base64 and base64url at any offset, hex in either case,
 * URL- and JSON-escaped); minus any needle that contains another one.
 */
export function buildNeedles(injectedValues: readonly string[], secretFields: readonly string[]): Buffer[] {
  const out = new Set<string>();
  const add = (s: string): void => {
    if (Buffer.byteLength(s) >= MIN_NEEDLE) out.add(s);
  };
  for (const v of injectedValues) {
    add(v);
    for (const e of escapedForms(v)) add(e);
    const sp = v.lastIndexOf(' ');
    if (sp >= 0) add(v.slice(sp + 1));
  }
  for (const f of secretFields) {
    const b = Buffer.from(f, 'utf8');
    add(f);
    for (const e of escapedForms(f)) add(e);
    for (const shifted of base64Forms(b)) add(shifted);
    add(b.toString('hex'));
    add(b.toString('hex').toUpperCase());
  }
  // A needle that contains another is redundant: masking the inner one already breaks every copy of
  // it (and finds it in headers). Fewer needles = fewer passes over each body chunk.
  const all = [...out];
  const minimal = all.filter((s) => !all.some((o) => o !== s && o.length < s.length && s.includes(o)));
  return minimal.map((s) => Buffer.from(s, 'utf8'));
}
