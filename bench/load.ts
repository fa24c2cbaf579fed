import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Dispatcher } from 'undici';
import { cpuWindow, type CpuShare } from './cpu.js';

/** One measured run of a fixed-concurrency keep-alive load. Latencies in ms. */
export interface RunStats {
  /** Requests completed in the measured window. */
  requests: number;
  /** Every request that answered 200, warm-up included (what the origin must have seen). */
  completed: number;
  errors: number;
  seconds: number;
  rps: number;
  p50: number;
  p90: number;
  p99: number;
  mean: number;
  /** Payload bytes moved in the measured window (bodies). */
  bytes: number;
  firstError?: string;
  /** The sorted latencies (dropped from the JSON report). */
  samples?: Float64Array;
  /** Machine CPU during the window (see cpu.ts); foreignPct is other processes' load. */
  cpu?: CpuShare;
}

export interface LoadOptions {
  concurrency: number;
  warmupMs: number;
  durationMs: number;
  /** One request; resolves with the body bytes it moved. Must throw on a wrong answer. */
  once: () => Promise<number>;
  /** The run is aborted after this many errors (a misconfigured run must not spin). */
  maxErrors?: number;
  /** Processes whose CPU time in the measured window is reported (see cpu.ts). */
  roles?: Record<string, number>;
}

export function percentile(sorted: Float64Array | number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i]!;
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/**
 * `concurrency` workers, each issuing its next request when the previous one ended (closed loop).
 * Warm-up: every worker runs until warmupMs have passed and it has completed at least one request
 * (connections and TLS handshakes are made here, however slow the proxy), then all meet at a
 * barrier; the measured window starts there for everyone and lasts durationMs. Workers stop issuing
 * at the deadline and the run waits for the requests in flight (bounded by the clients' timeouts),
 * so the window is [barrier, last completion].
 */
export async function runLoad(o: LoadOptions): Promise<RunStats> {
  const warmEnd = performance.now() + o.warmupMs;
  const maxErrors = o.maxErrors ?? 20;
  let lat = new Float64Array(1 << 16);
  let n = 0;
  let completed = 0;
  let errors = 0;
  let bytes = 0;
  let firstError: string | undefined;
  const record = (ms: number): void => {
    if (n === lat.length) {
      const bigger = new Float64Array(lat.length * 2);
      bigger.set(lat);
      lat = bigger;
    }
    lat[n++] = ms;
  };
  const fail = async (e: unknown): Promise<void> => {
    errors++;
    firstError ??=
      e instanceof Error
        ? `${e.message}${e.cause ? ` (${String((e.cause as Error).message ?? e.cause)})` : ''}`
        : String(e);
    await sleep(10);
  };
  let arrived = 0;
  let release!: (t: number) => void;
  const barrier = new Promise<number>((r) => (release = r));
  let lastDone = 0;
  let cpu: ReturnType<typeof cpuWindow> | undefined;
  const worker = async (): Promise<void> => {
    let done = 0;
    while ((done === 0 || performance.now() < warmEnd) && errors < maxErrors) {
      try {
        await o.once();
        completed++;
        done++;
      } catch (e) {
        await fail(e);
      }
    }
    if (++arrived === o.concurrency) {
      cpu = cpuWindow(o.roles);
      release(performance.now());
    }
    const start = await barrier;
    const end = start + o.durationMs;
    for (;;) {
      const t0 = performance.now();
      if (t0 >= end || errors >= maxErrors) return;
      try {
        const moved = await o.once();
        const t1 = performance.now();
        completed++;
        record(t1 - t0);
        bytes += moved;
        if (t1 > lastDone) lastDone = t1;
      } catch (e) {
        await fail(e);
      }
    }
  };
  await Promise.all(Array.from({ length: o.concurrency }, worker));
  const share = cpu?.stop();
  const start = await barrier;
  const sorted = lat.slice(0, n).sort();
  const seconds = Math.max(1e-9, (Math.max(lastDone, start) - start) / 1000);
  let sum = 0;
  for (const x of sorted) sum += x;
  return {
    requests: n,
    completed,
    errors,
    seconds,
    rps: n / seconds,
    p50: percentile(sorted, 50),
    p90: percentile(sorted, 90),
    p99: percentile(sorted, 99),
    mean: n ? sum / n : NaN,
    bytes,
    ...(firstError !== undefined ? { firstError } : {}),
    samples: sorted,
    ...(share ? { cpu: share } : {}),
  };
}

