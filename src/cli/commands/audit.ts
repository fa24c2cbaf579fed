import { existsSync, watch } from 'node:fs';
import { open } from 'node:fs/promises';
import type { Argv } from 'yargs';
import { AppError } from '../../errors.js';
import { closest } from '../../names.js';
import { parseDuration } from '../../config/settings.js';
import { readAudit, verifyAudit, parseLine, matchesFilter, type AuditFilter } from '../../audit/index.js';
import { AUDIT_EVENTS, type AuditRecord } from '../../audit/types.js';
import type { HomePaths } from '../../config/paths.js';
import { expectedHead } from '../audit-head.js';
import { Ctx, type GlobalArgs } from '../context.js';
import { emit, table, type Output } from '../output.js';

type AuditArgs = GlobalArgs & {
  provider?: string;
  connection?: string;
  event?: string;
  since?: string;
  limit?: number;
  follow?: boolean;
  all?: boolean;
  probes?: boolean;
};

function line(r: AuditRecord): string[] {
  return [
    r.ts,
    r.event,
    r.profile,
    r.provider ?? '',
    r.connection ?? '',
    [r.method, r.host, r.path].filter(Boolean).join(' '),
    (r.reason ?? (r.status !== undefined ? String(r.status) : '')) +
      (r.count !== undefined ? ` ×${r.count}` : ''),
  ];
}

function print(out: Output, r: AuditRecord): void {
  process.stdout.write(out.json ? JSON.stringify(r) + '\n' : line(r).join('  ') + '\n');
}

async function follow(path: string, filter: AuditFilter, out: Output): Promise<never> {
  const fh = await open(path, 'r');
  let pos = (await fh.stat()).size;
  let partial = '';
  const pump = async () => {
    const { size } = await fh.stat();
    if (size < pos) pos = 0;
    while (pos < size) {
      const buf = Buffer.alloc(Math.min(size - pos, 1 << 16));
      const { bytesRead } = await fh.read(buf, 0, buf.length, pos);
      pos += bytesRead;
      partial += buf.subarray(0, bytesRead).toString('utf8');
      const lines = partial.split('\n');
      partial = lines.pop() ?? '';
      for (const l of lines) {
        const p = parseLine(l);
        if (p.ok && matchesFilter(p.record, filter)) print(out, p.record);
      }
    }
  };
  let busy = Promise.resolve();
  watch(path, () => {
    busy = busy.then(pump, pump);
  });
  setInterval(() => {
    busy = busy.then(pump, pump);
  }, 1000);
  return new Promise<never>(() => undefined);
}

