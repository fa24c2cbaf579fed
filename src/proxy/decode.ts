import { createBrotliDecompress, createGunzip, createInflate } from 'node:zlib';
import type { Transform } from 'node:stream';

/**
 * Content-Encoding decoding for responses of injected requests. The proxy strips Accept-Encoding
 * from those requests, so a compliant upstream answers uncompressed and this never runs; an upstream
 * that compresses anyway is decoded here so the secret scanner reads plain bytes, and the caller gets
 * the decoded body (Content-Encoding and Content-Length removed, Node re-frames it as chunked).
 * An encoding other than gzip, deflate or br cannot be inspected, so it is refused.
 */
export interface Decoder {
  readonly input: Transform;
  readonly output: Transform;
  /** Whether any body byte went in (an empty body is no valid gzip stream). */
  used: boolean;
  destroy(): void;
}

function one(token: string): Transform | undefined {
  if (token === 'gzip' || token === 'x-gzip') return createGunzip();
  if (token === 'deflate') return createInflate();
  if (token === 'br') return createBrotliDecompress();
  return undefined;
}

/** undefined: nothing to decode; 'unsupported': refuse; else the decoder and the headers to send. */
export function decoderFor(
  headers: readonly string[],
): { decoder: Decoder; headers: string[] } | 'unsupported' | undefined {
  const tokens: string[] = [];
  for (let i = 0; i < headers.length; i += 2) {
    if (headers[i]!.toLowerCase() !== 'content-encoding') continue;
    for (const t of headers[i + 1]!.split(','))
      if (t.trim() !== '' && t.trim().toLowerCase() !== 'identity') tokens.push(t.trim().toLowerCase());
  }
  if (tokens.length === 0) return undefined;
  if (tokens.length > 4) return 'unsupported';
  const chain: Transform[] = [];
  // Codings are listed in the order they were applied (RFC 9110 8.4), so they are undone backwards.
  for (const t of tokens.reverse()) {
    const d = one(t);
    if (!d) {
      for (const c of chain) c.destroy();
      return 'unsupported';
    }
    chain.push(d);
  }
  for (let i = 0; i + 1 < chain.length; i++) chain[i]!.pipe(chain[i + 1]!);
  const out: string[] = [];
  for (let i = 0; i < headers.length; i += 2) {
    const lower = headers[i]!.toLowerCase();
    if (lower === 'content-encoding' || lower === 'content-length') continue;
    out.push(headers[i]!, headers[i + 1]!);
  }
  const decoder: Decoder = {
    input: chain[0]!,
    output: chain[chain.length - 1]!,
    used: false,
    destroy: () => {
      for (const c of chain) c.destroy();
    },
  };
  // An error anywhere in the chain surfaces on the output (the relay listens there).
  for (const c of chain.slice(0, -1)) c.on('error', (e) => decoder.output.destroy(e));
  return { decoder, headers: out };
}

/**
 * Whether the response declares a transfer coding other than chunked (`Transfer-Encoding: gzip,
 * chunked`). undici undoes only chunked and hands the rest through as body bytes: the scanner could
 * not read them, and the caller could still undo them. Injected requests refuse such answers.
 */
export function opaqueTransferCoding(headers: readonly string[]): boolean {
  for (let i = 0; i < headers.length; i += 2) {
    if (headers[i]!.toLowerCase() !== 'transfer-encoding') continue;
    for (const t of headers[i + 1]!.split(','))
      if (t.trim() !== '' && t.trim().toLowerCase() !== 'chunked') return true;
  }
  return false;
}

/**
 * Whether a Connection header lists a framing or coding field (`Connection: content-encoding`). Such a
 * field would be removed as hop-by-hop before the body is looked at, so the caller would get bytes
 * still coded but without the header saying so: the scanner could not read them and the caller could
 * still undo them. Injected requests refuse such answers (issue 18 item 4).
 */
export function hiddenCoding(headers: readonly string[]): boolean {
  for (let i = 0; i < headers.length; i += 2) {
    if (headers[i]!.toLowerCase() !== 'connection') continue;
    for (const t of headers[i + 1]!.split(',')) {
      const name = t.trim().toLowerCase();
      if (name === 'content-encoding' || name === 'transfer-encoding' || name === 'content-length')
        return true;
    }
  }
  return false;
}
