import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { shellQuote } from '../session-env.js';
import type { Source } from './detect.js';

/** Shell start-up files where an `export KEY=…` usually lives. */
const RC_FILES = [
  '.bashrc',
  '.bash_profile',
  '.profile',
  '.zshrc',
  '.zshenv',
  '.zprofile',
  '.config/fish/config.fish',
];

export interface Leftover {
  /** Where the plaintext copy is. */
  where: string;
  /** What to do about it (a command where there is one). */
  fix: string;
}

/** Lines of the user's shell start-up files that contain one of these values (1-based). */
export function rcFileHits(
  values: readonly string[],
  home: string = homedir(),
): Array<{ file: string; line: number }> {
  const hits: Array<{ file: string; line: number }> = [];
  for (const rel of RC_FILES) {
    const file = join(home, rel);
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    text.split('\n').forEach((l, i) => {
      if (values.some((v) => l.includes(v))) hits.push({ file, line: i + 1 });
    });
  }
  return hits;
}

/**
 * What still holds a plaintext copy after an import: the dotenv lines, this shell's variables and any
 * shell start-up file line with the same value. authsome cannot remove them for you: the variables
 * belong to the parent shell, and the files are yours.
 */
export function leftovers(sources: readonly Source[], values: readonly string[], home?: string): Leftover[] {
  const out: Leftover[] = [];
  const byFile = new Map<string, Array<{ line: number; name: string }>>();
  const envNames = new Set<string>();
  for (const s of sources) {
    if (s.kind === 'env') envNames.add(s.name);
    else byFile.set(s.file, [...(byFile.get(s.file) ?? []), { line: s.line, name: s.name }]);
  }
  for (const [file, lines] of byFile) {
    const sorted = [...new Map(lines.map((l) => [l.line, l])).values()].sort((a, b) => a.line - b.line);
    out.push({
      where: `${file}: line${sorted.length > 1 ? 's' : ''} ${sorted.map((l) => `${l.line} (${l.name})`).join(', ')}`,
      fix: `delete ${sorted.length > 1 ? 'those lines' : 'that line'} (or set ${sorted.map((l) => `${l.name}=authsome-managed`).join(', ')} if a tool insists on the variable): sed -i.bak '${sorted.map((l) => `${l.line}d`).join(';')}' ${shellQuote(file)} && rm ${shellQuote(`${file}.bak`)}`,
    });
  }
  if (envNames.size > 0) {
    out.push({
      where: `this shell's environment: ${[...envNames].map((n) => `$${n}`).join(', ')}`,
      fix: `unset ${[...envNames].join(' ')}  (\`authsome run\` sets a placeholder for tools that need the variable)`,
    });
  }
  for (const h of rcFileHits(values, home))
    out.push({
      where: `${h.file}:${h.line}`,
      fix: `remove the export from line ${h.line} of ${h.file}, then open a new shell`,
    });
  return out;
}
