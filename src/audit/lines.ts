import { createReadStream } from 'node:fs';

export interface Line {
  /** 1-based. */
  readonly number: number;
  readonly text: string;
  /** False only for a final fragment with no trailing '\n': a torn write. */
  readonly terminated: boolean;
}

/**
 * Streams a file as '\n'-separated lines. Not readline: readline also splits on a lone '\r' and hides
 * whether the last line had its newline, and verify needs both to be exact. Splitting on the 0x0a byte
 * is UTF-8 safe (it never occurs inside a multi-byte sequence).
 */
export async function* readLines(path: string): AsyncGenerator<Line> {
  let carry: Buffer = Buffer.alloc(0);
  let number = 0;
  for await (const chunk of createReadStream(path) as AsyncIterable<Buffer>) {
    let buf = carry.length > 0 ? Buffer.concat([carry, chunk]) : chunk;
    let nl = buf.indexOf(0x0a);
    while (nl !== -1) {
      yield { number: ++number, text: buf.toString('utf8', 0, nl), terminated: true };
      buf = buf.subarray(nl + 1);
      nl = buf.indexOf(0x0a);
    }
    carry = buf;
  }
  if (carry.length > 0) yield { number: ++number, text: carry.toString('utf8'), terminated: false };
}
