import {
  alternate,
  client,
  medianRatio,
  originStats,
  type Client,
  type Column,
  type Scheme,
} from './clients.js';
import { cpuPerRequest, median, request, runLoad, type RunStats } from './load.js';
import type { Mitm } from './mitm.js';
import { HTTP_HOST, log, MAIN_HOST, TUNNEL_HOST, type Bench } from './setup.js';

export interface Cfg {
  rounds: number;
  warmMs: number;
  durMs: number;
  bodyMs: number;
  rssMs: number;
  auditRounds: number;
  /** Measured window of each durable-audit run. */
  auditMs: number;
  auditC1: boolean;
  runSamples: number;
  /** The tunnel and mitmproxy columns at every concurrency (else at c=16 only). */
  extrasEverywhere: boolean;
  newHosts: number;
  held: number;
  profMs: number;
}

export const CONCURRENCY = [1, 16, 64];

/** One injected HTTPS request and one plain HTTP request, before anything is measured. */
export async function sanity(b: Bench): Promise<void> {
  for (const [scheme, host] of [
    ['https', MAIN_HOST],
    ['http', HTTP_HOST],
  ] as const) {
    const { d, spec } = client(b, scheme, 'authsome', host, '/json');
    await originStats(b, true);
    await request(d, spec);
    const os = await originStats(b, false);
    await d.close();
    if (scheme === 'https' && os.ok !== 1)
      throw new Error(`the origin did not see the injected credential: ${JSON.stringify(os)}`);
    if (scheme === 'http' && os.leaked !== 0) throw new Error('a credential went over plain http');
  }
}

/** Gives the daemon's JIT the hot path before the first measurement. */
export async function jitWarm(b: Bench, ms: number, proxyPort?: number): Promise<void> {
  const { d, spec } = client(b, 'https', 'authsome', MAIN_HOST, '/json', proxyPort ? { proxyPort } : {});
  await runLoad({ concurrency: 8, warmupMs: 0, durationMs: ms, once: () => request(d, spec) });
  await d.close();
}

export interface FirstRequest {
  hosts: Array<{
    host: string;
    wildcard: boolean;
    coldMs: number;
    warmMs: number;
    extraMs: number;
    directFreshMs: number;
  }>;
  medianExtraMs: number;
  maxExtraMs: number;
  /** Exact hosts of bundled providers (the daemon may have minted their leaves at start). */
  exactMedianExtraMs: number;
  /** Sub-domains of a wildcard host: the leaf is minted on the first request. */
  wildcardMedianExtraMs: number;
}

/**
 * Each measurement is a fresh client connection (CONNECT + TLS + one request): to a host the daemon
 * has never seen (leaf minted, new upstream pool and TLS connection), and just before it to the warm
 * host. The difference is what a new host costs.
 */
export async function firstRequest(b: Bench): Promise<FirstRequest> {
  const once = async (c: Client): Promise<number> => {
    const t0 = performance.now();
    await request(c.d, c.spec);
    const ms = performance.now() - t0;
    await c.d.close();
    return ms;
  };
  const hosts: FirstRequest['hosts'] = [];
  await originStats(b, true);
  for (const p of b.newHosts) {
    const path = `${p.pathPrefix}/json`;
    const warmMs = await once(client(b, 'https', 'authsome', MAIN_HOST, '/json'));
    const coldMs = await once(client(b, 'https', 'authsome', p.host, path));
    const directFreshMs = await once(client(b, 'https', 'direct', p.host, path));
    hosts.push({
      host: p.host,
      wildcard: p.wildcard,
      coldMs,
      warmMs,
      extraMs: coldMs - warmMs,
      directFreshMs,
    });
  }
  const os = await originStats(b, false);
  if (os.ok !== b.newHosts.length * 3 || os.missing || os.wrong)
    b.problems.push(`first request: injection check failed ${JSON.stringify(os)}`);
  const extras = (pick: (h: FirstRequest['hosts'][number]) => boolean): number[] =>
    hosts.filter(pick).map((h) => h.extraMs);
  return {
    hosts,
    medianExtraMs: median(extras(() => true)),
    maxExtraMs: Math.max(...extras(() => true)),
    exactMedianExtraMs: median(extras((h) => !h.wildcard)),
    wildcardMedianExtraMs: median(extras((h) => h.wildcard)),
  };
}

