import { readFileSync } from 'node:fs';
import { livePids } from './children.js';

/**
 * CPU accounting for a measured window, from /proc: how busy the whole machine was, how much of it
 * was this bench's own processes (load generator, origin, daemons, mitmdump), and the rest, which is
 * somebody else's load skewing the numbers (reported next to them, never subtracted).
 */
function machine(): { busy: number; total: number } {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const total = f.slice(0, 8).reduce((a, b) => a + b, 0);
  const idle = (f[3] ?? 0) + (f[4] ?? 0);
  return { busy: total - idle, total };
}

/** utime + stime of a process, in clock ticks (USER_HZ, 100 per second on Linux). */
export function procTicks(pid: number): number {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    // fields 14 and 15 (utime, stime); after the ")" the list starts at field 3.
    return Number(f[11]) + Number(f[12]);
  } catch {
    return 0;
  }
}

export interface CpuShare {
  /** Percent of all cores busy during the window. */
  machinePct: number;
  /** Percent of all cores used by this bench's processes. */
  oursPct: number;
  /** The difference: other processes on the machine. */
  foreignPct: number;
  /** CPU milliseconds each named process used in the window (10 ms resolution). */
  roleMs: Record<string, number>;
}

/** Starts accounting; `roles` names the processes whose own CPU time is reported (bench, origin, daemon…). */
export function cpuWindow(roles: Record<string, number> = {}): { stop(): CpuShare } {
  const pids = [process.pid, ...livePids()];
  const m0 = machine();
  const p0 = new Map(pids.map((p) => [p, procTicks(p)]));
  const r0 = Object.entries(roles).map(([role, pid]) => [role, pid, procTicks(pid)] as const);
  return {
    stop() {
      const m1 = machine();
      let ours = 0;
      for (const [pid, t] of p0) ours += Math.max(0, procTicks(pid) - t);
      const total = Math.max(1, m1.total - m0.total);
      const machinePct = (100 * (m1.busy - m0.busy)) / total;
      const oursPct = Math.min(machinePct, (100 * ours) / total);
      const roleMs = Object.fromEntries(
        r0.map(([role, pid, t]) => [role, Math.max(0, procTicks(pid) - t) * 10]),
      );
      return { machinePct, oursPct, foreignPct: Math.max(0, machinePct - oursPct), roleMs };
    },
  };
}

/**
 * Waits until a process is (nearly) idle: the daemon mints the bundled providers' leaves in the
 * background, starting a moment after it is up, and no measurement should overlap that. Needs
 * three quiet 300 ms windows in a row, and at least `minMs` (the mint starts on a timer); bounded
 * by maxMs.
 */
export async function settle(pid: number, minMs = 1_000, maxMs = 20_000, idlePct = 5): Promise<number> {
  const t0 = performance.now();
  let quiet = 0;
  while (performance.now() - t0 < maxMs) {
    const a = procTicks(pid);
    await new Promise((r) => setTimeout(r, 300));
    quiet = ((procTicks(pid) - a) / 100 / 0.3) * 100 < idlePct ? quiet + 1 : 0;
    if (quiet >= 3 && performance.now() - t0 >= minMs) break;
  }
  return performance.now() - t0;
}
