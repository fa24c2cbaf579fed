// Node's global fetch through authsome. Under `authsome run`, NODE_OPTIONS preloads a proxy
// dispatcher (Node 20 fetch ignores HTTPS_PROXY by itself) and NODE_EXTRA_CA_CERTS trusts the CA.
//
//   authsome run -- node examples/node-fetch.mjs https://api.github.com/user
const url = process.argv[2] ?? process.env.AUTHSOME_EXAMPLE_URL ?? 'https://api.github.com/user';
if (!process.env.HTTPS_PROXY && !process.env.https_proxy) {
  console.error('HTTPS_PROXY is not set: run this under `authsome run -- node examples/node-fetch.mjs`');
  process.exit(2);
}
const headers = process.env.AUTHSOME_CONNECTION
  ? { 'X-Authsome-Connection': process.env.AUTHSOME_CONNECTION }
  : {};
const res = await fetch(url, { headers });
console.log(res.status, await res.text());
process.exitCode = res.ok ? 0 : 1;
