import { AppError } from '../errors.js';

/**
 * Reads one secret: from a no-echo TTY prompt, or from stdin when it is piped. Never from argv,
 * so it cannot leak through `ps` or shell history.
 */
export async function readSecrets(labels: readonly string[]): Promise<string[]> {
  if (process.stdin.isTTY) {
    const out: string[] = [];
    for (const l of labels) out.push(await promptHidden(l));
    return out;
  }
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  const lines = Buffer.concat(chunks)
    .toString('utf8')
    .replace(/(?:\r?\n)+$/, '') // trailing blank lines (`cat keyfile |`, an editor's final newline)
    .split(/\r?\n/);
  if (lines.length !== labels.length || lines.some((l) => l === '')) {
    throw new AppError(
      'ERR_INPUT_INVALID',
      `expected ${labels.length} non-empty line(s) on stdin (${labels.join(', ')}), got ${lines.filter(Boolean).length}`,
      labels.length === 1
        ? `pipe it in: printf '%s\\n' "$KEY" | authsome login …, or run in a terminal to be prompted`
        : `pipe one line per field, in this order: ${labels.join(', ')}`,
    );
  }
  return lines;
}

async function promptHidden(label: string): Promise<string> {
  const stdin = process.stdin;
  // Raw mode before the prompt shows: a key typed (or sent) the moment the prompt appears would
  // otherwise meet the terminal's line discipline, which turns Ctrl-D into an end-of-file nobody reads.
  stdin.setRawMode(true);
  stdin.resume();
  process.stderr.write(`${label}: `);
  let value = '';
  try {
    return await new Promise<string>((resolve, reject) => {
      const onData = (buf: Buffer) => {
        for (const ch of buf.toString('utf8')) {
          if (ch === '\r' || ch === '\n') {
            stdin.off('data', onData);
            process.stderr.write('\n');
            if (!value)
              reject(new AppError('ERR_INPUT_INVALID', `empty ${label}`, 'paste the value and press Enter'));
            else resolve(value);
            return;
          }
          // Ctrl-C, or Ctrl-D on an empty line (end of input), cancels; Ctrl-D after a value ends it.
          if (ch === '\u0003' || (ch === '\u0004' && !value)) {
            stdin.off('data', onData);
            process.stderr.write('\n');
            reject(new AppError('ERR_INPUT_INVALID', 'cancelled', 'run the command again when ready'));
            return;
          }
          if (ch === '\u0004') {
            stdin.off('data', onData);
            process.stderr.write('\n');
            resolve(value);
            return;
          }
          if (ch === '\u007f' || ch === '\b') value = value.slice(0, -1);
          else if (ch >= ' ') value += ch; // other control characters are never part of a secret
        }
      };
      stdin.on('data', onData);
    });
  } finally {
    stdin.setRawMode(false);
    stdin.pause();
  }
}

/** y/N question on the TTY; false when there is no TTY (never act silently). */
export async function confirm(question: string): Promise<boolean> {
  if (!process.stdin.isTTY) return false;
  const { createInterface } = await import('node:readline/promises');
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    const a = await rl.question(`${question} [y/N] `);
    return /^y(es)?$/i.test(a.trim());
  } catch (e) {
    // Ctrl-C (readline's AbortError) is the user's answer, not a bug: cancel as the secret prompt does.
    if ((e as { code?: unknown }).code === 'ABORT_ERR')
      throw new AppError('ERR_INPUT_INVALID', 'cancelled', 'run the command again when ready');
    throw e;
  } finally {
    rl.close();
  }
}