function sumRoles(list: Array<Record<string, number>>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const r of list) for (const [k, v] of Object.entries(r)) out[k] = (out[k] ?? 0) + v;
  return out;
}

/** CPU microseconds per measured request of each named process (undefined without accounting). */
export function cpuPerRequest(s: RunStats): Record<string, number> | undefined {
  if (!s.cpu || s.requests === 0) return undefined;
  return Object.fromEntries(Object.entries(s.cpu.roleMs).map(([k, ms]) => [k, (ms * 1000) / s.requests]));
}

/** Merges the rounds of one column: req/s over the summed windows, percentiles over all samples. */
export function mergeRuns(runs: RunStats[]): RunStats {
  const requests = runs.reduce((a, r) => a + r.requests, 0);
  const completed = runs.reduce((a, r) => a + r.completed, 0);
  const seconds = runs.reduce((a, r) => a + r.seconds, 0);
  const bytes = runs.reduce((a, r) => a + r.bytes, 0);
  const errors = runs.reduce((a, r) => a + r.errors, 0);
  const all = new Float64Array(runs.reduce((a, r) => a + (r.samples?.length ?? 0), 0));
  let at = 0;
  for (const r of runs) {
    if (r.samples) all.set(r.samples, at);
    at += r.samples?.length ?? 0;
  }
  all.sort();
  let sum = 0;
  for (const x of all) sum += x;
  const firstError = runs.find((r) => r.firstError !== undefined)?.firstError;
  const cpuRuns = runs.filter((r) => r.cpu);
  const avg = (k: 'machinePct' | 'oursPct' | 'foreignPct'): number =>
    cpuRuns.reduce((a, r) => a + r.cpu![k], 0) / cpuRuns.length;
  return {
    requests,
    completed,
    errors,
    seconds,
    rps: requests / Math.max(1e-9, seconds),
    p50: percentile(all, 50),
    p90: percentile(all, 90),
    p99: percentile(all, 99),
    mean: all.length ? sum / all.length : NaN,
    bytes,
    ...(firstError !== undefined ? { firstError } : {}),
    ...(cpuRuns.length
      ? {
          cpu: {
            machinePct: avg('machinePct'),
            oursPct: avg('oursPct'),
            foreignPct: Math.max(...cpuRuns.map((r) => r.cpu!.foreignPct)),
            roleMs: sumRoles(cpuRuns.map((r) => r.cpu!.roleMs)),
          },
        }
      : {}),
  };
}

export interface RequestSpec {
  origin: string;
  path: string;
  method?: 'GET' | 'POST';
  headers: Record<string, string>;
  body?: Buffer;
}

/** A request that must answer 200; returns the body bytes (read fully, so keep-alive is kept). */
export async function request(d: Dispatcher, spec: RequestSpec): Promise<number> {
  const r = await d.request({
    origin: spec.origin,
    path: spec.path,
    method: spec.method ?? 'GET',
    headers: spec.headers,
    ...(spec.body ? { body: spec.body } : {}),
  });
  let n = 0;
  for await (const chunk of r.body) n += (chunk as Buffer).length;
  if (r.statusCode !== 200) {
    const code = r.headers['x-authsome-error'];
    throw new Error(`HTTP ${r.statusCode}${code ? ` ${String(code)}` : ''}`);
  }
  return n;
}
