import type { Argv } from 'yargs';

/**
 * docs/cli.md, generated from the yargs definitions themselves: every command's --help, found by
 * walking the "Commands:" sections. Width and locale are fixed so the output does not depend on the
 * terminal. `test/unit/cli/cli-docs.test.ts` fails when docs/cli.md differs; `npm run docs:cli` rewrites it.
 */
export type BuildCli = (argv: string[]) => Argv<object>;

/** `completion` prints a script instead of help; it is listed, not walked. */
const NOT_WALKED = new Set(['completion']);

export async function helpText(build: BuildCli, path: readonly string[]): Promise<string> {
  const args = [...path, '--help'];
  const y = build(args).wrap(100).locale('en').exitProcess(false);
  const out = await new Promise<string>((resolve, reject) => {
    y.parse(args, {}, (err, _argv, output) =>
      err ? reject(err instanceof Error ? err : new Error(String(err))) : resolve(output),
    );
  });
  return out
    .split('\n')
    .map((l) => l.trimEnd())
    .join('\n')
    .trim();
}

/** Sub-command paths listed in one help text, one level below `path`. */
export function subcommands(help: string, path: readonly string[]): string[][] {
  const start = help.search(/^Commands:$/m);
  const section = start < 0 ? '' : (help.slice(start).split('\n\n')[0] ?? '');
  const out: string[][] = [];
  for (const line of section.split('\n')) {
    const usage = line.trim().split(/\s{2,}/)[0] ?? '';
    const words = usage.split(/\s+/).filter((w) => w && !w.startsWith('<') && !w.startsWith('['));
    if (words[0] !== 'authsome') continue;
    const sub = words.slice(1);
    if (sub.length !== path.length + 1 || path.some((p, i) => sub[i] !== p) || NOT_WALKED.has(sub.at(-1)!))
      continue;
    out.push(sub);
  }
  return out;
}

export async function renderCliDocs(build: BuildCli): Promise<string> {
  const parts = [
    '# CLI reference',
    '',
    '<!-- Generated from the yargs command definitions (src/cli/commands/*.ts) by `npm run docs:cli`. Do not edit by hand:',
    '     test/unit/cli/cli-docs.test.ts fails when this file is stale. -->',
    '',
    'Every command accepts the global options `--home`, `--profile`, `--json` and `--no-color`. Exit codes and',
    'error codes: [errors.md](errors.md). Shell completion: `authsome completion >> ~/.bashrc` (or `~/.zshrc`).',
  ];
  const walk = async (path: string[]): Promise<void> => {
    const help = await helpText(build, path);
    parts.push('', `## authsome${path.length ? ` ${path.join(' ')}` : ''}`, '', '```text', help, '```');
    for (const sub of subcommands(help, path)) await walk(sub);
  };
  await walk([]);
  return `${parts.join('\n')}\n`;
}
