// undici with an explicit ProxyAgent, for code that builds its own dispatcher (or runs outside
// `authsome run` with only HTTPS_PROXY set). The token comes from HTTPS_PROXY, never from this file;
// the CA comes from NODE_EXTRA_CA_CERTS, which Node reads at start-up.
//
//   authsome run -- node examples/node-undici.mjs https://api.github.com/user
import { ProxyAgent, request } from 'undici';

const url = process.argv[2] ?? process.env.AUTHSOME_EXAMPLE_URL ?? 'https://api.github.com/user';
const proxyUrl = process.env.HTTPS_PROXY ?? process.env.https_proxy;
if (!proxyUrl) {
  console.error('HTTPS_PROXY is not set: run this under `authsome run -- node examples/node-undici.mjs`');
  process.exit(2);
}
const p = new URL(proxyUrl);
const token = `Basic ${Buffer.from(`${decodeURIComponent(p.username)}:${decodeURIComponent(p.password)}`).toString('base64')}`;
const dispatcher = new ProxyAgent({ uri: `${p.protocol}//${p.host}`, token });
const headers = process.env.AUTHSOME_CONNECTION
  ? { 'x-authsome-connection': process.env.AUTHSOME_CONNECTION }
  : {};
try {
  const res = await request(url, { dispatcher, headers });
  console.log(res.statusCode, await res.body.text());
  process.exitCode = res.statusCode < 400 ? 0 : 1;
} finally {
  await dispatcher.close();
}
