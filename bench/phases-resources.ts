import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { trackDir } from './children.js';
import { settle } from './cpu.js';
import { alternate, client, measure, medianRatio, originStats, type Column } from './clients.js';
import { cli, cliOk, memOf, sampleRss, serveDaemon } from './daemon.js';
import { holdConnections, type HeldResult } from './held.js';
import { median, type RunStats } from './load.js';
import { jitWarm, type Cfg } from './phases.js';
import { log, MAIN_HOST, type Bench } from './setup.js';

/** The phases about bytes and resources: big bodies and RSS, durable audit, held connections, `run`. */

export interface Transfer {
  direct: RunStats;
  authsome: RunStats;
  directMiBs: number;
  authsomeMiBs: number;
  ratio: number;
}
export interface RssPhase {
  baselineMB: number;
  peakMB: number;
  growthMB: number;
  MiBs: number;
}
export interface Bodies {
  download: Transfer;
  upload: Transfer;
  rssC8: { download: RssPhase; upload: RssPhase; growthMB: number; hwmMB: number };
}

const mibs = (s: RunStats): number => s.bytes / s.seconds / 1048576;

export async function bodies(b: Bench, cfg: Cfg): Promise<Bodies> {
  const cols = (path: string): Column[] => [
    { name: 'direct', make: () => client(b, 'https', 'direct', MAIN_HOST, path) },
    {
      name: 'authsome',
      make: () => client(b, 'https', 'authsome', MAIN_HOST, path),
      proxyPid: b.daemon.pid,
    },
  ];
  const transfer = async (kind: 'download' | 'upload'): Promise<Transfer> => {
    const r = await alternate(
      b,
      kind,
      'https',
      cols(kind === 'download' ? '/large' : '/upload'),
      1,
      2,
      200,
      cfg.bodyMs / 2,
      kind,
    );
    const d = r.columns['direct']!;
    const a = r.columns['authsome']!;
    return {
      direct: d,
      authsome: a,
      directMiBs: mibs(d),
      authsomeMiBs: mibs(a),
      ratio: medianRatio(r, 'authsome'),
    };
  };
  log('bench: 10 MiB download/upload c=1');
  const download = await transfer('download');
  const upload = await transfer('upload');
  log('bench: daemon RSS with 10 MiB bodies at c=8');
  const rss = async (kind: 'download' | 'upload'): Promise<RssPhase> => {
    await sleep(500);
    const baselineMB = memOf(b.daemon.pid).rssMB;
    const sampler = sampleRss(b.daemon.pid, 20);
    const s = await measure(
      b,
      `rss ${kind}`,
      'https',
      cols(kind === 'download' ? '/large' : '/upload')[1]!,
      8,
      0,
      cfg.rssMs,
      kind,
    );
    const { peakMB } = sampler.stop();
    return { baselineMB, peakMB, growthMB: peakMB - baselineMB, MiBs: mibs(s) };
  };
  const d8 = await rss('download');
  const u8 = await rss('upload');
  return {
    download,
    upload,
    rssC8: {
      download: d8,
      upload: u8,
      growthMB: Math.max(d8.growthMB, u8.growthMB),
      hwmMB: memOf(b.daemon.pid).hwmMB,
    },
  };
}

export interface AuditCost {
  note: string;
  diskFs: string;
  c16: { columns: Record<string, RunStats>; cost: number; roundRatios: Record<string, number[]> };
  c1?: {
    columns: Record<string, RunStats>;
    cost: number;
    addedP50Ms: number;
    roundRatios: Record<string, number[]>;
  };
}

/**
 * The daemon has no setting to move audit.log or to skip its fdatasync, so this compares the whole
 * AUTHSOME_HOME on disk (each group commit writes O_DSYNC: it reaches the device) with a copy of the
 * same home on tmpfs (/dev/shm: the sync returns at once). Both sides are fresh daemons serving fresh
 * copies (the main daemon has been through the other phases: a bigger heap, more pools), up at the
 * same time, alternating. cost = 1 - disk/tmpfs, from the median of per-round ratios.
 */
