import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestHome, type CliResult } from '../helpers/cli.js';
import { filesContaining, findCanary } from '../helpers/canary.js';
import { alive, daemonJson, dumpStore, fileBytes, output, serveForeground, waitGone } from './helpers.js';

/**
 * Issue 6 item 6: a wrong, missing or over-permissive master key (and an over-permissive CA key) keep
 * the daemon from starting, with a clear CLI error, and leave the store and the audit log untouched.
 * A second daemon on the same store is refused while the first keeps serving; `daemon start` never
 * starts two; a daemon.json left by a dead (or since reused) pid is handled.
 */

const SECRET = `ghp_CANARYstart${randomBytes(10).toString('hex')}`;

describe('the daemon refuses to start on a bad key, and never runs twice', () => {
  const t = new TestHome();
  const outputs: CliResult[] = [];
  const cli = async (args: string[], input?: string): Promise<CliResult> => {
    const r = await t.run(args, input === undefined ? {} : { input });
    outputs.push(r);
    return r;
  };
  const path = (rel: string): string => join(t.home, rel);
  let store: Array<[string, string]>;
  let audit: Buffer | undefined;

  beforeAll(async () => {
    expect((await cli(['init', '--profile', 'me'])).code).toBe(0);
    expect((await cli(['login', 'github', '--connection', 'personal'], `${SECRET}\n`)).code).toBe(0);
    expect((await cli(['daemon', 'stop'])).code).toBe(0);
    store = await dumpStore(t.home);
    audit = fileBytes(path('audit.log'));
  });

  afterAll(async () => {
    await t.cleanup();
  });

  /** Nothing started, nothing written: same records, same audit bytes, no daemon.json. */
  async function expectUntouched(): Promise<void> {
    expect(existsSync(path('server/daemon.json'))).toBe(false);
    expect(fileBytes(path('audit.log'))?.equals(audit ?? Buffer.alloc(0))).toBe(true);
    expect(await dumpStore(t.home)).toEqual(store);
  }

  /**
   * `daemon serve` (foreground) must exit at once with the code and a next step. With viaCommand, also
   * the usual way: a command starting the daemon on demand reports the daemon's error (each spawn
   * costs a second or two, so not every case takes both ways).
   */
  async function expectRefusal(code: string, exit: number, viaCommand = false): Promise<void> {
    if (viaCommand) {
      const r = await cli(['connection', 'list']);
      expect(r.code, output(r)).toBe(exit); // the daemon's own error, and its exit code
      expect(r.stderr.split(code).length - 1).toBe(1); // named once
      expect(r.stderr).toContain(code);
      expect(r.stderr).toContain('next:');
    }
    const fg = await serveForeground(t, 20_000);
    outputs.push(fg);
    expect(fg.timedOut).toBe(false);
    expect(fg.code, output(fg)).toBe(exit);
    expect(fg.stderr).toContain(code);
    expect(fg.stderr).toContain('next:');
    await expectUntouched();
  }

  it('a wrong master key: ERR_VAULT_SEALED, the store stays sealed and untouched', async () => {
    const good = readFileSync(path('server/master.key'));
    writeFileSync(path('server/master.key'), `${randomBytes(32).toString('base64')}\n`, { mode: 0o600 });
    try {
      await expectRefusal('ERR_VAULT_SEALED', 8, true);
    } finally {
      writeFileSync(path('server/master.key'), good);
    }
  });

  it('a master key file that is not a key (truncated, garbage): ERR_VAULT_SEALED', async () => {
    const good = readFileSync(path('server/master.key'));
    try {
      writeFileSync(path('server/master.key'), good.subarray(0, 20));
      await expectRefusal('ERR_VAULT_SEALED', 8);
    } finally {
      writeFileSync(path('server/master.key'), good);
    }
  });

  it('a missing master key: ERR_HOME_NOT_INITIALISED', async () => {
    renameSync(path('server/master.key'), path('server/master.key.away'));
    try {
      await expectRefusal('ERR_HOME_NOT_INITIALISED', 6);
    } finally {
      renameSync(path('server/master.key.away'), path('server/master.key'));
    }
  });

  it.each([
    ['644', 0o644],
    ['640', 0o640],
  ] as const)('a master key with mode %s: ERR_HOME_PERMISSIONS', async (_label, mode) => {
    chmodSync(path('server/master.key'), mode);
    try {
      await expectRefusal('ERR_HOME_PERMISSIONS', 6, mode === 0o644);
    } finally {
      chmodSync(path('server/master.key'), 0o600);
    }
  });

  it('a CA key with mode 644: ERR_HOME_PERMISSIONS', async () => {
    chmodSync(path('server/ca/ca.key'), 0o644);
    try {
      await expectRefusal('ERR_HOME_PERMISSIONS', 6);
    } finally {
      chmodSync(path('server/ca/ca.key'), 0o600);
    }
  });

  it('with everything restored, the daemon starts and reads the record', async () => {
    const r = await cli(['connection', 'show', 'github', '--connection', 'personal']);
    expect(r.code, output(r)).toBe(0);
  });

  it('a second daemon on the same store is refused (ERR_VAULT_LOCKED) while the first keeps serving', async () => {
    const first = daemonJson(t.home);
    expect(first && alive(first.pid)).toBe(true);
    const auditBefore = fileBytes(path('audit.log'));
    const second = await serveForeground(t, 20_000);
    outputs.push(second);
    expect(second.timedOut).toBe(false);
    expect(second.code, output(second)).toBe(8);
    expect(second.stderr).toContain('ERR_VAULT_LOCKED');
    expect(second.stderr).toContain('authsome daemon stop');
    // The loser wrote nothing: not the audit log (it never opened it), not daemon.json.
    expect(fileBytes(path('audit.log'))?.equals(auditBefore ?? Buffer.alloc(0))).toBe(true);
    expect(daemonJson(t.home)).toEqual(first);
    const r = await cli(['connection', 'show', 'github', '--connection', 'personal']);
    expect(r.code, output(r)).toBe(0);
  });

  it('`daemon start` twice, in sequence or side by side, starts one daemon', async () => {
    const first = daemonJson(t.home)!;
    const again = await t.json<{ pid: number }>(['daemon', 'start']);
    expect(again.pid).toBe(first.pid);
    expect((await cli(['daemon', 'stop'])).code).toBe(0);
    const logBefore = readFileSync(path('server/daemon.log'), 'utf8').length;
    const all = await Promise.all(
      Array.from({ length: 4 }, () => t.json<{ pid: number }>(['daemon', 'start'])),
    );
    expect(new Set(all.map((s) => s.pid)).size).toBe(1);
    // No loser was even spawned: none hit the store lock.
    expect(readFileSync(path('server/daemon.log'), 'utf8').slice(logBefore)).not.toContain(
      'ERR_VAULT_LOCKED',
    );
    expect((await cli(['daemon', 'stop'])).code).toBe(0);
  });

  it('a daemon.json left by a dead pid (or damaged): not running, stop is a no-op, the next command starts one', async () => {
    writeFileSync(path('server/daemon.json'), '{"pid": 12');
    expect((await cli(['daemon', 'status'])).code).toBe(10);
    const dead = spawn(process.execPath, ['-e', '0']);
    await new Promise((r) => dead.once('exit', r));
    await waitGone(dead.pid!);
    writeFileSync(
      path('server/daemon.json'),
      JSON.stringify({
        pid: dead.pid,
        host: '127.0.0.1',
        controlPort: 9,
        proxyHost: '127.0.0.1',
        proxyPort: 9,
        startedAt: new Date().toISOString(),
        version: '0',
      }),
    );
    const status = await cli(['daemon', 'status']);
    expect(status.code).toBe(10);
    expect(status.stdout).toContain('not running');
    expect((await cli(['daemon', 'stop'])).stdout).toContain('was not running');
    const r = await cli(['connection', 'show', 'github', '--connection', 'personal']);
    expect(r.code, output(r)).toBe(0);
    const now = daemonJson(t.home)!;
    expect(now.pid).not.toBe(dead.pid);
    expect(alive(now.pid)).toBe(true);
  });

  it('a daemon.json whose pid now belongs to another process: that process is never signalled', async () => {
    const real = daemonJson(t.home)!;
    expect((await cli(['daemon', 'stop'])).code).toBe(0);
    const bystander = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60_000)'], { stdio: 'ignore' });
    try {
      // The old daemon's file, as a kill -9 leaves it, with the pid since reused by the bystander.
      writeFileSync(path('server/daemon.json'), JSON.stringify({ ...real, pid: bystander.pid }));
      expect((await cli(['daemon', 'status'])).code).toBe(10);
      expect((await cli(['daemon', 'stop'])).stdout).toContain('was not running');
      const r = await cli(['connection', 'show', 'github', '--connection', 'personal']);
      expect(r.code, output(r)).toBe(0);
      expect(alive(bystander.pid!)).toBe(true);
      expect(daemonJson(t.home)!.pid).not.toBe(bystander.pid);
    } finally {
      bystander.kill('SIGKILL');
    }
  });

  it('no output and no file ever held the secret', () => {
    for (const o of outputs) expect(findCanary(output(o), SECRET)).toBeUndefined();
    expect(filesContaining(t.home, SECRET)).toEqual([]);
  });
});
