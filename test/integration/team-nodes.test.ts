import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pgUrl } from '../helpers/pg.js';
import { makeTestCa } from '../helpers/test-ca.js';
import { startUpstream, type Upstream } from '../helpers/upstream.js';
import {
  freshDatabase,
  header,
  openTunnel,
  TeamNode,
  viaProxy,
  within,
  writeProvider,
  type TestDatabase,
} from '../helpers/team.js';

/**
 * SPEC section 10 with real processes: two daemons with their own homes on one fresh database. What is
 * written through one node is served by the other; a revoke through one closes the other's tunnels and
 * refuses its requests within a second; a connection or provider change reaches every node within a
 * second; a second `init --store` and a wrong master key write nothing.
 */
const url = pgUrl();
const HOST = 'api.acme.test';
const SECRET = `sk-team-${randomBytes(12).toString('hex')}`;
const SECRET2 = `sk-team2-${randomBytes(12).toString('hex')}`;

describe.skipIf(url === undefined)('team mode: two nodes on one database', () => {
  let db: TestDatabase;
  let up: Upstream;
  let a: TeamNode;
  let b: TeamNode;
  let env: NodeJS.ProcessEnv;
  let dir: string;

  beforeAll(async () => {
    db = await freshDatabase(url!);
    const ca = await makeTestCa('team test upstream CA');
    up = await startUpstream({ cert: await ca.issue([HOST, 'beta.acme.test']) });
    a = new TeamNode('a');
    dir = a.t.dir;
    const caFile = join(dir, 'upstream-ca.pem');
    writeFileSync(caFile, ca.certPem);
    env = {
      AUTHSOME_RESOLVE: `${HOST}:443=127.0.0.1:${up.httpsPort},beta.acme.test:443=127.0.0.1:${up.httpsPort}`,
      AUTHSOME_UPSTREAM_CA: caFile,
    };
    Object.assign(a.t.env, env);
    await a.ok(['init', '--store', db.url, '--node', 'a']);
    await a.ok(['provider', 'add', writeProvider(dir, 'acme', HOST)]);
    await a.ok(['login', 'acme', '--connection', 'main'], `${SECRET}\n`);
    b = new TeamNode('b', env);
    await b.ok(['init', '--join', db.url, '--master-key', a.masterKeyFile, '--node', 'b']);
    await b.ok(['daemon', 'start']);
  }, 120_000);

  afterAll(async () => {
    await b?.cleanup();
    await a?.cleanup();
    await up?.close();
    await db?.drop();
  });

  const authOf = () => header(up.received.at(-1)!.rawHeaders, 'authorization');

  it('a secret stored through node A is injected through node B, under a leaf of the one CA', async () => {
    expect(b.caPem).toBe(a.caPem);
    const s = await a.mint();
    // B's proxy, verified against A's CA file: one bundle trusts every node's leaves.
    const r = await viaProxy(b.info().proxyPort, s, `https://${HOST}/v1/me`, a.caPem);
    expect(r.status).toBe(200);
    expect(authOf()).toBe(`Bearer ${SECRET}`);
    // The nodes' rows: both registered, both running with a heartbeat.
    const { rows } = await db.query<{ name: string; pid: number | null; beat: boolean }>(
      'SELECT name, pid, heartbeat_at IS NOT NULL AS beat FROM authsome_nodes ORDER BY name',
    );
    expect(rows.map((x) => [x.name, x.pid === null, x.beat])).toEqual([
      ['a', false, true],
      ['b', false, true],
    ]);
    // Only sealed values in the database: no secret, in any form.
    const raw = await db.query<{ row: string }>(
      "SELECT encode(k, 'escape') || ' ' || encode(v, 'base64') AS row FROM authsome_kv",
    );
    const dump = raw.rows.map((x) => x.row).join('\n');
    for (const form of [SECRET, Buffer.from(SECRET).toString('base64'), Buffer.from(SECRET).toString('hex')])
      expect(dump).not.toContain(form);
  });

  it('a revoke through A closes the tunnel open on B and B refuses the token, within 1 s', async () => {
    const s = await a.mint();
    const port = b.info().proxyPort;
    const tunnel = await openTunnel(port, s, HOST, a.caPem);
    expect((await viaProxy(port, s, `https://${HOST}/v1/me`, a.caPem)).status).toBe(200);
    await a.ok(['proxy', 'revoke', s.id]);
    const revokedAt = Date.now();
    const closed = await Promise.race([
      tunnel.closed.then(() => Date.now() - revokedAt),
      new Promise<undefined>((r) => setTimeout(() => r(undefined), 1000)),
    ]);
    expect(closed, 'the tunnel on B was still open 1 s after the revoke on A').toBeDefined();
    const refused = await within(
      1000,
      async () => (await viaProxy(port, s, `https://${HOST}/v1/me`, a.caPem)).status === 407,
    );
    expect(refused, 'B still accepted the revoked token 1 s after the revoke').toBeDefined();
  });

  it('a connection replaced or removed through A takes effect on B within 1 s (its 30 s cache dropped)', async () => {
    const s = await a.mint();
    const port = b.info().proxyPort;
    const call = () => viaProxy(port, s, `https://${HOST}/v1/me`, a.caPem);
    expect((await call()).status).toBe(200);
    expect(authOf()).toBe(`Bearer ${SECRET}`); // now cached on B
    await a.ok(['login', 'acme', '--connection', 'main'], `${SECRET2}\n`);
    const replaced = await within(
      1000,
      async () => (await call()).status === 200 && authOf() === `Bearer ${SECRET2}`,
    );
    expect(replaced, 'B still injected the old secret 1 s after the change').toBeDefined();
    await a.ok(['connection', 'remove', 'acme', '--connection', 'main']);
    const removed = await within(1000, async () => {
      const before = up.received.length;
      const r = await call();
      // No connection left: the request goes on without a credential (SPEC: public APIs keep working).
      return r.status === 200 && up.received.length > before && authOf() === undefined;
    });
    expect(removed, 'B still injected a removed connection 1 s after the removal').toBeDefined();
    await a.ok(['login', 'acme', '--connection', 'main'], `${SECRET}\n`);
  });

  it('a policy set through A is enforced by B within 1 s, and its clearing too', async () => {
    const s = await a.mint();
    const port = b.info().proxyPort;
    const call = () => viaProxy(port, s, `https://${HOST}/v1/me`, a.caPem);
    expect((await call()).status).toBe(200); // B has compiled "no policy" for this profile
    const file = join(dir, 'deny-acme.json');
    writeFileSync(file, JSON.stringify({ rules: [{ provider: 'acme', action: 'deny' }] }));
    await a.ok(['policy', 'set', 'default', file]);
    const denied = await within(1000, async () => (await call()).status === 403);
    expect(denied, 'B still allowed the request 1 s after the policy was set on A').toBeDefined();
    await a.ok(['policy', 'clear', 'default']);
    const allowed = await within(1000, async () => (await call()).status === 200);
    expect(allowed, 'B still denied the request 1 s after the policy was cleared on A').toBeDefined();
  });

  it('a custom provider added through A is used by B within 1 s', async () => {
    const s = await a.mint();
    const port = b.info().proxyPort;
    await a.ok(['provider', 'add', writeProvider(dir, 'beta', 'beta.acme.test')]);
    await a.ok(['login', 'beta', '--connection', 'x'], `${SECRET2}\n`);
    const seen = await within(1000, async () => {
      const r = await viaProxy(port, s, 'https://beta.acme.test/v1/me', a.caPem);
      return r.status === 200 && authOf() === `Bearer ${SECRET2}`;
    });
    expect(seen, 'B did not inject through the provider added on A within 1 s').toBeDefined();
  });

  it('a second `init --store` on the initialised database is refused (ERR_STORE_INITIALISED), writing nothing', async () => {
    const before = await db.query('SELECT k, v FROM authsome_kv ORDER BY k');
    const x = new TeamNode('x', env);
    try {
      const r = await x.t.run(['init', '--store', db.url, '--node', 'x', '--json']);
      expect(r.code).toBe(3);
      expect(JSON.parse(r.stderr).error.code).toBe('ERR_STORE_INITIALISED');
      expect(existsSync(x.home)).toBe(false);
      expect((await db.query('SELECT k, v FROM authsome_kv ORDER BY k')).rows).toEqual(before.rows);
      expect((await db.query("SELECT 1 FROM authsome_nodes WHERE name = 'x'")).rows).toEqual([]);
    } finally {
      await x.cleanup();
    }
  });

  it('a joining node with a wrong master key: sealed, nothing written in its home or the database', async () => {
    const before = {
      kv: (await db.query('SELECT k, v FROM authsome_kv ORDER BY k')).rows,
      nodes: (await db.query('SELECT name FROM authsome_nodes ORDER BY name')).rows,
    };
    const c = new TeamNode('c', env);
    try {
      const wrong = join(c.t.dir, 'wrong.key');
      writeFileSync(wrong, `${randomBytes(32).toString('base64')}\n`, { mode: 0o600 });
      const r = await c.t.run(['init', '--join', db.url, '--master-key', wrong, '--node', 'c', '--json']);
      expect(r.code).toBe(8);
      const err = JSON.parse(r.stderr).error as { code: string; message: string };
      expect(err.code).toBe('ERR_VAULT_SEALED');
      expect(err.message).toContain('nothing was written');
      expect(existsSync(c.home)).toBe(false);
      expect((await db.query('SELECT k, v FROM authsome_kv ORDER BY k')).rows).toEqual(before.kv);
      expect((await db.query('SELECT name FROM authsome_nodes ORDER BY name')).rows).toEqual(before.nodes);
    } finally {
      await c.cleanup();
    }
  });

  it("a node name held by a running node is refused at join (ERR_NODE_NAME_IN_USE), and B's own name at a second start", async () => {
    const c = new TeamNode('c', env);
    try {
      const r = await c.t.run([
        'init',
        '--join',
        db.url,
        '--master-key',
        a.masterKeyFile,
        '--node',
        'b',
        '--json',
      ]);
      expect(r.code).toBe(3);
      expect(JSON.parse(r.stderr).error.code).toBe('ERR_NODE_NAME_IN_USE');
      expect(existsSync(c.home)).toBe(false);
    } finally {
      await c.cleanup();
    }
    // Another home that took the name "b" while B was stopped cannot start while B runs.
    const twin = new TeamNode('b2', env);
    try {
      await b.ok(['daemon', 'stop']);
      await twin.ok(['init', '--join', db.url, '--master-key', a.masterKeyFile, '--node', 'b']);
      await b.ok(['daemon', 'start']);
      const r = await twin.t.run(['daemon', 'start', '--json']);
      expect(r.code, r.stderr).toBe(3);
      expect(JSON.parse(r.stderr).error.code).toBe('ERR_NODE_NAME_IN_USE');
    } finally {
      await twin.cleanup();
    }
  });
});
