import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';

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

const BACK_WINDOW = 64 * 1024;

/**
 * The file's '\n'-terminated lines from the last to the first (without their newlines; a final
 * fragment without one comes first), reading backwards in windows: for a look at the end of a large
 * log without reading it whole.
 */
export async function* linesFromEnd(path: string): AsyncGenerator<string> {
  const fh = await open(path, 'r');
  try {
    const size = (await fh.stat()).size;
    let pos = size;
    let carry = Buffer.alloc(0);
    let atEnd = true;
    while (pos > 0) {
      const n = Math.min(BACK_WINDOW, pos);
      pos -= n;
      const buf = Buffer.alloc(n);
      const { bytesRead } = await fh.read(buf, 0, n, pos);
      const parts = Buffer.concat([buf.subarray(0, bytesRead), carry])
        .toString('latin1')
        .split('\n');
      carry = Buffer.from(parts.shift()!, 'latin1'); // may continue before this window
      if (atEnd && parts.at(-1) === '') parts.pop(); // the newline that ends the file
      atEnd = false;
      for (let i = parts.length - 1; i >= 0; i--) yield Buffer.from(parts[i]!, 'latin1').toString('utf8');
    }
    if (size > 0) yield carry.toString('utf8'); // the first line (empty when the file starts with '\n')
  } finally {
    await fh.close();
  }
}