export async function auditCost(b: Bench, cfg: Cfg): Promise<AuditCost> {
  const shmDir = mkdtempSync('/dev/shm/authsome-bench-');
  trackDir(shmDir);
  const shmHome = join(shmDir, 'home');
  const diskCopy = join(dirname(b.diskHome), 'home-audit');
  execFileSync('cp', ['-a', b.diskHome, shmHome]);
  execFileSync('cp', ['-a', b.diskHome, diskCopy]);
  const shm = await serveDaemon(b.envFor(shmHome));
  const disk = await serveDaemon(b.envFor(diskCopy)).catch(async (e: unknown) => {
    await shm.stop();
    throw e;
  });
  try {
    for (const d of [shm, disk]) {
      await settle(d.pid);
      await jitWarm(b, 3000, d.proxyPort);
    }
    const cols: Column[] = [
      { name: 'direct', make: () => client(b, 'https', 'direct', MAIN_HOST, '/json') },
      {
        name: 'authsome',
        make: () => client(b, 'https', 'authsome', MAIN_HOST, '/json', { proxyPort: disk.proxyPort }),
        proxyPid: disk.pid,
      },
      {
        name: 'authsome-tmpfs',
        make: () => client(b, 'https', 'authsome', MAIN_HOST, '/json', { proxyPort: shm.proxyPort }),
        proxyPid: shm.pid,
      },
    ];
    const cost = (r: { roundRatios: Record<string, number[]> }): number => {
      const disk = r.roundRatios['authsome'] ?? [];
      const tmp = r.roundRatios['authsome-tmpfs'] ?? [];
      return 1 - median(disk.map((x, i) => x / tmp[i]!));
    };
    log('bench: durable audit, c=16');
    const c16 = await alternate(b, 'audit', 'https', cols, 16, cfg.auditRounds, cfg.warmMs, cfg.auditMs);
    const out: AuditCost = {
      note: 'AUTHSOME_HOME on disk (audit fdatasync reaches the device) vs the same home copied to /dev/shm (tmpfs)',
      diskFs: b.homeFs,
      c16: { columns: c16.columns, cost: cost(c16), roundRatios: c16.roundRatios },
    };
    if (cfg.auditC1) {
      log('bench: durable audit, c=1');
      const c1 = await alternate(b, 'audit', 'https', cols, 1, cfg.auditRounds, cfg.warmMs, cfg.auditMs);
      out.c1 = {
        columns: c1.columns,
        cost: cost(c1),
        addedP50Ms: c1.columns['authsome']!.p50 - c1.columns['authsome-tmpfs']!.p50,
        roundRatios: c1.roundRatios,
      };
    }
    return out;
  } finally {
    await Promise.all([shm.stop(), disk.stop()]);
  }
}

export async function held(b: Bench, cfg: Cfg): Promise<HeldResult> {
  log(`bench: ${cfg.held} held connections`);
  await originStats(b, true);
  const r = await holdConnections({
    proxyPort: b.daemon.proxyPort,
    basic: b.basic,
    host: MAIN_HOST,
    caPem: b.authsomeCa,
    count: cfg.held,
    parallel: 100,
    pid: b.daemon.pid,
  });
  const os = await originStats(b, false);
  const answered = r.opened + r.secondOk;
  if (os.ok !== answered || os.missing || os.wrong)
    b.problems.push(`held connections: injection check failed ${JSON.stringify(os)} vs ${answered} answered`);
  if (r.openFailed || r.secondFailed)
    b.problems.push(`held connections: ${r.openFailed} + ${r.secondFailed} failed (${r.firstError})`);
  return r;
}

export interface RunTrue {
  samples: number[];
  medianMs: number;
  minMs: number;
  nodeBaselineMs: number;
}

/** `authsome run -- true` against the warm daemon: mint a session, run, revoke. */
export async function runTrue(b: Bench, cfg: Cfg): Promise<RunTrue> {
  log('bench: authsome run -- true');
  await cliOk(b.env, ['run', '--', 'true']);
  const samples: number[] = [];
  for (let i = 0; i < cfg.runSamples; i++) {
    const r = await cli(b.env, ['run', '--', 'true']);
    if (r.code !== 0) b.problems.push(`run -- true exited ${r.code}: ${r.stderr.trim()}`);
    samples.push(r.ms);
  }
  const base: number[] = [];
  for (let i = 0; i < cfg.runSamples; i++) {
    const t0 = performance.now();
    execFileSync(process.execPath, ['-e', '0']);
    base.push(performance.now() - t0);
  }
  return { samples, medianMs: median(samples), minMs: Math.min(...samples), nodeBaselineMs: median(base) };
}