export function auditCommand(y: Argv<GlobalArgs>): Argv<GlobalArgs> {
  return y.command('audit', 'read the hash-chained audit log (`audit verify` checks the chain)', (a) =>
    a
      .command(
        '$0',
        'list audit events',
        (b) =>
          b
            .option('provider', { type: 'string' })
            .option('connection', { type: 'string' })
            .option('event', { type: 'string', describe: 'e.g. proxy.inject' })
            .option('since', { type: 'string', describe: 'ISO time, or a duration such as 1h' })
            .option('limit', { type: 'number', default: 50, describe: 'last N events' })
            .option('follow', { alias: 'f', type: 'boolean', describe: 'keep printing new events' })
            .option('all', {
              type: 'boolean',
              describe: 'events of every profile (default: the --profile given, else all)',
            })
            .option('probes', {
              type: 'boolean',
              describe:
                "include `authsome doctor`'s own records (doctor.probe, its probe session's mint and revoke), hidden by default",
            }),
        async (argv) => {
          const ctx = new Ctx(argv);
          const o = argv as AuditArgs;
          if (o.event !== undefined && !(AUDIT_EVENTS as readonly string[]).includes(o.event)) {
            const guess = closest(o.event, AUDIT_EVENTS);
            throw new AppError(
              'ERR_INPUT_INVALID',
              `no audit event is called ${JSON.stringify(o.event.slice(0, 64))}${guess ? ` — did you mean ${guess}?` : ''}`,
              `events: ${AUDIT_EVENTS.join(', ')}`,
            );
          }
          const filter: AuditFilter = {
            ...(ctx.profileFlag && o.all !== true ? { profile: ctx.profileFlag } : {}),
            ...(o.provider ? { provider: o.provider } : {}),
            ...(o.connection ? { connection: o.connection } : {}),
            ...(o.event ? { event: o.event } : {}),
            ...(o.since ? { since: parseSince(o.since) } : {}),
            ...(o.limit !== undefined ? { limit: parseLimit(o.limit) } : {}),
            // Asking for doctor.probe by name shows them too.
            ...(o.probes === true || o.event === 'doctor.probe' ? {} : { hideProbes: true }),
          };
          requireLog(ctx.paths);
          // The default human view leaves out refusals made without a session token (anyone on
          // loopback can make them, by the thousand) and says how many there were instead.
          const anonymous = { records: 0, refusals: 0 };
          const quiet = !ctx.out.json && o.event === undefined && !o.follow;
          const records = await readAudit(ctx.paths.auditLog, {
            ...filter,
            ...(quiet
              ? {
                  hide: (r: AuditRecord) => r.event === 'proxy.deny' && r.profile === '-',
                  onHidden: (r: AuditRecord) => {
                    anonymous.records++;
                    anonymous.refusals += r.count ?? 1;
                  },
                }
              : {}),
          });
          if (o.follow) {
            for (const r of records) print(ctx.out, r);
            await follow(ctx.paths.auditLog, { ...filter, limit: undefined } as AuditFilter, ctx.out);
          }
          emit(ctx.out, { events: records }, () => {
            const shown = records.length
              ? table([
                  ['TS', 'EVENT', 'PROFILE', 'PROVIDER', 'CONNECTION', 'REQUEST', 'STATUS/REASON'],
                  ...records.map(line),
                ])
              : 'no matching events';
            return anonymous.records === 0
              ? shown
              : `${shown}\n(not shown: ${anonymous.refusals} refused request${anonymous.refusals === 1 ? '' : 's'} without a session token, in ${anonymous.records} proxy.deny record${anonymous.records === 1 ? '' : 's'}; see them with \`authsome audit --event proxy.deny\`)`;
          });
        },
      )
      .command(
        'verify',
        "check the hash chain, and that the log holds the daemon's last record; names the first broken line",
        {},
        async (argv) => {
          const ctx = new Ctx(argv);
          requireLog(ctx.paths);
          const head = await expectedHead(ctx);
          const res = await verifyAudit(ctx.paths.auditLog, 'seq' in head ? head : undefined);
          const holds =
            'seq' in head
              ? `, holds the ${head.from === 'daemon' ? "running daemon's last record" : 'record the daemon last anchored'} (seq ${head.seq})`
              : `; not compared with the daemon's records (${head.unchecked})`;
          emit(ctx.out, { ...res, daemon: head }, () =>
            res.ok
              ? `audit log OK: ${res.lines} lines, chain intact${holds}`
              : `audit log BROKEN at line ${res.firstBroken?.line}: ${res.firstBroken?.reason}`,
          );
          if (!res.ok) process.exitCode = 9;
        },
      ),
  );
}

function requireLog(paths: HomePaths): void {
  if (existsSync(paths.auditLog)) return;
  // A home that has its master key was initialised: its log was there and has been removed.
  if (existsSync(paths.masterKey))
    throw new AppError(
      'ERR_AUDIT_UNAVAILABLE',
      `the audit log ${paths.auditLog} is missing from an initialised home (deleted or moved)`,
      'restore it from a backup if you have one; a running daemon refuses to inject until it is restarted, and the log it then starts records the gap (audit.gap), which `authsome audit verify` reports',
    );
  throw new AppError(
    'ERR_HOME_NOT_INITIALISED',
    `no audit log at ${paths.auditLog}`,
    'run `authsome init` (or pass --home)',
  );
}

function parseLimit(n: number): number {
  if (!Number.isSafeInteger(n) || n < 0)
    throw new AppError(
      'ERR_INPUT_INVALID',
      '--limit must be a whole number of events, 0 or more',
      'e.g. `authsome audit --limit 20`',
    );
  return n;
}

function parseSince(s: string): Date {
  if (/^\d+[smhd]$/.test(s)) return new Date(Date.now() - parseDuration(s));
  const d = new Date(s);
  if (Number.isNaN(d.getTime()))
    throw new AppError(
      'ERR_INPUT_INVALID',
      `--since ${JSON.stringify(s)} is neither a time nor a duration`,
      'use e.g. --since 1h or --since 2026-11-25T10:00:00Z',
    );
  return d;
}
