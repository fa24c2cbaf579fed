import { Transform } from 'node:stream';
import { AppError } from '../errors.js';
import { SecretScanner } from './secret-scan.js';

/**
 * The upstream-to-client side of an injected WebSocket (RFC 6455 section 5.2), with every needle
 * masked in place inside each frame's payload: frame headers pass unchanged and every frame keeps its
 * declared length. A frame's scan ends with the frame (the scanner's held-back tail is released
 * there), so a finished message is never held while the connection is quiet; the price is that a
 * secret split across two frames is not seen. A masked server frame (forbidden by section 5.1) or one
 * with a reserved bit set (a compressed payload) would hide its payload from the scan: either ends
 * the connection.
 */
export function frameScanner(needles: readonly Buffer[], onFirstHit: () => void): Transform {
  let head = Buffer.alloc(0); // a frame header being collected (at most 14 bytes)
  let left = 0; // payload bytes still to come in the current frame
  let scanner: SecretScanner | undefined;
  const report = once(onFirstHit);

  return new Transform({
    transform(chunk: Buffer, _enc, done) {
      let at = 0;
      while (at < chunk.length) {
        if (scanner) {
          const n = Math.min(left, chunk.length - at);
          emit(this, scanner.push(chunk.subarray(at, at + n)));
          at += n;
          left -= n;
          if (scanner.hits > 0) report();
          if (left === 0) {
            emit(this, scanner.flush());
            scanner = undefined;
          }
          continue;
        }
        const take = Math.min(headerLength(head) - head.length, chunk.length - at);
        head = Buffer.concat([head, chunk.subarray(at, at + take)]);
        at += take;
        if (head.length < headerLength(head)) continue;
        if ((head[1]! & 0x80) !== 0) {
          return done(new AppError('ERR_UPSTREAM_FAILED', 'the upstream sent a masked WebSocket frame'));
        }
        // RSV1-3 set without a negotiated extension (none is: section 5.2 says fail): a compressed
        // payload the scan could not read.
        if ((head[0]! & 0x70) !== 0) {
          return done(
            new AppError('ERR_UPSTREAM_FAILED', 'the upstream sent a frame with reserved bits set'),
          );
        }
        left = payloadLength(head);
        if (left < 0) {
          return done(new AppError('ERR_UPSTREAM_FAILED', 'the upstream sent an impossible frame length'));
        }
        this.push(head);
        head = Buffer.alloc(0);
        if (left > 0) scanner = new SecretScanner(needles);
      }
      done();
    },
  });
}

/**
 * What follows an upgrade answer that is not `101` (a refusal such as 401, whose body may quote the
 * request): plain bytes, not frames, masked like a response body; the held-back tail goes out at the end.
 */
export function byteScanner(needles: readonly Buffer[], onFirstHit: () => void): Transform {
  const scanner = new SecretScanner(needles);
  const report = once(onFirstHit);
  return new Transform({
    transform(chunk: Buffer, _enc, done) {
      const out = scanner.push(chunk);
      if (scanner.hits > 0) report();
      done(null, out.length > 0 ? out : undefined);
    },
    flush(done) {
      const rest = scanner.flush();
      done(null, rest.length > 0 ? rest : undefined);
    },
  });
}

/** Bytes of the header that starts `head` (2 until the length byte is known). */
function headerLength(head: Buffer): number {
  if (head.length < 2) return 2;
  const len7 = head[1]! & 0x7f;
  const extended = len7 === 126 ? 2 : len7 === 127 ? 8 : 0;
  return 2 + extended + ((head[1]! & 0x80) !== 0 ? 4 : 0);
}

/** -1 for a 64-bit length past what a number holds exactly (no real frame is that long). */
function payloadLength(head: Buffer): number {
  const len7 = head[1]! & 0x7f;
  if (len7 < 126) return len7;
  if (len7 === 126) return head.readUInt16BE(2);
  const n = head.readBigUInt64BE(2);
  return n > BigInt(Number.MAX_SAFE_INTEGER) ? -1 : Number(n);
}

function emit(stream: Transform, bytes: Buffer): void {
  if (bytes.length > 0) stream.push(bytes);
}

function once(fn: () => void): () => void {
  let done = false;
  return () => {
    if (done) return;
    done = true;
    fn();
  };
}
