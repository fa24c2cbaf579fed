/**
 * Summarises a V8 .cpuprofile (from `node --cpu-prof`): self and inclusive time per function, and
 * self time per area (our src/ folders, undici, node internals, GC). Percentages are of the busy
 * time (all samples except "(idle)").
 *
 *   node dist/bench/profile-summary.js <file.cpuprofile> [top=25]
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { resolve } from 'node:path';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  /** Microseconds on the monotonic clock (the same clock as process.hrtime in any process). */
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface HotSpot {
  fn: string;
  where: string;
  area: string;
  selfMs: number;
  selfPct: number;
  totalMs: number;
  totalPct: number;
}

export interface ProfileSummary {
  /** The part of the profile summarised ('whole profile' when no window was given or it did not fit). */
  window: string;
  busyMs: number;
  idleMs: number;
  topSelf: HotSpot[];
  /** Inclusive time of functions in our own code (dist/src, dist/bench excluded). */
  topOwnInclusive: HotSpot[];
  /** Self time per area, native frames (writev, TLS, hashing…) charged to their nearest JS caller. */
  areas: Array<{ area: string; selfMs: number; selfPct: number }>;
}

function where(cf: CallFrame): string {
  const u = cf.url;
  const line = cf.lineNumber >= 0 ? `:${cf.lineNumber + 1}` : '';
  const m = /\/dist\/(src\/.+)\.js$/.exec(u);
  if (m) return `${m[1]}.ts(js${line})`;
  const nm = /node_modules\/(.+)$/.exec(u);
  if (nm) return `${nm[1]}${line}`;
  if (u.startsWith('node:')) return `${u}${line}`;
  return u ? `${u}${line}` : '(native)';
}

function area(cf: CallFrame): string {
  const u = cf.url;
  const m = /\/dist\/src\/([^/]+)\//.exec(u);
  if (m) return `src/${m[1]}`;
  if (/\/dist\/src\/[^/]+\.js$/.test(u)) return 'src (root)';
  const nm = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(u);
  if (nm) return nm[1]!;
  if (u.startsWith('node:internal/tls') || u.startsWith('node:tls') || u.startsWith('node:_tls'))
    return 'node tls';
  if (u.startsWith('node:_http') || u.startsWith('node:http') || u.startsWith('node:internal/http'))
    return 'node http';
  if (u.startsWith('node:internal/streams') || u.startsWith('node:stream')) return 'node streams';
  if (u.startsWith('node:net') || u.startsWith('node:internal/net') || u.includes('stream_base'))
    return 'node net';
  if (u.startsWith('node:internal/crypto') || u.startsWith('node:crypto')) return 'node crypto';
  if (u.startsWith('node:internal/modules') || u.startsWith('node:internal/vm')) return 'node module loading';
  if (
    u.startsWith('node:events') ||
    u.startsWith('node:internal/process/task_queues') ||
    u.startsWith('node:internal/timers') ||
    u.startsWith('node:internal/async_hooks')
  )
    return 'node events, ticks, timers';
  if (u.startsWith('node:internal/fs') || u.startsWith('node:fs')) return 'node fs';
  if (u.startsWith('node:')) return 'node other';
  const fn = cf.functionName;
  if (fn === '(garbage collector)') return 'GC';
  if (fn === '(program)') return '(program: native, unattributed)';
  if (fn === '(idle)') return '(idle)';
  return 'native/builtins';
}

