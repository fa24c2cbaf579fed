import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ProxyAgent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pgUrl } from '../helpers/pg.js';
import { makeTestCa } from '../helpers/test-ca.js';
import { startUpstream, type Upstream } from '../helpers/upstream.js';
import { basic, freshDatabase, TeamNode, within, writeProvider, type TestDatabase } from '../helpers/team.js';

/**
 * SPEC sections 9 and 10 with real processes: two daemons with their own homes on one database share
 * one policy's rate counters (the requests of both nodes count against one bucket) and its held
 * approvals (a request held on B is listed through A, approved through A, and goes upstream once); a
 * node killed while holding a request leaves nothing that looks pending.
 */
const url = pgUrl();
const HOST = 'api.acme.test';
const RATE = 5;
const SECRET = `sk-team-policy-${Date.now().toString(36)}`;

interface Reply {
  status: number;
  error: string | undefined;
  retryAfter: string | undefined;
}

/** One request through a node's loopback proxy, as an agent's code would send it. */
async function send(
  proxyPort: number,
  who: { handle: string; token: string },
  caPem: string,
  method: string,
  path: string,
): Promise<Reply> {
  const agent = new ProxyAgent({
    uri: `http://127.0.0.1:${proxyPort}`,
    token: basic(who.handle, who.token),
    requestTls: { ca: caPem },
  });
  try {
    const r = await request(`https://${HOST}${path}`, {
      dispatcher: agent,
      method: method as 'GET',
      ...(method === 'POST' ? { body: 'n=1', headers: { 'content-type': 'text/plain' } } : {}),
    });
    await r.body.text();
    const h = (name: string) => {
      const v = r.headers[name];
      return typeof v === 'string' ? v : undefined;
    };
    return { status: r.statusCode, error: h('x-authsome-error'), retryAfter: h('retry-after') };
  } finally {
    await agent.close();
  }
}

