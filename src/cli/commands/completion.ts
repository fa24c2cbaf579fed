import type { Argv } from 'yargs';
import type { GlobalArgs } from '../context.js';

/**
 * yargs' own completion: `authsome completion` prints a bash script (a zsh one when $SHELL is zsh)
 * that calls back into `authsome --get-yargs-completions …`, so completions always match this
 * version's commands. yargs prints the script and exits 0 before strict parsing sees the word.
 */
export function completionCommand(y: Argv<GlobalArgs>): Argv<GlobalArgs> {
  return y.completion(
    'completion',
    'print a shell completion script: authsome completion >> ~/.bashrc (or ~/.zshrc)',
  );
}
