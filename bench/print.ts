import type { HeldResult } from './held.js';
import type { FirstRequest, MatrixRow, SseResult } from './phases.js';
import type { AuditCost, Bodies, RunTrue } from './phases-resources.js';
import { cpuPerRequest } from './load.js';
import { f0, f1, f2, f3, table } from './report.js';

export interface Target {
  name: string;
  target: string;
  value: string;
  pass: boolean | null;
}

export interface Result {
  meta: {
    date: string;
    mode: string;
    node: string;
    cpus: string;
    git: string;
    srcModifiedSinceCommit: boolean;
    homeFs: string;
    mitmproxy: string;
    loadavgAtStart: string;
    seconds: number;
  };
  targets: Target[];
  http: MatrixRow[];
  https: MatrixRow[];
  firstRequest: FirstRequest;
  sse: SseResult;
  bodies: Bodies;
  audit: AuditCost;
  held: HeldResult;
  runTrue: RunTrue;
  problems: string[];
}

const at = (rows: MatrixRow[], c: number): MatrixRow => rows.find((r) => r.concurrency === c)!;

export function targets(r: Omit<Result, 'targets' | 'meta'>, mitmNote: string): Target[] {
  const t = (name: string, target: string, value: string, pass: boolean | null): Target => ({
    name,
    target,
    value,
    pass,
  });
  const h16 = at(r.https, 16);
  const h = r.held;
  return [
    t('HTTPS (intercepted+injected+audited) / direct, c=16', '>= 0.35', f3(h16.ratio), h16.ratio >= 0.35),
    t(
      'HTTPS authsome / mitmproxy req/s, c=16',
      '>= 10x',
      h16.authsomeOverMitm === undefined ? mitmNote : `${f1(h16.authsomeOverMitm)}x`,
      h16.authsomeOverMitm === undefined ? null : h16.authsomeOverMitm >= 10,
    ),
    t('HTTP forwarding / direct, c=16', '>= 0.45', f3(at(r.http, 16).ratio), at(r.http, 16).ratio >= 0.45),
    t(
      'HTTPS p50 added latency, c=1',
      '<= 0.3 ms',
      `${f3(at(r.https, 1).addedP50Ms)} ms`,
      at(r.https, 1).addedP50Ms <= 0.3,
    ),
    t(
      'HTTP p50 added latency, c=1',
      '<= 0.3 ms',
      `${f3(at(r.http, 1).addedP50Ms)} ms`,
      at(r.http, 1).addedP50Ms <= 0.3,
    ),
    t(
      'first request to a new host, extra: exact / wildcard sub-domain (medians)',
      '<= 10 ms',
      `${f1(r.firstRequest.exactMedianExtraMs)} / ${f1(r.firstRequest.wildcardMedianExtraMs)} ms`,
      Math.max(r.firstRequest.exactMedianExtraMs, r.firstRequest.wildcardMedianExtraMs) <= 10,
    ),
    t(
      '10 MiB HTTPS download, c=1',
      '>= 250 MiB/s',
      `${f0(r.bodies.download.authsomeMiBs)} MiB/s`,
      r.bodies.download.authsomeMiBs >= 250,
    ),
    t(
      'daemon RSS growth, 10 MiB bodies at c=8',
      '<= 30 MB',
      `${f1(r.bodies.rssC8.growthMB)} MB`,
      r.bodies.rssC8.growthMB <= 30,
    ),
    t(
      'durable audit cost (disk vs tmpfs), c=16',
      '<= 10%',
      `${f2(r.audit.c16.cost * 100)}%`,
      r.audit.c16.cost <= 0.1,
    ),
    t(
      `${h.connections} held connections: daemon RSS, all answered`,
      '<= 250 MB',
      `${f0(h.peakRssMB)} MB, ${h.opened + h.secondOk}/${2 * h.connections} ok`,
      h.peakRssMB <= 250 && h.openFailed + h.secondFailed === 0,
    ),
  ];
}

