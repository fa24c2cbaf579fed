import { Pool, ProxyAgent, request as undiciRequest, type Dispatcher } from 'undici';
import { median, mergeRuns, request, runLoad, type RequestSpec, type RunStats } from './load.js';
import type { Mitm } from './mitm.js';
import type { OriginStats } from './origin.js';
import { LARGE, type Bench } from './setup.js';

export type Scheme = 'http' | 'https';
export type Via =
  'direct' | 'authsome' | 'mitmproxy' | 'authsome-tmpfs' | 'authsome-tunnel' | 'reference-mitm';

export interface Client {
  d: Dispatcher;
  spec: RequestSpec;
}

const COMMON = {
  keepAliveTimeout: 30_000,
  keepAliveMaxTimeout: 60_000,
  headersTimeout: 30_000,
  bodyTimeout: 60_000,
};

export async function originStats(b: Bench, reset: boolean): Promise<OriginStats> {
  const r = await undiciRequest(`http://127.0.0.1:${b.origin.httpPort}/__stats${reset ? '?reset=1' : ''}`);
  return (await r.body.json()) as OriginStats;
}

/**
 * A fresh keep-alive client for one column. direct: undici Pool straight to the origin, sending the
 * credential itself (as the SDK would without authsome). authsome / mitmproxy: undici ProxyAgent
 * (CONNECT, then TLS to the proxy's leaf) for https; for http an undici Pool to the proxy sending
 * absolute-form requests (what ProxyAgent with proxyTunnel: false does).
 */
export function client(
  b: Bench,
  scheme: Scheme,
  via: Via,
  host: string,
  path: string,
  opts: { proxyPort?: number; mitm?: Mitm } = {},
): Client {
  const p = b.providers.find((x) => x.host === host);
  const proxyPort = opts.proxyPort ?? b.daemon.proxyPort;
  if (scheme === 'http') {
    if (via === 'reference-mitm') {
      const o = `http://127.0.0.1:${opts.proxyPort}`;
      return {
        d: new Pool(o, COMMON),
        spec: { origin: o, path: `http://${host}${path}`, headers: { host } },
      };
    }
    if (via === 'direct') {
      const o = `http://127.0.0.1:${b.origin.httpPort}`;
      return { d: new Pool(o, COMMON), spec: { origin: o, path, headers: { host } } };
    }
    const o = `http://127.0.0.1:${proxyPort}`;
    return {
      d: new Pool(o, COMMON),
      spec: { origin: o, path: `http://${host}${path}`, headers: { host, 'proxy-authorization': b.basic } },
    };
  }
  if (via === 'direct') {
    const o = `https://127.0.0.1:${b.origin.httpsPort}`;
    const d = new Pool(o, { ...COMMON, connect: { ca: b.certs.caPem, servername: host } });
    return { d, spec: { origin: o, path, headers: { host, ...(p ? { [p.header]: p.value } : {}) } } };
  }
  if (via === 'authsome-tunnel') {
    // A host no provider covers: a plain CONNECT tunnel, TLS end to end with the origin.
    const d = new ProxyAgent({
      ...COMMON,
      uri: `http://127.0.0.1:${proxyPort}`,
      token: b.basic,
      requestTls: { ca: b.certs.caPem },
    });
    return { d, spec: { origin: `https://${host}`, path, headers: {} } };
  }
  if (via === 'reference-mitm') {
    const d = new ProxyAgent({
      ...COMMON,
      uri: `http://127.0.0.1:${opts.proxyPort}`,
      requestTls: { ca: b.certs.caPem },
    });
    return { d, spec: { origin: `https://${host}`, path, headers: {} } };
  }
  if (via === 'mitmproxy') {
    const m = opts.mitm!;
    const d = new ProxyAgent({ ...COMMON, uri: `http://127.0.0.1:${m.port}`, requestTls: { ca: m.caPem } });
    return { d, spec: { origin: `https://${host}`, path, headers: {} } };
  }
  const d = new ProxyAgent({
    ...COMMON,
    uri: `http://127.0.0.1:${proxyPort}`,
    token: b.basic,
    requestTls: { ca: b.authsomeCa },
  });
  return { d, spec: { origin: `https://${host}`, path, headers: {} } };
}

