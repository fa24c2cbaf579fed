/**
 * `node dist/bench/load-cli.js <url> [-c 16] [-d 10] [-w 1] [--json]`: the bench's closed-loop load
 * generator on its own, pointed at any URL, through the proxy the environment names (HTTPS_PROXY /
 * HTTP_PROXY, as `eval "$(authsome proxy env)"` sets them; NODE_EXTRA_CA_CERTS makes Node trust the
 * local CA), or straight to the URL with --direct. For load-testing a running daemon by hand; see
 * docs/performance.md, "Load-testing a running daemon".
 */
import { Agent, ProxyAgent, request, type Dispatcher } from 'undici';
import { runLoad } from './load.js';

const USAGE =
  'usage: node dist/bench/load-cli.js <url> [-c concurrency=16] [-d seconds=10] [-w warmup seconds=1] [--direct] [--json]';

function fail(message: string): never {
  console.error(`load-cli: ${message}\n${USAGE}`);
  process.exit(2);
}

function parse(argv: string[]): {
  url: URL;
  concurrency: number;
  seconds: number;
  warmup: number;
  direct: boolean;
  json: boolean;
} {
  let url: URL | undefined;
  const num = new Map<string, number>([
    ['-c', 16],
    ['-d', 10],
    ['-w', 1],
  ]);
  let direct = false;
  let json = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--direct') direct = true;
    else if (a === '--json') json = true;
    else if (num.has(a)) {
      const v = Number(argv[++i]);
      if (!Number.isFinite(v) || v <= 0) fail(`${a} needs a positive number`);
      num.set(a, v);
    } else if (!a.startsWith('-') && url === undefined) {
      try {
        url = new URL(a);
      } catch {
        fail(`not a URL: ${a}`);
      }
    } else fail(`unknown argument ${a}`);
  }
  if (!url || !/^https?:$/.test(url.protocol)) fail('give one http:// or https:// URL');
  return {
    url,
    concurrency: Math.floor(num.get('-c')!),
    seconds: num.get('-d')!,
    warmup: num.get('-w')!,
    direct,
    json,
  };
}

/** The proxy from the environment; its userinfo (profile:token) becomes Proxy-Authorization. */
function proxyDispatcher(url: URL, connections: number): Dispatcher {
  const raw =
    url.protocol === 'https:'
      ? (process.env['HTTPS_PROXY'] ?? process.env['https_proxy'])
      : (process.env['HTTP_PROXY'] ?? process.env['http_proxy']);
  if (!raw)
    fail(
      'no HTTPS_PROXY / HTTP_PROXY in the environment: run `eval "$(authsome proxy env)"` first, or pass --direct',
    );
  const proxy = new URL(raw);
  const token =
    proxy.username || proxy.password
      ? `Basic ${Buffer.from(`${decodeURIComponent(proxy.username)}:${decodeURIComponent(proxy.password)}`).toString('base64')}`
      : undefined;
  proxy.username = '';
  proxy.password = '';
  return new ProxyAgent({ uri: proxy.href, ...(token ? { token } : {}), connections });
}

const o = parse(process.argv.slice(2));
const dispatcher = o.direct
  ? new Agent({ connections: o.concurrency })
  : proxyDispatcher(o.url, o.concurrency);
const once = async (): Promise<number> => {
  const r = await request(o.url, { dispatcher });
  let bytes = 0;
  for await (const chunk of r.body) bytes += (chunk as Buffer).length;
  if (r.statusCode >= 400) throw new Error(`HTTP ${r.statusCode}`);
  return bytes;
};
const s = await runLoad({
  concurrency: o.concurrency,
  warmupMs: o.warmup * 1000,
  durationMs: o.seconds * 1000,
  once,
});
await dispatcher.close().catch(() => undefined);
const out = {
  url: o.url.href,
  via: o.direct ? 'direct' : 'proxy',
  concurrency: o.concurrency,
  seconds: Number(s.seconds.toFixed(2)),
  requests: s.requests,
  errors: s.errors,
  rps: Math.round(s.rps),
  p50Ms: Number(s.p50.toFixed(2)),
  p99Ms: Number(s.p99.toFixed(2)),
  ...(s.firstError !== undefined ? { firstError: s.firstError } : {}),
};
if (o.json) console.log(JSON.stringify(out));
else
  console.log(
    `${out.via} ${out.url} c=${out.concurrency}: ${out.rps} req/s, p50 ${out.p50Ms} ms, p99 ${out.p99Ms} ms, ` +
      `${out.requests} requests in ${out.seconds} s, ${out.errors} errors${out.firstError ? ` (first: ${out.firstError})` : ''}`,
  );
process.exitCode = s.errors > 0 || s.requests === 0 ? 1 : 0;
