import { existsSync } from 'node:fs';
import { copyFile, open, readFile, rename, stat, truncate, unlink, writeFile } from 'node:fs/promises';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AuditWriter, verifyAudit } from '../../../src/audit/index.js';
import type { AuditFile, OpenAuditFile } from '../../../src/audit/index.js';
import { isAppError } from '../../../src/errors.js';
import { errno, FaultyFs, tempDir, type TempDir } from './helpers.js';

let t: TempDir;
let writer: AuditWriter | undefined;
beforeEach(async () => {
  t = await tempDir();
});
afterEach(async () => {
  await writer?.close();
  writer = undefined;
  await t.cleanup();
});

async function codeOf(p: Promise<unknown>): Promise<string | undefined> {
  const err: unknown = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  return isAppError(err) ? err.code : `not an AppError: ${String(err)}`;
}

const login = (profile: string) => ({ event: 'login', profile }) as const;

describe('AuditWriter under disk faults', () => {
  it('a partial write (ENOSPC) rejects the whole batch, is cut back, and the next append succeeds', async () => {
    const fs = new FaultyFs();
    writer = await AuditWriter.open(t.log, { openFile: fs.openFile });
    await writer.append(login('before'));
    const durableSize = (await stat(t.log)).size;

    fs.writeFault = { partialBytes: 30, error: errno('ENOSPC') };
    const batch = [writer.append(login('a')), writer.append(login('b')), writer.append(login('c'))];
    expect(await Promise.all(batch.map(codeOf))).toEqual(Array(3).fill('ERR_AUDIT_UNAVAILABLE'));
    expect((await stat(t.log)).size).toBe(durableSize); // the 30 torn bytes are gone
    expect(writer.head.seq).toBe(1);

    fs.writeFault = undefined; // the disk has room again
    const rec = await writer.append(login('after'));
    expect(rec.seq).toBe(2);
    expect(await verifyAudit(t.log)).toEqual({ ok: true, lines: 2 });
  });

  it('a failing datasync (EIO) rejects its waiters and rolls the chain back', async () => {
    const fs = new FaultyFs();
    writer = await AuditWriter.open(t.log, { openFile: fs.openFile });
    const first = await writer.append(login('x'));
    fs.syncFault = errno('EIO');
    expect(await codeOf(writer.append(login('lost')))).toBe('ERR_AUDIT_UNAVAILABLE');
    expect(writer.head).toEqual({ seq: 1, hash: first.hash });
    expect(await readFile(t.log, 'utf8')).not.toContain('lost');
    fs.syncFault = undefined;
    expect(await writer.append(login('y'))).toMatchObject({ seq: 2, prev: first.hash });
    expect(await verifyAudit(t.log)).toEqual({ ok: true, lines: 2 });
  });

  it('if the cut-back itself fails, the leftover bytes are trimmed before the next write', async () => {
    const fs = new FaultyFs();
    const base = fs.openFile;
    let failTruncate = true;
    const openFile: OpenAuditFile = async (path, opts) => {
      const f = await base(path, opts);
      return { ...f, truncate: (n) => (failTruncate ? Promise.reject(errno('EIO')) : f.truncate(n)) };
    };
    writer = await AuditWriter.open(t.log, { openFile });
    await writer.append(login('x'));
    fs.writeFault = { partialBytes: 10, error: errno('EIO') };
    expect(await codeOf(writer.append(login('y')))).toBe('ERR_AUDIT_UNAVAILABLE');
    fs.writeFault = undefined;
    // Truncation still fails: appending after torn bytes would corrupt the chain, so refuse again.
    expect(await codeOf(writer.append(login('z')))).toBe('ERR_AUDIT_UNAVAILABLE');
    failTruncate = false;
    expect((await writer.append(login('w'))).seq).toBe(2);
    expect(await verifyAudit(t.log)).toEqual({ ok: true, lines: 2 });
  });

  it.runIf(existsSync('/dev/full'))(
    'a real kernel ENOSPC (/dev/full, fails even as root) rejects',
    async () => {
      let full = true;
      const openFile = async (path: string): Promise<AuditFile> => open(full ? '/dev/full' : path, 'a');
      writer = await AuditWriter.open(t.log, { openFile });
      expect(await codeOf(writer.append(login('a')))).toBe('ERR_AUDIT_UNAVAILABLE');
      full = false;
      expect((await writer.append(login('b'))).seq).toBe(1);
      expect(await verifyAudit(t.log)).toEqual({ ok: true, lines: 1 });
    },
  );

  it('fails closed when the log changed outside the writer', async () => {
    writer = await AuditWriter.open(t.log);
    await writer.append(login('x'));
    await writer.close();
    writer = await AuditWriter.open(t.log);
    const fh = await open(t.log, 'a');
    await fh.write('{"intruder":true}\n');
    await fh.close();
    expect(await codeOf(writer.append(login('y')))).toBe('ERR_AUDIT_UNAVAILABLE');
    // Still refused on retry, and the foreign bytes are left for verify to report, not cut away.
    expect(await codeOf(writer.append(login('z')))).toBe('ERR_AUDIT_UNAVAILABLE');
    expect(await readFile(t.log, 'utf8')).toContain('"intruder"');
  });
});

