import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cuttableProxy, pgUrl, viaPort, type CuttableProxy } from '../helpers/pg.js';
import { makeTestCa } from '../helpers/test-ca.js';
import { startUpstream, type Upstream } from '../helpers/upstream.js';
import {
  connectReply,
  freshDatabase,
  header,
  TeamNode,
  viaProxy,
  within,
  writeProvider,
  type TestDatabase,
} from '../helpers/team.js';

/**
 * SPEC section 10, faults: a node killed with -9 under load loses no acknowledged write and the others
 * keep serving; while the database is unreachable from a node, its requests that need the store fail
 * closed with 503 ERR_STORE_UNAVAILABLE and succeed again once it is back, with no restart. The
 * database is cut with a TCP proxy between that node and PostgreSQL (the machine's server keeps running).
 */
const url = pgUrl();
const HOST = 'api.acme.test';

describe.skipIf(url === undefined)('team mode: faults', () => {
  let db: TestDatabase;
  let up: Upstream;
  let a: TeamNode;
  let b: TeamNode;
  let env: NodeJS.ProcessEnv;

  beforeAll(async () => {
    db = await freshDatabase(url!);
    const ca = await makeTestCa('team faults upstream CA');
    up = await startUpstream({ cert: await ca.issue([HOST]) });
    a = new TeamNode('a');
    const caFile = join(a.t.dir, 'upstream-ca.pem');
    writeFileSync(caFile, ca.certPem);
    env = { AUTHSOME_RESOLVE: `${HOST}:443=127.0.0.1:${up.httpsPort}`, AUTHSOME_UPSTREAM_CA: caFile };
    Object.assign(a.t.env, env);
    await a.ok(['init', '--store', db.url, '--node', 'a']);
    await a.ok(['provider', 'add', writeProvider(a.t.dir, 'acme', HOST)]);
    await a.ok(['login', 'acme', '--connection', 'main'], 'sk-main\n');
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

  it('kill -9 of node A while it takes writes and B serves: every acknowledged write is there, B never fails', async () => {
    const s = await a.mint();
    const bPort = b.info().proxyPort;
    let stop = false;
    const statuses: number[] = [];
    const load = (async () => {
      while (!stop) statuses.push((await viaProxy(bPort, s, `https://${HOST}/v1/me`, a.caPem)).status);
    })();
    const acked: number[] = [];
    const pid = a.info().pid;
    // Logins through A, one after another; A is killed while one of them is in flight.
    let killed = false;
    const writes = (async () => {
      for (let i = 0; !killed && i < 50; i++) {
        const r = await a.t.run(['login', 'acme', '--connection', `c${i}`], { input: `sk-c${i}\n` });
        if (r.code === 0 && !killed) acked.push(i);
      }
    })();
    await within(30_000, async () => acked.length >= 3);
    const loadBefore = statuses.length;
    process.kill(pid, 'SIGKILL');
    killed = true;
    await writes;
    // B keeps serving after the kill (at least another second of requests, all answered 200).
    await new Promise((r) => setTimeout(r, 1000));
    await within(10_000, async () => statuses.length > loadBefore + 5);
    stop = true;
    await load;
    expect(acked.length).toBeGreaterThanOrEqual(3);
    expect(statuses.length).toBeGreaterThan(loadBefore + 5);
    expect(statuses.filter((x) => x !== 200)).toEqual([]);
    // Every acknowledged login is in the database: B injects each of them (read through, never cached).
    for (const i of acked) {
      const r = await viaProxy(bPort, s, `https://${HOST}/v1/me`, a.caPem, {
        'x-authsome-connection': `c${i}`,
      });
      expect(r.status, `connection c${i}`).toBe(200);
      expect(header(up.received.at(-1)!.rawHeaders, 'authorization')).toBe(`Bearer sk-c${i}`);
    }
    // A starts again under its own name (its pid is dead on this host) and lists the same connections.
    await a.ok(['daemon', 'start']);
    const list = JSON.parse(await a.ok(['connection', 'list', '--json'])) as {
      connections: Array<{ connection: string }>;
    };
    const names = new Set(list.connections.map((c) => c.connection));
    for (const i of acked) expect(names.has(`c${i}`), `c${i} after restart`).toBe(true);
  });

  describe('the database unreachable from one node', () => {
    let cut: CuttableProxy;
    let c: TeamNode;

    beforeAll(async () => {
      const u = new URL(url!);
      cut = await cuttableProxy(u.hostname, Number(u.port || 5432));
      c = new TeamNode('c', env);
      await c.ok([
        'init',
        '--join',
        viaPort(db.url, cut.port),
        '--master-key',
        a.masterKeyFile,
        '--node',
        'c',
      ]);
      await c.ok(['daemon', 'start']);
    }, 60_000);

    afterAll(async () => {
      cut?.restore();
      await c?.cleanup();
      await cut?.close();
    });

    it('requests that need the store get 503 ERR_STORE_UNAVAILABLE, then succeed again without a restart', async () => {
      const s = await a.mint();
      const port = c.info().proxyPort;
      const pid = c.info().pid;
      expect((await viaProxy(port, s, `https://${HOST}/v1/me`, a.caPem)).status).toBe(200);
      cut.cut();
      // Within a few seconds the node's feed is down and it reads through: every CONNECT fails closed.
      const down = await within(
        15_000,
        async () => {
          const r = await connectReply(port, s, HOST);
          return r.status === 503 && r.error === 'ERR_STORE_UNAVAILABLE';
        },
        200,
      );
      expect(down, 'no 503 ERR_STORE_UNAVAILABLE while the database was cut').toBeDefined();
      // A token minted meanwhile on A (unknown to C) is not taken for invalid either: 503, not 407.
      const fresh = await a.mint();
      const r = await connectReply(port, fresh, HOST);
      expect([r.status, r.error]).toEqual([503, 'ERR_STORE_UNAVAILABLE']);
      const seen = up.received.length;
      const more = await connectReply(port, s, HOST);
      expect(more.status).toBe(503);
      expect(up.received.length).toBe(seen);
      cut.restore();
      const back = await within(
        20_000,
        async () => {
          const x = await viaProxy(port, fresh, `https://${HOST}/v1/me`, a.caPem);
          return x.status === 200;
        },
        200,
      );
      expect(back, 'C did not serve again within 20 s of the database coming back').toBeDefined();
      expect(c.info().pid).toBe(pid); // the same process: no restart
    });
  });
});
