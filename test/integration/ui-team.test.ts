import { request, type IncomingMessage } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pgUrl } from '../helpers/pg.js';
import { freshDatabase, TeamNode, type TestDatabase } from '../helpers/team.js';

/**
 * The dashboard in team mode (SPEC 10 and 11): a session made through node A's link is accepted by
 * node B (the sessions are in the shared store), sealed there with only the cookie's hash, and ends on
 * every node when A, the node that issued it, stops.
 */
const url = pgUrl();

function get(port: number, path: string, cookie: string): Promise<{ status: number; body: string }> {
  return new Promise((ok, fail) => {
    const req = request(
      { host: '127.0.0.1', port, path, headers: { host: `127.0.0.1:${port}`, cookie } },
      (res: IncomingMessage) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString('utf8')));
        res.on('end', () => ok({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on('error', fail);
    req.end();
  });
}

describe.skipIf(url === undefined)('the dashboard on two nodes of one database', () => {
  let db: TestDatabase;
  let a: TeamNode;
  let b: TeamNode;

  beforeAll(async () => {
    db = await freshDatabase(url!);
    a = new TeamNode('a');
    await a.ok(['init', '--store', db.url, '--node', 'a']);
    b = new TeamNode('b');
    await b.ok(['init', '--join', db.url, '--master-key', a.masterKeyFile, '--node', 'b']);
    await b.ok(['daemon', 'start']);
  }, 120_000);

  afterAll(async () => {
    await b?.cleanup();
    await a?.cleanup();
    await db?.drop();
  });

  it('works on any node, and ends with the node that issued it', async () => {
    const link = new URL((await a.ok(['ui'])).trim());
    const pa = Number(link.port);
    const pb = b.info().controlPort;
    const login = await new Promise<{ status: number; cookie: string }>((ok, fail) => {
      const body = JSON.stringify({ token: link.hash.slice('#token='.length) });
      const req = request(
        {
          host: '127.0.0.1',
          port: pa,
          path: '/ui/api/login',
          method: 'POST',
          headers: {
            host: `127.0.0.1:${pa}`,
            origin: `http://127.0.0.1:${pa}`,
            'content-type': 'application/json',
            'content-length': Buffer.byteLength(body),
          },
        },
        (res) => {
          res.resume();
          ok({ status: res.statusCode ?? 0, cookie: String(res.headers['set-cookie']?.[0]).split(';')[0]! });
        },
      );
      req.on('error', fail);
      req.end(body);
    });
    expect(login.status).toBe(200);
    // Node B's cookie name is its own port's: the browser would send it to B under B's name.
    const value = login.cookie.split('=')[1]!;
    const onB = await get(pb, '/ui/api/me', `authsome-ui-${pb}=${value}`);
    expect(onB.status, onB.body).toBe(200);
    expect(JSON.parse(onB.body)).toMatchObject({ profile: 'default', node: 'b (session from a)' });
    // In the database: one sealed row under ui/session/<sha256>, and not the cookie in any form.
    const rows = await db.query<{ k: string; v: string }>(
      "SELECT encode(k, 'escape') AS k, encode(v, 'base64') AS v FROM authsome_kv WHERE encode(k, 'escape') LIKE 'ui/%'",
    );
    expect(rows.rows.map((r) => r.k)).toEqual([expect.stringMatching(/^ui\/session\/[0-9a-f]{64}$/)]);
    const dump = JSON.stringify(rows.rows);
    for (const form of [value, Buffer.from(value).toString('base64')]) expect(dump).not.toContain(form);
    // A stops: its sessions go, on every node.
    await a.ok(['daemon', 'stop']);
    expect((await get(pb, '/ui/api/me', `authsome-ui-${pb}=${value}`)).status).toBe(401);
  });
});