describe('AuditWriter when audit.log is deleted or replaced under it', () => {
  it('deleted: the batch fails (the record would only land in the unlinked file) and so does every later one', async () => {
    writer = await AuditWriter.open(t.log);
    await writer.append(login('before'));
    await unlink(t.log);
    expect(await codeOf(writer.append(login('into-the-void')))).toBe('ERR_AUDIT_UNAVAILABLE');
    // The writer reopens the path, finds a file that is not the one it wrote: still refused.
    expect(await codeOf(writer.append(login('again')))).toBe('ERR_AUDIT_UNAVAILABLE');
    const err = await writer.append(login('third')).catch((e: unknown) => e);
    expect(String((err as Error).message)).toMatch(/changed outside the writer|deleted or replaced/);
  });

  it('ready() says beforehand whether a record could be written: deleted, cut or closed refuse', async () => {
    writer = await AuditWriter.open(t.log);
    await writer.append(login('before'));
    await writer.ready();
    // Edited in place: cut short, or with foreign bytes appended.
    const whole = await readFile(t.log);
    await truncate(t.log, whole.length - 5);
    expect(await codeOf(writer.ready())).toBe('ERR_AUDIT_UNAVAILABLE');
    await writeFile(t.log, Buffer.concat([whole, Buffer.from('{"forged":true}\n')]));
    expect(await codeOf(writer.ready())).toBe('ERR_AUDIT_UNAVAILABLE');
    await writeFile(t.log, whole);
    await writer.ready();
    await unlink(t.log);
    expect(await codeOf(writer.ready())).toBe('ERR_AUDIT_UNAVAILABLE');
    expect(await codeOf(writer.append(login('lost')))).toBe('ERR_AUDIT_UNAVAILABLE');
    // After the failed batch the writer holds no file: the path must have the size it wrote.
    expect(await codeOf(writer.ready())).toBe('ERR_AUDIT_UNAVAILABLE');
    await writer.close();
    expect(await codeOf(writer.ready())).toBe('ERR_AUDIT_UNAVAILABLE');
    writer = undefined;
  });

  it('replaced by rename (an editor saving a copy): that batch fails; the copy, if identical, is carried on', async () => {
    writer = await AuditWriter.open(t.log);
    await writer.append(login('before'));
    const copy = `${t.log}.tmp`;
    await copyFile(t.log, copy);
    await rename(copy, t.log);
    expect(await codeOf(writer.append(login('lost')))).toBe('ERR_AUDIT_UNAVAILABLE');
    await writer.append(login('after'));
    await writer.close();
    writer = undefined;
    const v = await verifyAudit(t.log);
    expect(v.ok).toBe(true);
    const lines = (await readFile(t.log, 'utf8')).trim().split('\n');
    expect(lines.map((l) => (JSON.parse(l) as { profile: string }).profile)).toEqual(['before', 'after']);
  });
});
