// Cost of one caller attribution (src/policy/caller.ts) on this machine: `npm run build && node scripts/measure-caller.mjs`.
// A loopback server, a real node child connected to it, N lookups of that child; prints ms per lookup and the
// two parts that dominate it (reading /proc/net/tcp, scanning the user's /proc/*/fd).
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { performance } from 'node:perf_hooks';
import { findCaller } from '../dist/src/policy/caller.js';

const N = Number(process.argv[2] ?? 20);
const server = createServer(async (sock) => {
  await new Promise((r) => setTimeout(r, 100));
  const t0 = performance.now();
  let caller;
  for (let i = 0; i < N; i++) caller = await findCaller(sock, { deadlineMs: 10_000 });
  const perLookup = (performance.now() - t0) / N;
  const t1 = performance.now();
  for (let i = 0; i < N; i++) readFileSync('/proc/net/tcp');
  const table = (performance.now() - t1) / N;
  const pids = readdirSync('/proc').filter((p) => /^\d+$/.test(p));
  const lines = readFileSync('/proc/net/tcp', 'latin1').split('\n').length - 2;
  console.log(
    `findCaller: ${perLookup.toFixed(1)} ms per lookup (${JSON.stringify(caller)}); ` +
      `reading /proc/net/tcp (${lines} sockets): ${table.toFixed(1)} ms; ${pids.length} processes; ` +
      `load average ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}`,
  );
  child.kill();
  process.exit(0);
});
let child;
server.listen(0, '127.0.0.1', () => {
  const { port } = server.address();
  child = spawn(
    process.execPath,
    ['-e', `require('net').connect(${port}, '127.0.0.1'); setTimeout(() => {}, 60000)`],
    {
      stdio: 'ignore',
    },
  );
});
