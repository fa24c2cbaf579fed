import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DaemonClient } from '../../src/daemon/client.js';
import type { DaemonInfo } from '../../src/daemon/daemon-file.js';
import { readIdentityKey } from '../../src/identity/index.js';
import { TestHome, type CliResult } from '../helpers/cli.js';
import { filesContaining, findCanary } from '../helpers/canary.js';
import {
  auditLines,
  daemonJson,
  kill9,
  mintSession,
  mountSmallDisk,
  output,
  pinnedUpstream,
  viaProxy,
  type Pinned,
} from './helpers.js';

/**
 * Issue 6 item 6: the disk holding AUTHSOME_HOME fills up. As root, file modes do not stop writes, so the
 * home lives on a small tmpfs that the test really fills (ENOSPC from the kernel, for the audit log and
 * for LevelDB alike) and then frees. Skipped where mounting is not allowed (not root).
 *
 * tmpfs allocates in pages, so a file can still grow into the free tail of its last page after the
 * disk is "full": the first few writes may succeed. The tests therefore write until writes fail and
 * check every outcome, rather than expecting the very first one to fail.
 */

const disk = mountSmallDisk(16 * 1024 * 1024);
const SECRET = `ghp_CANARYdisk${randomBytes(10).toString('hex')}`;
const pad = (i: number): string => String(i).padStart(3, '0');