/** `window`: [from, to] in microseconds of the monotonic clock (process.hrtime.bigint() / 1000n). */
export function summarizeProfile(path: string, top = 25, window?: [number, number]): ProfileSummary {
  const p = JSON.parse(readFileSync(path, 'utf8')) as CpuProfile;
  const fits =
    window !== undefined && window[0] >= p.startTime && window[1] <= p.endTime + 1e6 && window[0] < window[1];
  const [from, to] = fits ? window : [-Infinity, Infinity];
  const byId = new Map<number, ProfileNode>();
  const parent = new Map<number, number>();
  for (const n of p.nodes) byId.set(n.id, n);
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const key = (cf: CallFrame): string => `${cf.functionName || '(anonymous)'}\u0000${where(cf)}`;
  const self = new Map<string, number>();
  const total = new Map<string, number>();
  const areas = new Map<string, number>();
  const frames = new Map<string, CallFrame>();
  let idle = 0;
  let busy = 0;
  let at = p.startTime;
  for (let i = 0; i < p.samples.length; i++) {
    at += p.timeDeltas[i] ?? 0;
    if (at < from || at > to) continue;
    const dt = (p.timeDeltas[i + 1] ?? p.timeDeltas[i] ?? 0) / 1000;
    const node = byId.get(p.samples[i]!);
    if (!node) continue;
    if (node.callFrame.functionName === '(idle)') {
      idle += dt;
      continue;
    }
    busy += dt;
    const k = key(node.callFrame);
    frames.set(k, node.callFrame);
    self.set(k, (self.get(k) ?? 0) + dt);
    let owner: number | undefined = node.id;
    while (
      owner !== undefined &&
      !byId.get(owner)!.callFrame.url &&
      parent.get(owner) !== undefined &&
      !/^\((program|garbage collector)\)$/.test(byId.get(owner)!.callFrame.functionName)
    )
      owner = parent.get(owner);
    const ownerFrame =
      owner !== undefined && byId.get(owner)!.callFrame.url ? byId.get(owner)!.callFrame : node.callFrame;
    const a = area(ownerFrame);
    areas.set(a, (areas.get(a) ?? 0) + dt);
    const seen = new Set<string>();
    for (let id: number | undefined = node.id; id !== undefined; id = parent.get(id)) {
      const cf = byId.get(id)!.callFrame;
      const kk = key(cf);
      if (seen.has(kk)) continue;
      seen.add(kk);
      frames.set(kk, cf);
      total.set(kk, (total.get(kk) ?? 0) + dt);
    }
  }
  const spot = (k: string): HotSpot => {
    const cf = frames.get(k)!;
    const s = self.get(k) ?? 0;
    const t = total.get(k) ?? 0;
    return {
      fn: cf.functionName || '(anonymous)',
      where: where(cf),
      area: area(cf),
      selfMs: s,
      selfPct: (100 * s) / busy,
      totalMs: t,
      totalPct: (100 * t) / busy,
    };
  };
  const topSelf = [...self.keys()]
    .sort((a, b) => self.get(b)! - self.get(a)!)
    .slice(0, top)
    .map(spot);
  const own = [...total.keys()].filter((k) => /\/dist\/src\//.test(frames.get(k)!.url));
  const topOwnInclusive = own
    .sort((a, b) => total.get(b)! - total.get(a)!)
    .slice(0, top)
    .map(spot);
  return {
    window: fits ? `${((to - from) / 1e6).toFixed(1)} s window of the load` : 'whole profile',
    busyMs: busy,
    idleMs: idle,
    topSelf,
    topOwnInclusive,
    areas: [...areas.entries()]
      .sort((a, b) => b[1] - a[1])
      .map(([a, ms]) => ({ area: a, selfMs: ms, selfPct: (100 * ms) / busy })),
  };
}

export function formatSummary(s: ProfileSummary): string {
  const pct = (x: number): string => `${x.toFixed(1).padStart(5)}%`;
  const lines = [
    `${s.window}: busy ${(s.busyMs / 1000).toFixed(2)} s, idle ${(s.idleMs / 1000).toFixed(2)} s (percentages are of busy time)`,
    '',
    'self time by area (native frames charged to their nearest JS caller):',
    ...s.areas.filter((a) => a.selfPct >= 0.3).map((a) => `  ${pct(a.selfPct)}  ${a.area}`),
    '',
    'top functions by self time:',
    ...s.topSelf.map((h) => `  ${pct(h.selfPct)} self ${pct(h.totalPct)} total  ${h.fn}  ${h.where}`),
    '',
    'our code (src/) by inclusive time:',
    ...s.topOwnInclusive.map((h) => `  ${pct(h.totalPct)} total ${pct(h.selfPct)} self  ${h.fn}  ${h.where}`),
  ];
  return lines.join('\n');
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const file = process.argv[2];
  if (!file) {
    console.error('usage: node dist/bench/profile-summary.js <file.cpuprofile> [top]');
    process.exit(2);
  }
  console.log(formatSummary(summarizeProfile(file, Number(process.argv[3] ?? 25))));
}