describe.skipIf(url === undefined)('team mode: one policy across nodes', () => {
  let db: TestDatabase;
  let up: Upstream;
  let a: TeamNode;
  let b: TeamNode;
  let who: { handle: string; token: string };

  beforeAll(async () => {
    db = await freshDatabase(url!);
    const ca = await makeTestCa('team policy upstream CA');
    up = await startUpstream({ cert: await ca.issue([HOST]) });
    a = new TeamNode('a');
    const dir = a.t.dir;
    const caFile = join(dir, 'upstream-ca.pem');
    writeFileSync(caFile, ca.certPem);
    const env = { AUTHSOME_RESOLVE: `${HOST}:443=127.0.0.1:${up.httpsPort}`, AUTHSOME_UPSTREAM_CA: caFile };
    Object.assign(a.t.env, env);
    await a.ok(['init', '--store', db.url, '--node', 'a']);
    await a.ok(['provider', 'add', writeProvider(dir, 'acme', HOST)]);
    await a.ok(['login', 'acme', '--connection', 'main'], `${SECRET}\n`);
    b = new TeamNode('b', env);
    await b.ok(['init', '--join', db.url, '--master-key', a.masterKeyFile, '--node', 'b']);
    await b.ok(['daemon', 'start']);
    const file = join(dir, 'policy.json');
    writeFileSync(
      file,
      JSON.stringify({
        rules: [
          { provider: 'acme', methods: ['GET'], path: '/v1/**', action: 'allow', rate: `${RATE}/min` },
          { provider: 'acme', methods: ['POST'], action: 'approve' },
        ],
      }),
    );
    await a.ok(['policy', 'set', 'default', file]);
    who = await a.mint();
  }, 120_000);

  afterAll(async () => {
    await b?.cleanup();
    await a?.cleanup();
    await up?.close();
    await db?.drop();
  });

  const held = async (node: TeamNode) =>
    JSON.parse(await node.ok(['approvals', '--json'])) as Array<{
      id: string;
      method: string;
      path: string;
      profile: string;
    }>;

  it(`a rate of ${RATE}/min counts the requests of both nodes: alternating, request ${RATE + 2} is 429 with Retry-After`, async () => {
    const ports = [a.info().proxyPort, b.info().proxyPort];
    const seen = up.received.length;
    const replies: Reply[] = [];
    for (let i = 0; i < RATE + 2; i++)
      replies.push(await send(ports[i % 2]!, who, a.caPem, 'GET', `/v1/items?i=${i}`));
    expect(replies.slice(0, RATE).map((r) => r.status)).toEqual(Array(RATE).fill(200));
    // Within the limit plus one refill (one token each 12 s here): the N+1st at most, never the N+2nd.
    const last = replies[RATE + 1]!;
    expect([last.status, last.error]).toEqual([429, 'ERR_POLICY_RATE_LIMITED']);
    expect(Number(last.retryAfter)).toBeGreaterThanOrEqual(1);
    expect(Number(last.retryAfter)).toBeLessThanOrEqual(12);
    const passed = replies.filter((r) => r.status === 200).length;
    expect(passed).toBeLessThanOrEqual(RATE + 1);
    expect(up.received.length - seen).toBe(passed);
    // The bucket is one row in the database, keyed without any secret.
    const { rows } = await db.query<{ k: string }>('SELECT k FROM authsome_rate');
    expect(rows.map((r) => r.k)).toEqual([expect.stringMatching(/^default\/main\/[0-9a-f]+$/)]);
  });

  it("a request held on B is listed by A's `approvals --json`, approved through A, and reaches upstream once", async () => {
    const bPort = b.info().proxyPort;
    const path = `/v1/things?run=${Date.now()}`;
    let answeredAt = 0;
    const reply = send(bPort, who, a.caPem, 'POST', path).then((r) => ({ ...r, at: Date.now() }));
    let listed: Awaited<ReturnType<typeof held>> = [];
    const shown = await within(
      15_000,
      async () => (listed = await held(a)).some((h) => h.path === '/v1/things'),
      200,
    );
    expect(shown, "A's approvals never listed the request held on B").toBeDefined();
    expect(listed).toHaveLength(1);
    expect(listed[0]).toMatchObject({ profile: 'default', method: 'POST', path: '/v1/things' });
    expect(up.received.filter((r) => r.url === path)).toHaveLength(0); // held: nothing upstream yet
    await a.ok(['approve', listed[0]!.id]);
    answeredAt = Date.now();
    const r = await reply;
    expect(r.status).toBe(200);
    // `approve` returned only once B had taken the answer: the caller's answer follows at once.
    expect(r.at - answeredAt).toBeLessThan(1000);
    expect(up.received.filter((x) => x.url === path && x.method === 'POST')).toHaveLength(1);
    expect(await held(a)).toEqual([]);
    // The policy tables hold names, methods and paths: never the secret, in any form.
    const dump = (
      await db.query<{ row: string }>(
        `SELECT t::text AS row FROM authsome_approvals t UNION ALL SELECT t::text FROM authsome_grants t
         UNION ALL SELECT t::text FROM authsome_rate t`,
      )
    ).rows
      .map((x) => x.row)
      .join('\n');
    expect(dump).toContain('/v1/things');
    for (const form of [SECRET, Buffer.from(SECRET).toString('base64'), encodeURIComponent(SECRET)])
      expect(dump).not.toContain(form);
  });

  it('a request held on B is rejected through A: 403 ERR_POLICY_APPROVAL_REJECTED, nothing upstream', async () => {
    const path = `/v1/things?reject=${Date.now()}`;
    const reply = send(b.info().proxyPort, who, a.caPem, 'POST', path);
    let listed: Awaited<ReturnType<typeof held>> = [];
    expect(await within(15_000, async () => (listed = await held(a)).length === 1, 200)).toBeDefined();
    await a.ok(['reject', listed[0]!.id]);
    const r = await reply;
    expect([r.status, r.error]).toEqual([403, 'ERR_POLICY_APPROVAL_REJECTED']);
    expect(up.received.filter((x) => x.url === path)).toHaveLength(0);
  });

  it('a node killed with -9 while it holds a request leaves nothing pending: A stops listing it and its row ends', async () => {
    const path = `/v1/things?killed=${Date.now()}`;
    const reply = send(b.info().proxyPort, who, a.caPem, 'POST', path).catch((e: unknown) => e);
    let listed: Awaited<ReturnType<typeof held>> = [];
    expect(await within(15_000, async () => (listed = await held(a)).length === 1, 200)).toBeDefined();
    const id = listed[0]!.id;
    process.kill(b.info().pid, 'SIGKILL');
    await reply; // the client's connection died with the node
    // B's heartbeat goes stale (15 s after its last beat, every 5 s): then A neither lists the request
    // nor can approve it, and the row is rejected as node-lost (never left looking alive).
    const gone = await within(
      45_000,
      async () => {
        const { rows } = await db.query<{ status: string; reason: string | null }>(
          'SELECT status, reason FROM authsome_approvals WHERE id = $1',
          [id],
        );
        return rows[0]?.status === 'rejected' && rows[0].reason === 'node-lost';
      },
      500,
    );
    expect(gone, 'the killed node’s held request still looked pending').toBeDefined();
    expect(await held(a)).toEqual([]);
    const r = await a.t.run(['approve', id, '--json']);
    expect(r.code).toBe(3);
    expect(JSON.parse(r.stderr).error.code).toBe('ERR_APPROVAL_NOT_FOUND');
    expect(up.received.filter((x) => x.url === path)).toHaveLength(0);
  }, 90_000);
});