function rowsTable(title: string, rows: MatrixRow[]): string {
  const hasMitm = rows.some((r) => r.columns['mitmproxy']);
  const hasTunnel = rows.some((r) => r.columns['authsome-tunnel']);
  const head = [
    'c',
    'direct req/s',
    'p50 ms',
    'p99 ms',
    'authsome req/s',
    'p50 ms',
    'p99 ms',
    'ratio',
    '+p50 ms',
  ];
  if (hasTunnel) head.push('tunnel req/s', 'ratio');
  if (hasMitm) head.push('mitmproxy req/s', 'p50 ms', 'ratio', 'authsome/mitm');
  head.push('other load');
  const body = rows.map((r) => {
    const d = r.columns['direct']!;
    const a = r.columns['authsome']!;
    const line = [
      String(r.concurrency),
      f0(d.rps),
      f2(d.p50),
      f2(d.p99),
      f0(a.rps),
      f2(a.p50),
      f2(a.p99),
      f3(r.ratio),
      f3(r.addedP50Ms),
    ];
    if (hasTunnel) line.push(f0(r.columns['authsome-tunnel']?.rps), f3(r.tunnelRatio));
    const m = r.columns['mitmproxy'];
    if (hasMitm) line.push(f0(m?.rps), f2(m?.p50), f3(r.mitmRatio), f1(r.authsomeOverMitm));
    const foreign = Math.max(...Object.values(r.columns).map((s) => s.cpu?.foreignPct ?? 0));
    line.push(`${f0(foreign)}%`);
    return line;
  });
  return `${title}\n${table([head, ...body])}\n\n${cpuTable(rows, hasTunnel, hasMitm)}`;
}

const sum = (x: Record<string, number> | undefined): number =>
  x ? Object.values(x).reduce((a, b) => a + b, 0) : NaN;

/** CPU per request of each process: the stable view of where the time goes, whatever else runs. */
function cpuTable(rows: MatrixRow[], hasTunnel: boolean, hasMitm: boolean): string {
  const head = [
    'c',
    'direct: client + origin',
    'authsome: client + origin + proxy',
    'of which proxy',
    'CPU ratio',
  ];
  if (hasTunnel) head.push('tunnel: proxy');
  if (hasMitm) head.push('mitmproxy: proxy');
  const body = rows.map((r) => {
    const cpu = r.cpuUsPerRequest;
    const d = sum(cpu['direct']);
    const a = sum(cpu['authsome']);
    const line = [String(r.concurrency), f0(d), f0(a), f0(cpu['authsome']?.['proxy']), f3(d / a)];
    if (hasTunnel) line.push(f0(cpu['authsome-tunnel']?.['proxy']));
    if (hasMitm) line.push(f0(cpu['mitmproxy']?.['proxy']));
    return line;
  });
  return `CPU microseconds per request (from /proc, 10 ms ticks; CPU ratio = direct / authsome, what req/s would be if all processes were CPU-bound on the same cores):\n${table([head, ...body])}`;
}

