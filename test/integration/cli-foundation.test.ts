import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync, renameSync, rmSync, statSync, writeFileSync, chmodSync, existsSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { AuditWriter } from '../../src/audit/index.js';
import { TestHome, type CliResult } from '../helpers/cli.js';
import { filesContaining, findCanary } from '../helpers/canary.js';

const CANARY_PERSONAL = `ghp_CANARYpersonal${randomBytes(8).toString('hex')}`;
const CANARY_WORK = `ghp_CANARYwork${randomBytes(8).toString('hex')}`;

const mode = (p: string) => statSync(p).mode & 0o777;

describe('foundation: a CLI session in a temp home', () => {
  const t = new TestHome();
  const outputs: CliResult[] = [];
  const run = async (args: string[], input?: string) => {
    const r = await t.run(args, input === undefined ? {} : { input });
    outputs.push(r);
    return r;
  };

  beforeAll(async () => {
    const r = await run(['init', '--profile', 'me']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
  });

  afterAll(async () => {
    await t.cleanup();
  });

  it('lays out the home with the SPEC file modes', () => {
    const h = t.home;
    expect(mode(h)).toBe(0o700);
    expect(mode(join(h, 'server/master.key'))).toBe(0o600);
    expect(mode(join(h, 'server/kv_store'))).toBe(0o700);
    expect(mode(join(h, 'server/ca'))).toBe(0o700);
    expect(mode(join(h, 'server/ca/ca.key'))).toBe(0o600);
    expect(mode(join(h, 'client/identities/me.key'))).toBe(0o600);
    expect(mode(join(h, 'audit.log'))).toBe(0o600);
    const cfg = JSON.parse(readFileSync(join(h, 'client/config.json'), 'utf8'));
    expect(cfg).toMatchObject({ activeProfile: 'me', owner: 'me' });
    const daemon = JSON.parse(readFileSync(join(h, 'server/daemon.json'), 'utf8'));
    expect(daemon.controlPort).toBeGreaterThan(0);
    expect(daemon.proxyPort).toBeGreaterThan(0);
  });

  it('refuses a second init', async () => {
    const r = await run(['init']);
    expect(r.code).toBe(3);
    expect(r.stderr).toContain('ERR_HOME_EXISTS');
    expect(r.stderr).toContain('next:');
  });

  it('keeps two GitHub accounts reachable in one profile (connections)', async () => {
    expect((await run(['login', 'github', '--connection', 'personal'], CANARY_PERSONAL + '\n')).code).toBe(0);
    expect((await run(['login', 'github', '--connection', 'work'], CANARY_WORK + '\n')).code).toBe(0);
    const list = await t.json<{
      connections: Array<{ provider: string; connection: string; isDefault: boolean }>;
    }>(['connection', 'list']);
    expect(list.connections.map((c) => c.connection).sort()).toEqual(['personal', 'work']);
    expect(list.connections.find((c) => c.connection === 'personal')?.isDefault).toBe(true);
    const show = await run(['connection', 'show', 'github', '--connection', 'work']);
    expect(show.code).toBe(0);
    expect(show.stdout).toContain('connection: work');
    expect(show.stdout).toContain('access_token');
    // Without --connection the name is "default", which this profile does not have: the error names
    // the connections it has, and which one is the provider's default.
    const unnamed = await run(['connection', 'show', 'github']);
    expect(unnamed.code).toBe(3);
    expect(unnamed.stderr).toContain('it has personal (default), work');
    expect(unnamed.stderr).toContain('--connection personal');
    await run(['connection', 'default', 'github', 'work']);
    const after = await t.json<{ connections: Array<{ connection: string; isDefault: boolean }> }>([
      'connection',
      'list',
      '--provider',
      'github',
    ]);
    expect(after.connections.find((c) => c.connection === 'work')?.isDefault).toBe(true);
  });

  it('isolates profiles: a second profile sees neither connection', async () => {
    expect((await run(['profile', 'create', 'agent-pr-bot'])).code).toBe(0);
    const other = await t.json<{ connections: unknown[] }>([
      'connection',
      'list',
      '--profile',
      'agent-pr-bot',
    ]);
    expect(other.connections).toEqual([]);
    const show = await run([
      'connection',
      'show',
      'github',
      '--connection',
      'work',
      '--profile',
      'agent-pr-bot',
    ]);
    expect(show.code).toBe(3);
    expect(show.stderr).toContain('ERR_CONNECTION_NOT_FOUND');
    const profiles = await t.json<{ profiles: Array<{ handle: string; owner: boolean }> }>([
      'profile',
      'list',
    ]);
    expect(profiles.profiles.map((p) => p.handle).sort()).toEqual(['agent-pr-bot', 'me']);
    // a non-owner cannot create profiles (it signs as itself when it is the active one)
    expect((await run(['profile', 'use', 'agent-pr-bot'])).code).toBe(0);
    expect((await t.json<{ profile: string }>(['profile', 'current'])).profile).toBe('agent-pr-bot');
    expect((await run(['profile', 'use', 'me'])).code).toBe(0);
  });

  it('refuses names outside the grammar, never normalising them', async () => {
    for (const bad of ['Work', 'a/b', '-x', 'a b', 'x'.repeat(65)]) {
      const r = await run(['login', 'github', `--connection=${bad}`], 'whatever\n');
      expect(r.code, bad).toBe(2);
      expect(r.stderr).toContain('ERR_NAME_INVALID');
    }
    expect((await run(['profile', 'create', 'Bad'])).stderr).toContain('ERR_NAME_INVALID');
  });

  it('reads secrets only from stdin or a prompt, and rejects an empty one', async () => {
    const r = await run(['login', 'openai'], '');
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('stdin');
    // Trailing blank lines (a key file with an extra newline) are not a second value.
    const blank = await run(['login', 'openai', '--connection', 'blank-tail'], 'sk-blank-tail-123456\n\n\n');
    expect(blank.code, blank.stderr).toBe(0);
    expect(blank.stdout).toContain('Stored openai connection "blank-tail"');
    // Logging in again to the same connection says that it replaced the stored key.
    const again = await run(['login', 'openai', '--connection', 'blank-tail'], 'sk-blank-tail-654321\n');
    expect(again.stdout).toContain('Replaced the stored values of openai connection "blank-tail"');
    expect((await run(['logout', 'openai', '--connection', 'blank-tail'])).code).toBe(0);
  });

  it('proxy revoke with an id and --all is refused rather than revoking every session', async () => {
    const r = await run(['proxy', 'revoke', '0123456789abcdef', '--all']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('not both');
  });

  it('run without -- before the command: the hint says to put it after --', async () => {
    const r = await run(['--profile', 'me', 'run', 'curl', '-s', 'https://api.openai.com/v1/models']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('put the command after --');
    // Not for another command that merely has "run" among its arguments.
    const other = await run(['connection', 'show', 'github', '--connection', 'run', '--bogus']);
    expect(other.stderr).not.toContain('put the command after --');
  });

  it('a secret pasted onto the command line is refused and never repeated; a mistyped option is named', async () => {
    const r = await run(['login', 'github', CANARY_WORK, '--conection', 'work']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--conection');
    expect(r.stderr).toContain('1 unexpected argument (not shown');
    expect(r.stderr).not.toContain(CANARY_WORK);
    expect(r.stderr).not.toContain(CANARY_WORK.slice(0, 12));
    // Pasted where a name or a choice goes: not repeated either.
    for (const args of [
      ['login', CANARY_WORK],
      ['login', 'github', '--flow', CANARY_WORK],
    ]) {
      const bad = await run(args);
      expect(bad.code).toBe(2);
      expect(bad.stderr).not.toContain(CANARY_WORK.slice(0, 12));
    }
  });

  it('writes a tagged, verifiable audit log and catches an edited line', async () => {
    const audit = await t.json<{ events: Array<{ event: string; profile: string }> }>([
      'audit',
      '--limit',
      '500',
    ]);
    const events = audit.events.map((e) => e.event);
    expect(events).toEqual(
      expect.arrayContaining(['daemon.start', 'profile.create', 'connection.add', 'connection.default']),
    );
    expect(audit.events.every((e) => typeof e.profile === 'string' && e.profile.length > 0)).toBe(true);
    expect(audit.events.some((e) => e.event === 'connection.add' && e.profile === 'me')).toBe(true);
    const ok = await run(['audit', 'verify']);
    expect(ok.code).toBe(0);
  });

  it('deletes a profile with every record and its key', async () => {
    await run(['login', 'openai', '--profile', 'agent-pr-bot'], 'sk-agent-throwaway\n');
    const r = await t.json<{ records: number }>(['profile', 'delete', 'agent-pr-bot']);
    expect(r.records).toBeGreaterThanOrEqual(1);
    expect(existsSync(join(t.home, 'client/identities/agent-pr-bot.key'))).toBe(false);
    const again = await run(['profile', 'create', 'agent-pr-bot']);
    expect(again.code).toBe(0);
    expect(
      (await t.json<{ connections: unknown[] }>(['connection', 'list', '--profile', 'agent-pr-bot']))
        .connections,
    ).toEqual([]);
  });

  it('stays sealed with a wrong master key and loses nothing', async () => {
    expect((await run(['daemon', 'stop'])).code).toBe(0);
    const keyPath = join(t.home, 'server/master.key');
    const good = readFileSync(keyPath);
    writeFileSync(keyPath, randomBytes(32).toString('base64') + '\n');
    const sealed = await run(['connection', 'list']);
    expect(sealed.code).not.toBe(0);
    expect(sealed.stderr).toContain('ERR_VAULT_SEALED');
    writeFileSync(keyPath, good);
    chmodSync(keyPath, 0o644);
    const loose = await run(['connection', 'list']);
    expect(loose.stderr).toContain('ERR_HOME_PERMISSIONS');
    chmodSync(keyPath, 0o600);
    const back = await t.json<{ connections: Array<{ connection: string }> }>(['connection', 'list']);
    expect(back.connections.map((c) => c.connection).sort()).toEqual(['personal', 'work']);
  });

  it('verify names the first broken line after an edit', async () => {
    await run(['daemon', 'stop']);
    const path = join(t.home, 'audit.log');
    const original = readFileSync(path, 'utf8');
    const lines = original.trimEnd().split('\n');
    const target = 3;
    lines[target - 1] = lines[target - 1]!.replace('"profile":"me"', '"profile":"mallory"').replace(
      '"profile":"-"',
      '"profile":"mallory"',
    );
    writeFileSync(path, lines.join('\n') + '\n');
    const r = await run(['audit', 'verify', '--json']);
    expect(r.code).toBe(9);
    expect(JSON.parse(r.stdout).firstBroken.line).toBe(target);
    writeFileSync(path, original);
    expect((await run(['audit', 'verify'])).code).toBe(0);
  });

  it('audit: --profile narrows to one profile, --all widens it again; a mistyped --event says so', async () => {
    const mine = await t.json<{ events: Array<{ profile: string }> }>(['audit', '--profile', 'agent-pr-bot']);
    expect(new Set(mine.events.map((e) => e.profile))).toEqual(new Set(['agent-pr-bot']));
    const all = await t.json<{ events: Array<{ profile: string }> }>([
      'audit',
      '--profile',
      'agent-pr-bot',
      '--all',
      '--limit',
      '500',
    ]);
    expect(all.events.map((e) => e.profile)).toContain('me');
    const typo = await run(['audit', '--event', 'conection.add']);
    expect(typo.code).toBe(2);
    expect(typo.stderr).toContain('did you mean connection.add?');
  });

  it('never shows a secret in any output or file', async () => {
    for (const secret of [CANARY_PERSONAL, CANARY_WORK]) {
      for (const o of outputs) {
        expect(findCanary(o.stdout + o.stderr, secret)).toBeUndefined();
      }
      expect(filesContaining(t.home, secret)).toEqual([]);
    }
  });
});

describe('foundation: audit.log cut or deleted while the daemon is stopped', () => {
  const t = new TestHome();

  beforeAll(async () => {
    expect((await t.run(['init', '--profile', 'me'])).code).toBe(0);
    expect((await t.run(['login', 'openai'], { input: 'sk-anchor-test-123456\n' })).code).toBe(0);
  });
  afterAll(async () => {
    await t.cleanup();
  });

  const restart = async (): Promise<void> => {
    expect((await t.run(['daemon', 'stop'])).code).toBe(0);
  };

  it('a plain restart leaves no gap; lines cut off the end are reported at the next start', async () => {
    await restart();
    expect((await t.run(['daemon', 'start'])).code).toBe(0);
    expect((await t.run(['audit', 'verify'])).code).toBe(0);
    await restart();
    const log = join(t.home, 'audit.log');
    const lines = readFileSync(log, 'utf8').trimEnd().split('\n');
    writeFileSync(log, `${lines.slice(0, -2).join('\n')}\n`);
    // The log alone is a valid chain; verify compares it with the anchor the stopped daemon left.
    const cut = await t.run(['audit', 'verify']);
    expect(cut.code).toBe(9);
    expect(cut.stdout).toContain(
      `the log ends at seq ${lines.length - 2}, the daemon has written up to seq ${lines.length}`,
    );
    expect(existsSync(join(t.home, 'server', 'daemon.json'))).toBe(false); // verify started no daemon
    // The next start records the gap in the log itself.
    expect((await t.run(['daemon', 'start'])).code).toBe(0);
    const v = await t.run(['audit', 'verify']);
    expect(v.code).toBe(9);
    expect(v.stdout).toContain('records were removed while the daemon was stopped');
    const gap = await t.json<{ events: Array<{ detail: Record<string, unknown> }> }>([
      'audit',
      '--event',
      'audit.gap',
    ]);
    expect(gap.events).toHaveLength(1);
    expect(gap.events[0]!.detail).toMatchObject({ expected_seq: lines.length, found_seq: lines.length - 2 });
  });

  it('a deleted log is reported the same way', async () => {
    await restart();
    rmSync(join(t.home, 'audit.log'));
    expect((await t.run(['daemon', 'start'])).code).toBe(0);
    const v = await t.run(['audit', 'verify']);
    expect(v.code).toBe(9);
    expect(v.stdout).toContain('the log ended at seq 0');
  });
});

describe('foundation: audit verify compares the log with the daemon', () => {
  const t = new TestHome();

  beforeAll(async () => {
    expect((await t.run(['init', '--profile', 'me'])).code).toBe(0);
  });
  afterAll(async () => {
    await t.cleanup();
  });

  it("a log cut while the daemon runs: verify compares it with the daemon's last record", async () => {
    const log = join(t.home, 'audit.log');
    const whole = readFileSync(log, 'utf8');
    const ok = await t.json<{ ok: boolean; daemon: { seq: number } }>(['audit', 'verify']);
    expect(ok.ok).toBe(true);
    expect(ok.daemon.seq).toBe(whole.trimEnd().split('\n').length);
    writeFileSync(log, `${whole.trimEnd().split('\n').slice(0, -1).join('\n')}\n`);
    const v = await t.run(['audit', 'verify']);
    expect(v.code).toBe(9);
    expect(v.stdout).toContain(`the daemon has written up to seq ${ok.daemon.seq}`);
    writeFileSync(log, whole); // put back: the next tests restart from an intact log
  });

  it('without a daemon to ask (the profile key is missing), the chain is checked and the output says what was not', async () => {
    const key = join(t.home, 'client', 'identities', 'me.key');
    const saved = readFileSync(key);
    rmSync(key);
    try {
      const v = await t.run(['audit', 'verify']);
      expect(v.code).toBe(0);
      expect(v.stdout).toContain("not compared with the daemon's records (ERR_IDENTITY_KEY_MISSING");
    } finally {
      writeFileSync(key, saved, { mode: 0o600 });
    }
  });

  it('a longer chain swapped in while the daemon is stopped is reported at the next start', async () => {
    expect((await t.run(['daemon', 'stop'])).code).toBe(0);
    const log = join(t.home, 'audit.log');
    const count = readFileSync(log, 'utf8').trimEnd().split('\n').length;
    const forged = join(t.home, 'forged.log');
    const w = await AuditWriter.open(forged);
    for (let i = 0; i < count + 3; i += 1) await w.append({ event: 'daemon.start', profile: '-' });
    await w.close();
    renameSync(forged, log);
    const stopped = await t.run(['audit', 'verify']);
    expect(stopped.code).toBe(9);
    expect(stopped.stdout).toContain(`not the record the daemon wrote as seq ${count}`);
    expect((await t.run(['daemon', 'start'])).code).toBe(0);
    const v = await t.run(['audit', 'verify']);
    expect(v.code).toBe(9);
    expect(v.stdout).toContain('the log was replaced while the daemon was stopped');
  });
});

describe('foundation: audit.log removed while the daemon runs', () => {
  const t = new TestHome();

  beforeAll(async () => {
    expect((await t.run(['init', '--profile', 'me'])).code).toBe(0);
  });
  afterAll(async () => {
    await t.cleanup();
  });

  it('the next audited change fails (exit 8) instead of going into the unlinked file; audit says what happened', async () => {
    const minted = await t.json<{ id: string }>(['proxy', 'env', '--json']);
    expect(minted.id).toMatch(/^[0-9a-f]{16}$/);
    rmSync(join(t.home, 'audit.log'));
    // Taking access away is not held up by the broken log: the revocation happens (its record cannot).
    await t.run(['proxy', 'revoke', minted.id]);
    const left = await t.json<{ sessions: Array<{ id: string }> }>(['proxy', 'revoke']);
    expect(left.sessions.map((x) => x.id)).not.toContain(minted.id);
    const login = await t.run(['login', 'openai', '--connection', 'work'], {
      input: 'sk-after-delete-123456\n',
    });
    expect(login.code).toBe(8);
    expect(login.stderr).toContain('ERR_AUDIT_UNAVAILABLE');
    expect(login.stderr).toContain('restart the daemon');
    // Refused before anything changed: no change happens without its audit record.
    const conns = await t.json<{ connections: unknown[] }>(['connection', 'list']);
    expect(conns.connections).toEqual([]);
    const create = await t.run(['profile', 'create', 'p2']);
    expect(create.code).toBe(8);
    const profiles = await t.json<{ profiles: Array<{ handle: string }> }>(['profile', 'list']);
    expect(profiles.profiles.map((p) => p.handle)).toEqual(['me']);
    const audit = await t.run(['audit']);
    expect(audit.code).toBe(8);
    expect(audit.stderr).toMatch(/missing from an initialised home/);
    expect(audit.stderr).not.toContain('authsome init');
  });

  it("the active profile's key file gone: ERR_IDENTITY_KEY_MISSING (exit 6) naming the file, not 'no such profile'", async () => {
    const key = join(t.home, 'client/identities/me.key');
    renameSync(key, `${key}.away`);
    try {
      const r = await t.run(['connection', 'list']);
      expect(r.code).toBe(6);
      expect(r.stderr).toContain('ERR_IDENTITY_KEY_MISSING');
      expect(r.stderr).toContain(key);
      expect(r.stderr).toContain('restore that file from a backup');
    } finally {
      renameSync(`${key}.away`, key);
    }
  });

  it('a bad --limit is an input error (exit 2), not an internal one', async () => {
    for (const v of ['abc', '-1', '1.5']) {
      const r = await t.run(['audit', '--limit', v]);
      expect(r.code, v).toBe(2);
      expect(r.stderr).toContain('ERR_INPUT_INVALID');
    }
  });
});

describe('foundation: a home that was never initialised', () => {
  const t = new TestHome();
  afterAll(async () => {
    await t.cleanup();
  });

  it('proxy start --port without --foreground is refused, not silently ignored', async () => {
    const r = await t.run(['proxy', 'start', '--port', '8123']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--port applies to --foreground only');
  });

  it('daemon status says to run init (exit 6), not merely "not running"', async () => {
    const r = await t.run(['daemon', 'status']);
    expect(r.code).toBe(6);
    expect(r.stderr).toContain('ERR_HOME_NOT_INITIALISED');
    expect(r.stderr).toContain('authsome init');
  });
});
