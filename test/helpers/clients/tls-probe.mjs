// A long-lived Node process behind `authsome run`: its trust (Node's roots plus NODE_EXTRA_CA_CERTS) is
// read once, at start. For each step k = 1..steps it waits for the file `<prefix>.go<k>`, opens a new
// CONNECT tunnel through HTTPS_PROXY and a new TLS connection to api.github.com with that trust, sends
// one GET, and writes the status (or the TLS error code) to `<prefix>.<k>`.
//
//   node tls-probe.mjs /tmp/dir/A 3
import { request } from 'node:http';
import { connect } from 'node:tls';
import { existsSync, renameSync, writeFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';

const [prefix, stepsText] = process.argv.slice(2);
const proxy = new URL(process.env.HTTPS_PROXY);
const auth = `Basic ${Buffer.from(`${decodeURIComponent(proxy.username)}:${decodeURIComponent(proxy.password)}`).toString('base64')}`;

function once() {
  return new Promise((resolve) => {
    const req = request({
      host: proxy.hostname,
      port: proxy.port,
      method: 'CONNECT',
      path: 'api.github.com:443',
      headers: { host: 'api.github.com:443', 'proxy-authorization': auth },
    });
    req.on('error', (e) => resolve(`error ${e.message}`));
    req.on('connect', (res, socket) => {
      if (res.statusCode !== 200) return resolve(`connect ${res.statusCode}`);
      const tls = connect({ socket, servername: 'api.github.com', ALPNProtocols: ['http/1.1'] });
      tls.on('error', (e) => resolve(`tls-error ${e.code ?? e.message}`));
      tls.on('secureConnect', () => {
        tls.write('GET /rotate/node HTTP/1.1\r\nHost: api.github.com\r\nConnection: close\r\n\r\n');
        let head = '';
        tls.on('data', (d) => {
          head += d.toString('latin1');
          const m = /^HTTP\/1\.1 (\d{3})/.exec(head);
          if (m) {
            resolve(m[1]);
            tls.destroy();
          }
        });
      });
    });
    req.end();
  });
}

for (let k = 1; k <= Number(stepsText); k++) {
  while (!existsSync(`${prefix}.go${k}`)) await sleep(50);
  const result = await once();
  writeFileSync(`${prefix}.${k}.tmp`, String(result));
  renameSync(`${prefix}.${k}.tmp`, `${prefix}.${k}`);
}