/** The report as printed, also pasted into docs/performance.md. */
export function format(r: Result): string {
  const { bodies: body, audit, held: h, sse, runTrue: rt, firstRequest: first } = r;
  const out: string[] = [];
  out.push(
    `authsome bench (${r.meta.mode}) ${r.meta.date}, node ${r.meta.node}, ${r.meta.cpus}, git ${r.meta.git}${r.meta.srcModifiedSinceCommit ? ' + uncommitted src' : ''}`,
  );
  out.push(
    `load generator, origin and proxy share the machine; columns alternate in one run; ratio = median of per-round ratios;`,
  );
  out.push(
    `"other load" = CPU used by processes outside the bench during the runs (max, % of all cores); loadavg at start ${r.meta.loadavgAtStart}`,
  );
  out.push('');
  out.push(
    rowsTable(
      'HTTP, 1 KiB JSON (plain http through the proxy: absolute-form, forwarded, never injected)',
      r.http,
    ),
  );
  out.push('');
  out.push(
    rowsTable(
      `HTTPS, 1 KiB JSON (authsome: CONNECT, intercepted, injected, audited with fdatasync; tunnel: a host no provider covers, tunnelled by the same daemon; mitmproxy: ${r.meta.mitmproxy})`,
      r.https,
    ),
  );
  out.push('');
  out.push(
    `First request to a host never seen (fresh client connection; new upstream connection; leaf minted unless pre-minted at start) vs a warm host (fresh client connection):\n${table(
      [
        ['host', 'kind', 'new host ms', 'warm host ms', 'extra ms', 'direct, fresh conn ms'],
        ...first.hosts.map((x) => [
          x.host,
          x.wildcard ? 'wildcard sub-domain' : 'exact bundled host',
          f2(x.coldMs),
          f2(x.warmMs),
          f2(x.extraMs),
          f2(x.directFreshMs),
        ]),
      ],
      2,
    )}`,
  );
  out.push('');
  out.push(
    `10 MiB bodies over HTTPS: c=1 throughput (MiB/s), and daemon RSS during 10 MiB bodies at c=8:\n${table([
      [
        '',
        'direct MiB/s',
        'authsome MiB/s',
        'ratio',
        'RSS before MB',
        'RSS peak c=8 MB',
        'growth MB',
        'c=8 MiB/s',
      ],
      ...(['download', 'upload'] as const).map((k) => [
        k,
        f0(body[k].directMiBs),
        f0(body[k].authsomeMiBs),
        f3(body[k].ratio),
        f1(body.rssC8[k].baselineMB),
        f1(body.rssC8[k].peakMB),
        f1(body.rssC8[k].growthMB),
        f0(body.rssC8[k].MiBs),
      ]),
    ])}`,
  );
  out.push('');
  const ac = (k: string, c: AuditCost['c16']): string[] => [
    k,
    f0(c.columns['direct']!.rps),
    f0(c.columns['authsome']!.rps),
    f2(c.columns['authsome']!.p50),
    f0(c.columns['authsome-tmpfs']!.rps),
    f2(c.columns['authsome-tmpfs']!.p50),
    `${f1(c.cost * 100)}%`,
    f0(cpuPerRequest(c.columns['authsome']!)?.['proxy']),
    f0(cpuPerRequest(c.columns['authsome-tmpfs']!)?.['proxy']),
  ];
  out.push(
    `Durable audit, HTTPS: ${audit.note} (disk: ${audit.diskFs}):\n${table([
      [
        '',
        'direct req/s',
        'disk req/s',
        'p50 ms',
        'tmpfs req/s',
        'p50 ms',
        'cost',
        'disk: daemon CPU us/req',
        'tmpfs: daemon CPU us/req',
      ],
      ac('c=16', audit.c16),
      ...(audit.c1 ? [ac('c=1', audit.c1)] : []),
    ])}`,
  );
  out.push('');
  out.push(
    `${h.connections} keep-alive connections held at once (each a CONNECT tunnel + TLS + a request; then a second request on each):\n${table(
      [
        [
          'first request ok',
          'open s',
          'RSS before MB',
          'RSS held MB',
          'RSS peak MB',
          'RSS after close MB',
          'second request ok',
          'reconnects',
        ],
        [
          `${h.opened}/${h.connections}`,
          f1(h.openSeconds),
          f1(h.baselineRssMB),
          f1(h.heldRssMB),
          f1(h.peakRssMB),
          f1(h.afterCloseRssMB),
          `${h.secondOk}/${h.connections}`,
          String(h.reconnects),
        ],
      ],
    )}`,
  );
  out.push('');
  out.push(
    `SSE (events 50 ms apart, lag from the origin's write to the client's read): direct median ${f1(sse.direct.lagMedianMs)} ms / max ${f1(sse.direct.lagMaxMs)} ms; authsome median ${f1(sse.authsome.lagMedianMs)} ms / max ${f1(sse.authsome.lagMaxMs)} ms`,
  );
  out.push(
    `authsome run -- true (warm daemon): median ${f0(rt.medianMs)} ms (min ${f0(rt.minMs)}, n=${rt.samples.length}); bare \`node -e 0\` ${f0(rt.nodeBaselineMs)} ms`,
  );
  out.push('');
  out.push(
    `Targets:\n${table([['', 'target', 'measured', ''], ...r.targets.map((x) => [x.name, x.target, x.value, x.pass === null ? 'n/a' : x.pass ? 'met' : 'MISSED'])], 99)}`,
  );
  if (r.problems.length) out.push(`\nPROBLEMS:\n${r.problems.map((p) => `  - ${p}`).join('\n')}`);
  out.push(`\n(${f0(r.meta.seconds)} s; JSON: bench/results/latest.json)`);
  return out.join('\n');
}
