import { constants } from 'node:fs';
import { readdir, readFile, readlink, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AuditWriter, GENESIS, readAudit, verifyAudit } from '../../../src/audit/index.js';
import type { AuditInput, AuditRecord } from '../../../src/audit/index.js';
import { isAppError } from '../../../src/errors.js';
import { FaultyFs, steppingClock, tempDir, type TempDir } from './helpers.js';

let t: TempDir;
const writers: AuditWriter[] = [];
async function openWriter(...args: Parameters<typeof AuditWriter.open>): Promise<AuditWriter> {
  const w = await AuditWriter.open(...args);
  writers.push(w);
  return w;
}

beforeEach(async () => {
  t = await tempDir();
});
afterEach(async () => {
  await Promise.all(writers.splice(0).map((w) => w.close()));
  await t.cleanup();
});

const inject = (i: number): AuditInput => ({
  event: 'proxy.inject',
  profile: `p${i % 3}`,
  provider: 'github',
  connection: 'default',
  method: 'GET',
  host: 'api.github.com',
  path: `/repos/${i}`,
  request_id: `r${i}`,
});

describe('AuditWriter', () => {
  it('creates the log with mode 0600 and starts the chain at GENESIS', async () => {
    const w = await openWriter(t.log);
    expect((await stat(t.log)).mode & 0o777).toBe(0o600);
    const rec = await w.append({ event: 'daemon.start', profile: '-' });
    expect(rec.seq).toBe(1);
    expect(rec.prev).toBe(GENESIS);
    expect(w.head).toEqual({ seq: 1, hash: rec.hash });
  });

  it('fails with ERR_AUDIT_UNAVAILABLE when the parent directory is missing', async () => {
    const err: unknown = await AuditWriter.open(join(t.dir, 'nope', 'audit.log')).catch((e: unknown) => e);
    expect(isAppError(err) && err.code).toBe('ERR_AUDIT_UNAVAILABLE');
  });

  it('keeps the chain correct over 1000 concurrent appends', async () => {
    const w = await openWriter(t.log);
    const records = await Promise.all(Array.from({ length: 1000 }, (_, i) => w.append(inject(i))));
    // Resolution order matches call order: seq follows queue order.
    expect(records.map((r) => r.seq)).toEqual(Array.from({ length: 1000 }, (_, i) => i + 1));
    expect(records.map((r) => r.request_id)).toEqual(records.map((_, i) => `r${i}`));
    expect(await verifyAudit(t.log)).toEqual({ ok: true, lines: 1000 });
    const onDisk = await readAudit(t.log);
    expect(onDisk.map((r) => r.seq)).toEqual(records.map((r) => r.seq));
    expect(onDisk).toEqual(records);
  });

  it('group commit: 200 concurrent appends share far fewer than 200 datasyncs', async () => {
    const fs = new FaultyFs();
    const w = await openWriter(t.log, { openFile: fs.openFile });
    await Promise.all(Array.from({ length: 200 }, (_, i) => w.append(inject(i))));
    expect(fs.datasyncs).toBeGreaterThanOrEqual(1);
    expect(fs.datasyncs).toBeLessThan(10);
    expect(fs.writes).toBe(fs.datasyncs);
    expect((await verifyAudit(t.log)).ok).toBe(true);
  });

  it('appends made during a slow flush queue for the next one', async () => {
    const fs = new FaultyFs();
    fs.syncDelayMs = 50;
    const w = await openWriter(t.log, { openFile: fs.openFile });
    const first = w.append(inject(0));
    await new Promise((r) => setTimeout(r, 10)); // the first flush is now inside datasync
    const rest = Array.from({ length: 50 }, (_, i) => w.append(inject(i + 1)));
    await Promise.all([first, ...rest]);
    expect(fs.datasyncs).toBe(2);
    expect(await verifyAudit(t.log)).toEqual({ ok: true, lines: 51 });
  });

  it('resolves only after the line is on disk', async () => {
    const w = await openWriter(t.log);
    const rec = await w.append({ event: 'login', profile: 'alice' });
    expect(await readFile(t.log, 'utf8')).toContain(`"hash":"${rec.hash}"}\n`);
  });

  it('fsync:false skips datasync', async () => {
    const fs = new FaultyFs();
    const w = await openWriter(t.log, { fsync: false, openFile: fs.openFile });
    await Promise.all([w.append(inject(1)), w.append(inject(2))]);
    expect(fs.datasyncs).toBe(0);
    expect(fs.writes).toBe(1);
  });

  it('continues seq and prev after reopen', async () => {
    const clock = steppingClock();
    const w1 = await AuditWriter.open(t.log, { clock });
    await w1.append({ event: 'daemon.start', profile: '-' });
    const last = await w1.append({ event: 'daemon.stop', profile: '-' });
    await w1.close();
    const w2 = await openWriter(t.log, { clock });
    expect(w2.head).toEqual({ seq: 2, hash: last.hash });
    const next = await w2.append({ event: 'daemon.start', profile: '-' });
    expect(next).toMatchObject({ seq: 3, prev: last.hash });
    expect(await verifyAudit(t.log)).toEqual({ ok: true, lines: 3 });
  });

  it('uses the injected clock for ts', async () => {
    const w = await openWriter(t.log, { clock: () => new Date('2030-05-06T07:08:09.010Z') });
    expect((await w.append({ event: 'login', profile: 'a' })).ts).toBe('2030-05-06T07:08:09.010Z');
  });

  it('refuses unknown events and non-primitive detail values with TypeError, writing nothing', async () => {
    const w = await openWriter(t.log);
    const bad = [
      { event: 'proxy.nope', profile: 'a' },
      { event: 'login', profile: 'a', detail: { nested: { x: 1 } } },
      { event: 'login', profile: 'a', detail: { list: [1] } },
      { event: 'login', profile: 'a', detail: { nothing: null } },
      { event: 'login', profile: 'a', detail: { nan: Number.NaN } },
      { event: 'login', profile: 'a', detail: { secret: new (class Secret {})() } },
      { event: 'login', profile: 'a', host: 42 },
      { event: 'login', profile: 'a', token: 'oops' },
      { event: 'login', profile: '' },
    ];
    for (const input of bad)
      await expect(w.append(input as unknown as AuditInput)).rejects.toThrow(TypeError);
    expect(await readFile(t.log, 'utf8')).toBe('');
  });

  it('keeps the path without its query or fragment', async () => {
    const w = await openWriter(t.log);
    const paths = ['/x?api_key=canary#frag', '/x#frag?api_key=canary', '/x?', '/x'];
    for (const path of paths) {
      expect((await w.append({ event: 'proxy.inject', profile: 'a', path })).path).toBe('/x');
    }
    expect(await readFile(t.log, 'utf8')).not.toContain('canary');
  });

  /** open(2) flags of this process's descriptor for the audit log, from /proc (Linux). */
  async function openFlags(path: string): Promise<number> {
    for (const fd of await readdir('/proc/self/fd')) {
      const target = await readlink(`/proc/self/fd/${fd}`).catch(() => '');
      if (target !== path) continue;
      const info = await readFile(`/proc/self/fdinfo/${fd}`, 'utf8');
      return parseInt(/^flags:\s*([0-7]+)/m.exec(info)![1]!, 8);
    }
    throw new Error(`no descriptor open for ${path}`);
  }

  it.runIf(process.platform === 'linux')(
    'a durable writer opens the log O_APPEND|O_DSYNC: one write per batch, no separate datasync',
    async () => {
      const w = await openWriter(t.log);
      await w.append(inject(1));
      const flags = await openFlags(t.log);
      expect(flags & constants.O_APPEND).toBe(constants.O_APPEND);
      expect(flags & constants.O_DSYNC).toBe(constants.O_DSYNC);
    },
  );

  it.runIf(process.platform === 'linux')('fsync:false opens the log without O_DSYNC', async () => {
    const w = await openWriter(t.log, { fsync: false });
    await w.append(inject(1));
    expect((await openFlags(t.log)) & constants.O_DSYNC).toBe(0);
  });

  it('notifies onAppend listeners in seq order and survives a throwing listener', async () => {
    const w = await openWriter(t.log);
    const seen: number[] = [];
    w.onAppend(() => {
      throw new Error('listener bug');
    });
    const off = w.onAppend((r: AuditRecord) => seen.push(r.seq));
    await Promise.all([1, 2, 3].map((i) => w.append(inject(i))));
    off();
    await w.append(inject(4));
    expect(seen).toEqual([1, 2, 3]);
  });

  it('close() flushes queued appends, then later appends reject', async () => {
    const w = await AuditWriter.open(t.log);
    const pending = Array.from({ length: 20 }, (_, i) => w.append(inject(i)));
    await w.close();
    expect((await Promise.all(pending)).length).toBe(20);
    const err: unknown = await w.append(inject(99)).catch((e: unknown) => e);
    expect(isAppError(err) && err.code).toBe('ERR_AUDIT_UNAVAILABLE');
    expect(await verifyAudit(t.log)).toEqual({ ok: true, lines: 20 });
  });
});
