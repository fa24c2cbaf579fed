import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DaemonClient } from '../../src/daemon/client.js';
import type { DaemonInfo } from '../../src/daemon/daemon-file.js';
import { readIdentityKey } from '../../src/identity/index.js';
import { loadMasterKey, openVault } from '../../src/vault/index.js';
import { TestHome, type CliResult } from '../helpers/cli.js';
import {
  auditLines,
  daemonJson,
  mintSession,
  output,
  pinnedUpstream,
  viaProxy,
  waitGone,
  type Pinned,
} from './helpers.js';

/**
 * SPEC section 4: SIGTERM drains in-flight requests, flushes the audit log, closes the store. A slow
 * upstream response is in flight when the signal arrives: it completes, daemon.stop is the last audit
 * line, daemon.json is removed and the store reopens cleanly. A control-API write racing the signal is
 * either acknowledged and kept, or refused: never acknowledged and lost.
 */

const SECRET = `ghp_CANARYterm${randomBytes(10).toString('hex')}`;

describe('SIGTERM drains, flushes and closes', () => {
  let pinned: Pinned;
  let t: TestHome;
  let session: { handle: string; token: string };
  const cli = async (args: string[], input?: string): Promise<CliResult> =>
    t.run(args, input === undefined ? {} : { input });

  beforeAll(async () => {
    pinned = await pinnedUpstream();
    t = new TestHome(pinned.env);
    expect((await cli(['init', '--profile', 'me'])).code).toBe(0);
    expect((await cli(['login', 'github', '--connection', 'personal'], `${SECRET}\n`)).code).toBe(0);
    session = await mintSession(t);
  });

  afterAll(async () => {
    await t.cleanup();
    await pinned.close();
  });

  it('a slow injected request in flight completes; daemon.stop is audited last; the store reopens', async () => {
    const info = daemonJson(t.home)!;
    const path = `/sse?n=6&interval=250&tag=${randomBytes(4).toString('hex')}`;
    const slow = viaProxy(t.home, session, path, { timeoutMs: 15_000 });
    // Wait until upstream has the request (so it is truly in flight), then signal.
    const deadline = Date.now() + 10_000;
    while (!pinned.upstream.received.some((r) => r.url === path)) {
      if (Date.now() > deadline) throw new Error('the request never reached upstream');
      await sleep(10);
    }
    const signalledAt = Date.now();
    process.kill(info.pid, 'SIGTERM');
    const r = await slow;
    expect(r.status, r.body).toBe(200);
    for (let i = 0; i < 6; i++) expect(r.body).toContain(`data: event ${i}`);
    expect(Date.now() - signalledAt).toBeGreaterThan(700); // it really waited for the stream
    await waitGone(info.pid, 15_000);
    expect(existsSync(join(t.home, 'server/daemon.json'))).toBe(false);
    expect(readFileSync(join(t.home, 'server/daemon.log'), 'utf8')).toContain('SIGTERM, draining');

    const lines = auditLines(t.home);
    const last = lines.at(-1)!;
    expect(last).toMatchObject({ event: 'daemon.stop', detail: { signal: 'SIGTERM' } });
    const inject = lines.findIndex((l) => l['event'] === 'proxy.inject' && l['path'] === '/sse');
    expect(inject).toBeGreaterThan(-1);
    expect(inject).toBeLessThan(lines.length - 1);
    expect((await cli(['audit', 'verify'])).code).toBe(0);

    // Closed cleanly: the lock is free and the store opens here, with every record readable.
    const store = await openVault({
      dir: join(t.home, 'server/kv_store'),
      masterKey: await loadMasterKey(join(t.home, 'server/master.key')),
    });
    try {
      expect((await store.keys('profile/me/')).length).toBeGreaterThan(0);
      expect((await store.list('profile/')).length).toBeGreaterThan(0);
    } finally {
      await store.close();
    }
  });

  it('control-API writes racing the signal are acknowledged and kept, or refused', async () => {
    const up = await t.json<DaemonInfo>(['daemon', 'start']);
    const client = new DaemonClient(
      daemonJson(t.home) as DaemonInfo,
      'me',
      await readIdentityKey(join(t.home, 'client/identities/me.key')),
    );
    const names = Array.from({ length: 12 }, (_, i) => `race-${i}`);
    let firstAck: () => void = () => undefined;
    const acked = new Promise<void>((resolve) => (firstAck = resolve));
    const results = names.map(async (name, i) => {
      await sleep(i * 15);
      try {
        await client.call('PUT', `/v1/connections/github/${name}`, {
          fields: { access_token: `${SECRET}-${name}` },
          flow: 'api-key',
        });
        firstAck();
        return true;
      } catch {
        return false;
      }
    });
    // Signal as soon as one write is acknowledged: the others are in flight, queued, or not sent yet.
    await acked;
    process.kill(up.pid, 'SIGTERM');
    const ok = await Promise.all(results);
    await waitGone(up.pid, 15_000);
    const diagnose = (): string =>
      `audit tail: ${JSON.stringify(
        auditLines(t.home)
          .slice(-6)
          .map((l) => [l['seq'], l['event'], l['connection']]),
      )}\n` +
      `daemon log: ${readFileSync(join(t.home, 'server/daemon.log'), 'utf8').split('\n').slice(-15).join('\n')}\n` +
      `acked: ${JSON.stringify(ok)}`;
    expect(auditLines(t.home).at(-1), diagnose()).toMatchObject({ event: 'daemon.stop' });
    const list = await t.json<{ connections: Array<{ connection: string }> }>([
      'connection',
      'list',
      '--provider',
      'github',
    ]);
    const present = new Set(list.connections.map((c) => c.connection));
    names.forEach((name, i) => {
      if (ok[i]) expect(present, name).toContain(name);
    });
    // Every acknowledged write also has its audit line, before daemon.stop.
    const added = new Set(
      auditLines(t.home)
        .filter((l) => l['event'] === 'connection.add')
        .map((l) => l['connection']),
    );
    names.forEach((name, i) => {
      if (ok[i]) expect(added, name).toContain(name);
    });
    expect((await cli(['audit', 'verify'])).code).toBe(0);
  });

  it('`daemon stop` does the same from the CLI', async () => {
    const before = auditLines(t.home).length;
    const r = await cli(['daemon', 'stop']);
    expect(r.code, output(r)).toBe(0);
    const after = auditLines(t.home);
    expect(after.length).toBe(before + 1);
    expect(after.at(-1)).toMatchObject({ event: 'daemon.stop' });
  });
});