describe.skipIf(!disk)('the disk fills up under a running daemon (tmpfs, real ENOSPC)', () => {
  let pinned: Pinned;
  let t: TestHome;
  let session: { handle: string; token: string };
  const outputs: CliResult[] = [];
  const cli = async (args: string[], input?: string): Promise<CliResult> => {
    const r = await t.run(args, input === undefined ? {} : { input });
    outputs.push(r);
    return r;
  };
  /** In-process PoP client: control-API writes in a tight loop (a CLI spawn per write is too slow). */
  const client = async (): Promise<DaemonClient> =>
    new DaemonClient(
      daemonJson(t.home) as DaemonInfo,
      'me',
      await readIdentityKey(join(t.home, 'client/identities/me.key')),
    );
  const putConnection = async (c: DaemonClient, name: string): Promise<string> => {
    try {
      await c.call('PUT', `/v1/connections/github/${name}`, {
        fields: { access_token: `${SECRET}-${name}` },
        flow: 'api-key',
      });
      return 'ok';
    } catch (e) {
      return (e as { code?: string }).code ?? String(e);
    }
  };
  const acked: string[] = [];
  const refused: string[] = [];
  const served: string[] = [];
  const denied: string[] = [];

  beforeAll(async () => {
    pinned = await pinnedUpstream();
    t = new TestHome({ ...pinned.env, AUTHSOME_HOME: join(disk!.dir, 'home') });
    const init = await cli(['init', '--profile', 'me']);
    expect(init.code, output(init)).toBe(0);
    const login = await cli(['login', 'github', '--connection', 'personal'], `${SECRET}\n`);
    expect(login.code, output(login)).toBe(0);
    session = await mintSession(t);
    expect((await viaProxy(t.home, session, '/warm')).status).toBe(200);
  });

  afterAll(async () => {
    try {
      disk?.free();
      await t?.cleanup();
      await pinned?.close();
    } finally {
      disk?.unmount();
    }
  });

  it('while full, an injection gets 503 ERR_AUDIT_UNAVAILABLE and upstream receives nothing', async () => {
    disk!.fill();
    const from = pinned.upstream.received.length;
    for (let i = 0; i < 30; i++) {
      const path = `/full-${pad(i)}`;
      const r = await viaProxy(t.home, session, path);
      if (r.status === 200) served.push(path);
      else {
        expect(r.status, r.body).toBe(503);
        expect(r.code).toBe('ERR_AUDIT_UNAVAILABLE');
        denied.push(path);
      }
    }
    // Only what was audited went out; once the page tail is used up, nothing does.
    expect(pinned.upstream.received.slice(from).map((x) => x.url)).toEqual(served);
    expect(denied.length).toBeGreaterThanOrEqual(20);
    expect(denied.slice(-5)).toEqual(Array.from({ length: 5 }, (_, k) => `/full-${pad(25 + k)}`));
  });

  it('while full, control-API writes fail cleanly with ERR_VAULT_UNAVAILABLE or ERR_AUDIT_UNAVAILABLE', async () => {
    const c = await client();
    // Write until LevelDB itself fails several times in a row (its log has a page tail to use up too;
    // until then the store write succeeds and the audit line after it fails).
    let vaultFailuresInARow = 0;
    for (let i = 0; i < 150 && vaultFailuresInARow < 3; i++) {
      const name = `full-${pad(i)}`;
      const result = await putConnection(c, name);
      if (result === 'ok') acked.push(name);
      else {
        expect(['ERR_VAULT_UNAVAILABLE', 'ERR_AUDIT_UNAVAILABLE']).toContain(result);
        refused.push(name);
      }
      vaultFailuresInARow = result === 'ERR_VAULT_UNAVAILABLE' ? vaultFailuresInARow + 1 : 0;
    }
    expect(vaultFailuresInARow).toBe(3);
    // The same through the CLI: a clear error and a next step, no secret.
    const r = await cli(['login', 'github', '--connection', 'cli-full'], `${SECRET}-cli-full\n`);
    expect(r.code, output(r)).toBe(8);
    expect(r.stderr).toMatch(/ERR_(VAULT|AUDIT)_UNAVAILABLE/);
    expect(r.stderr).toContain('next:');
    refused.push('cli-full');
  });

  it('when space returns, injections and writes work again without a restart', async () => {
    disk!.free();
    const pid = daemonJson(t.home)!.pid;
    const from = pinned.upstream.received.length;
    const r = await viaProxy(t.home, session, '/freed');
    expect(r.status, r.body).toBe(200);
    served.push('/freed');
    expect(pinned.upstream.received.slice(from).map((x) => x.url)).toEqual(['/freed']);
    const login = await cli(['login', 'github', '--connection', 'after-free'], `${SECRET}-after\n`);
    expect(login.code, output(login)).toBe(0);
    acked.push('after-free');
    const c = await client();
    for (let i = 0; i < 10; i++) {
      expect(await putConnection(c, `after-${pad(i)}`)).toBe('ok');
      acked.push(`after-${pad(i)}`);
    }
    expect(daemonJson(t.home)!.pid).toBe(pid);
  });

  it('after a kill -9, every acknowledged write is there and every record opens (none half-written)', async () => {
    expect(await kill9(t.home)).toBeDefined();
    const list = await t.json<{ connections: Array<{ connection: string; fields: string[] }> }>([
      'connection',
      'list',
      '--provider',
      'github',
    ]);
    const names = list.connections.map((x) => x.connection);
    for (const name of acked) expect(names, name).toContain(name);
    // A refused write is absent, or (stored, then its audit line failed) complete: the listing opened it.
    for (const x of list.connections) expect(x.fields).toEqual(['access_token']);
    expect(names).toContain('personal');
  });

  it('the audit log verifies, holds an inject line for every request sent and none for a refused one', async () => {
    const verify = await cli(['audit', 'verify']);
    expect(verify.code, output(verify)).toBe(0);
    const injected = auditLines(t.home)
      .filter((l) => l['event'] === 'proxy.inject')
      .map((l) => l['path']);
    for (const p of served) expect(injected).toContain(p);
    for (const p of denied) expect(injected).not.toContain(p);
  });

  it('no secret in any output or file', () => {
    for (const o of outputs) expect(findCanary(output(o), SECRET)).toBeUndefined();
    expect(filesContaining(t.home, SECRET)).toEqual([]);
  });
});
