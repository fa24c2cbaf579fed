// node:https (and axios, got, SDKs that take an `agent`/`httpsAgent`) through authsome with a small
// CONNECT-tunnel agent: no extra package. Node 20's https ignores HTTPS_PROXY (Node 24 honours
// NODE_USE_ENV_PROXY=1), so code that uses https.request directly needs an agent like this one.
//
//   authsome run -- node examples/node-https-agent.mjs https://api.github.com/user
//   axios:  axios.get(url, { httpsAgent: new ProxyTunnelAgent(process.env.HTTPS_PROXY), proxy: false })
import http from 'node:http';
import https from 'node:https';
import tls from 'node:tls';
import { pathToFileURL } from 'node:url';

export class ProxyTunnelAgent extends https.Agent {
  #proxy;
  #auth;
  constructor(proxyUrl, options = {}) {
    super({ keepAlive: true, ...options });
    this.#proxy = new URL(proxyUrl);
    const user = `${decodeURIComponent(this.#proxy.username)}:${decodeURIComponent(this.#proxy.password)}`;
    this.#auth = `Basic ${Buffer.from(user).toString('base64')}`;
  }

  // https.Agent calls this for every new socket; the callback form lets us CONNECT first.
  createConnection(options, callback) {
    const authority = `${options.host}:${options.port ?? 443}`;
    const req = http.request({
      host: this.#proxy.hostname,
      port: this.#proxy.port,
      method: 'CONNECT',
      path: authority,
      headers: { host: authority, 'proxy-authorization': this.#auth },
    });
    req.once('connect', (res, socket) => {
      if (res.statusCode !== 200) {
        socket.destroy();
        callback(
          new Error(
            `proxy CONNECT ${authority} failed: ${res.statusCode} ${res.headers['x-authsome-error'] ?? ''}`,
          ),
        );
        return;
      }
      // Default trust store + NODE_EXTRA_CA_CERTS (set by `authsome run`) verifies the intercepted host.
      callback(
        null,
        tls.connect({ socket, servername: options.servername ?? options.host, ALPNProtocols: ['http/1.1'] }),
      );
    });
    req.once('error', callback);
    req.end();
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const url = process.argv[2] ?? process.env.AUTHSOME_EXAMPLE_URL ?? 'https://api.github.com/user';
  const proxyUrl = process.env.HTTPS_PROXY ?? process.env.https_proxy;
  if (!proxyUrl) {
    console.error(
      'HTTPS_PROXY is not set: run this under `authsome run -- node examples/node-https-agent.mjs`',
    );
    process.exit(2);
  }
  const agent = new ProxyTunnelAgent(proxyUrl);
  const headers = process.env.AUTHSOME_CONNECTION
    ? { 'x-authsome-connection': process.env.AUTHSOME_CONNECTION }
    : {};
  https
    .get(url, { agent, headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (body += d));
      res.on('end', () => {
        console.log(res.statusCode, body);
        process.exitCode = (res.statusCode ?? 500) < 400 ? 0 : 1;
        agent.destroy();
      });
    })
    .on('error', (e) => {
      console.error(e.message);
      process.exitCode = 1;
      agent.destroy();
    });
}
