// A hostile process on loopback (issue 18 item 1): opens N sockets to the proxy, each starting a CONNECT
// head it never finishes (one byte every interval) or sending nothing; reopens every socket that is
// closed. Prints "ready" once N are open; runs until killed.
import { connect } from 'node:net';
const [port, n, mode, host] = [
  Number(process.argv[2]),
  Number(process.argv[3]),
  process.argv[4],
  process.argv[5],
];
const open = new Set();
let ready = false;
const one = () => {
  const s = connect({ host: '127.0.0.1', port });
  s.on('error', () => undefined);
  s.once('connect', () => {
    open.add(s);
    if (mode === 'trickle') s.write(`CONNECT ${host}:443 HTTP/1.1\r\n`);
    if (!ready && open.size >= n) {
      ready = true;
      process.stdout.write('ready\n');
    }
  });
  s.once('close', () => {
    open.delete(s);
    setImmediate(one);
  });
};
for (let i = 0; i < n; i++) one();
setInterval(
  () => {
    if (mode === 'trickle') for (const s of open) if (s.writable) s.write('X');
  },
  Number(process.argv[6] ?? 1000),
);