/**
 * What the origin must have seen: every request that completed, each HTTPS request to a provider
 * host with exactly the credential, and no plain-HTTP request carrying any secret.
 */
function verify(b: Bench, label: string, scheme: Scheme, via: Via, os: OriginStats, s: RunStats): void {
  const injected = scheme === 'https' && via !== 'authsome-tunnel';
  const ok =
    os.requests === s.completed &&
    os.missing === 0 &&
    os.wrong === 0 &&
    os.leaked === 0 &&
    (!injected || os.ok === s.completed);
  if (!ok)
    b.problems.push(
      `${label}: injection check failed (origin saw ${JSON.stringify(os)}, client completed ${s.completed})`,
    );
  if (s.errors > 0) b.problems.push(`${label}: ${s.errors} failed requests, first: ${s.firstError}`);
}

export interface Column {
  name: Via;
  make: () => Client;
  /** The proxy process of this column (its CPU per request is reported). */
  proxyPid?: number;
}

export type Body = 'download' | 'upload';

/** One run of one column, checked against the origin's counters. */
export async function measure(
  b: Bench,
  label: string,
  scheme: Scheme,
  col: Column,
  c: number,
  warmMs: number,
  durMs: number,
  body?: Body,
): Promise<RunStats> {
  const { d, spec } = col.make();
  const s0: RequestSpec =
    body === 'upload'
      ? {
          ...spec,
          method: 'POST',
          body: Buffer.alloc(LARGE, 0x62),
          headers: { ...spec.headers, 'content-type': 'application/octet-stream' },
        }
      : spec;
  await originStats(b, true);
  const s = await runLoad({
    concurrency: c,
    warmupMs: warmMs,
    durationMs: durMs,
    roles: { client: process.pid, origin: b.origin.pid, ...(col.proxyPid ? { proxy: col.proxyPid } : {}) },
    once: body === 'upload' ? async () => (await request(d, s0), LARGE) : () => request(d, s0),
  });
  verify(b, `${label} ${col.name} c=${c}`, scheme, col.name, await originStats(b, false), s);
  await d.close().catch(() => undefined);
  return s;
}

export interface Alternation {
  /** Each column's rounds merged (req/s over the summed windows, percentiles over all samples). */
  columns: Record<string, RunStats>;
  /** Per round, each column's req/s over the first column's (direct): the median is the robust ratio. */
  roundRatios: Record<string, number[]>;
}

/** The columns in alternation (A, B, A, B …), `rounds` times. */
export async function alternate(
  b: Bench,
  label: string,
  scheme: Scheme,
  cols: Column[],
  c: number,
  rounds: number,
  warmMs: number,
  durMs: number,
  body?: Body,
): Promise<Alternation> {
  const runs: Record<string, RunStats[]> = {};
  const roundRatios: Record<string, number[]> = {};
  for (let r = 0; r < rounds; r++) {
    const round: RunStats[] = [];
    for (const col of cols) {
      const s = await measure(b, label, scheme, col, c, warmMs, durMs, body);
      (runs[col.name] ??= []).push(s);
      round.push(s);
    }
    const base = body ? round[0]!.bytes / round[0]!.seconds : round[0]!.rps;
    cols.slice(1).forEach((col, i) => {
      const s = round[i + 1]!;
      (roundRatios[col.name] ??= []).push((body ? s.bytes / s.seconds : s.rps) / base);
    });
  }
  return {
    columns: Object.fromEntries(Object.entries(runs).map(([k, v]) => [k, mergeRuns(v)])),
    roundRatios,
  };
}

export function medianRatio(a: Alternation, col: string): number {
  return median(a.roundRatios[col] ?? [NaN]);
}