export interface MatrixRow {
  concurrency: number;
  columns: Record<string, RunStats>;
  /** authsome / direct req/s: median of the per-round ratios. */
  ratio: number;
  addedP50Ms: number;
  mitmRatio?: number;
  authsomeOverMitm?: number;
  /** A plain CONNECT tunnel through the same daemon (no interception): the ceiling for the HTTPS path. */
  tunnelRatio?: number;
  /**
   * Per column, CPU microseconds per request of the load generator (client), the origin and the proxy.
   * Unlike req/s this barely moves with other load on the machine; with every process CPU-bound on
   * the same cores, req/s ratios follow the ratios of the summed CPU per request.
   */
  cpuUsPerRequest: Record<string, Record<string, number>>;
  roundRatios: Record<string, number[]>;
}

/** direct, authsome and (for https) the plain CONNECT tunnel through the same daemon. */
export function baseColumns(b: Bench, scheme: Scheme): Column[] {
  const host = scheme === 'https' ? MAIN_HOST : HTTP_HOST;
  const cols: Column[] = [
    { name: 'direct', make: () => client(b, scheme, 'direct', host, '/json') },
    { name: 'authsome', make: () => client(b, scheme, 'authsome', host, '/json'), proxyPid: b.daemon.pid },
  ];
  if (scheme === 'https')
    cols.push({
      name: 'authsome-tunnel',
      make: () => client(b, scheme, 'authsome-tunnel', TUNNEL_HOST, '/json'),
      proxyPid: b.daemon.pid,
    });
  return cols;
}

export async function matrix(
  b: Bench,
  cfg: Cfg,
  scheme: Scheme,
  mitm: Mitm | undefined,
): Promise<MatrixRow[]> {
  const host = scheme === 'https' ? MAIN_HOST : HTTP_HOST;
  const cols = baseColumns(b, scheme);
  if (mitm && scheme === 'https')
    cols.push({
      name: 'mitmproxy',
      make: () => client(b, scheme, 'mitmproxy', host, '/json', { mitm }),
      proxyPid: mitm.pid,
    });
  const rows: MatrixRow[] = [];
  for (const c of CONCURRENCY) {
    log(`bench: ${scheme} c=${c}`);
    const here = cfg.extrasEverywhere || c === 16 ? cols : cols.slice(0, 2);
    const r = await alternate(b, scheme.toUpperCase(), scheme, here, c, cfg.rounds, cfg.warmMs, cfg.durMs);
    const a = r.columns['authsome']!;
    const m = r.columns['mitmproxy'];
    const ratio = medianRatio(r, 'authsome');
    const mitmRatio = m ? medianRatio(r, 'mitmproxy') : undefined;
    rows.push({
      concurrency: c,
      columns: r.columns,
      ratio,
      addedP50Ms: a.p50 - r.columns['direct']!.p50,
      ...(mitmRatio !== undefined ? { mitmRatio, authsomeOverMitm: ratio / mitmRatio } : {}),
      ...(r.columns['authsome-tunnel'] ? { tunnelRatio: medianRatio(r, 'authsome-tunnel') } : {}),
      cpuUsPerRequest: Object.fromEntries(
        Object.entries(r.columns).map(([k, s]) => [k, cpuPerRequest(s) ?? {}]),
      ),
      roundRatios: r.roundRatios,
    });
  }
  return rows;
}

export interface SseStats {
  /** Milliseconds from the origin writing an event to the client reading it (median and max). */
  lagMedianMs: number;
  lagMaxMs: number;
  events: number;
}
export interface SseResult {
  direct: SseStats;
  authsome: SseStats;
}

/**
 * Events must arrive as the origin sends them, not when the response ends: each event carries the
 * origin's send time (same machine clock), and the lag to its arrival is measured on a connection
 * that is already up. 3 streams of 5 events, 50 ms apart, per column.
 */
export async function sse(b: Bench): Promise<SseResult> {
  const n = 5;
  const one = async (via: 'direct' | 'authsome'): Promise<SseStats> => {
    const lags: number[] = [];
    let events = 0;
    const c = client(b, 'https', via, MAIN_HOST, `/sse?n=${n}&interval=50`);
    await request(c.d, { ...c.spec, path: '/json' });
    for (let round = 0; round < 3; round++) {
      const r = await c.d.request({ ...c.spec, method: 'GET' });
      let seen = 0;
      for await (const chunk of r.body) {
        const now = performance.timeOrigin + performance.now();
        for (const m of (chunk as Buffer).toString().matchAll(/"t":([\d.]+)/g)) {
          lags.push(now - Number(m[1]));
          seen++;
        }
      }
      if (seen !== n) b.problems.push(`SSE via ${via}: ${seen} of ${n} events`);
      events += seen;
    }
    await c.d.close();
    return { lagMedianMs: median(lags), lagMaxMs: Math.max(...lags), events };
  };
  return { direct: await one('direct'), authsome: await one('authsome') };
}
