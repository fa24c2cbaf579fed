#!/usr/bin/env node
// Runs the whole test suite while every core is kept busy by a spinning child process (issue 18
// item 8: CI runs on shared machines, so a test's pass or fail must depend on what happened, not on
// how fast). Usage: npm run test:loaded [-- vitest args]. Exits with vitest's code.
import { spawn } from 'node:child_process';
import { availableParallelism } from 'node:os';

const spinners = Array.from({ length: availableParallelism() }, () =>
  spawn(process.execPath, ['-e', 'for (;;) {}'], { stdio: 'ignore' }),
);
const stop = () => {
  for (const s of spinners) s.kill('SIGKILL');
};
process.on('exit', stop);
process.on('SIGINT', () => process.exit(130));
console.log(`test:loaded: ${spinners.length} busy process(es), one per core, while the suite runs`);
const vitest = spawn(process.execPath, ['node_modules/vitest/vitest.mjs', 'run', ...process.argv.slice(2)], {
  stdio: 'inherit',
});
vitest.on('exit', (code, signal) => {
  stop();
  process.exit(code ?? (signal ? 1 : 0));
});
