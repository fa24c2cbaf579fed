import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestHome, type CliResult } from '../helpers/cli.js';
import { filesContaining, findCanary } from '../helpers/canary.js';
import {
  daemonJson,
  dumpStore,
  mintSession,
  output,
  pinnedUpstream,
  viaProxy,
  withRawStore,
  type Pinned,
} from './helpers.js';

/**
 * Issue 6 item 6, first bullet: damaged records in the real store of a real daemon. The bytes are edited
 * with LevelDB while the daemon is stopped (the same key encoding the vault uses); the daemon must name
 * the damaged record (never its plaintext), keep serving the others, and rewrite nothing.
 */

const PERSONAL = `ghp_CANARYpers${randomBytes(10).toString('hex')}`;
const WORK = `ghp_CANARYwork${randomBytes(10).toString('hex')}`;
const OPENAI = `sk-CANARYopenai${randomBytes(10).toString('hex')}`;
const OTHER = `ghp_CANARYother${randomBytes(10).toString('hex')}`;
const SECRETS = [PERSONAL, WORK, OPENAI, OTHER];

const K_PERSONAL = 'profile/me/conn/github/personal';
const K_DEFAULT = 'profile/me/default/openai';

describe('damaged vault records (real daemon, real LevelDB)', () => {
  let pinned: Pinned;
  let t: TestHome;
  let session: { handle: string; token: string };
  let pristine: Array<[string, string]>;
  const outputs: CliResult[] = [];
  const cli = async (args: string[], input?: string): Promise<CliResult> => {
    const r = await t.run(args, input === undefined ? {} : { input });
    outputs.push(r);
    return r;
  };
  const stop = async (): Promise<void> => {
    expect((await cli(['daemon', 'stop'])).code).toBe(0);
  };
  const bearerSeen = (from: number): string[] =>
    pinned.upstream.received
      .slice(from)
      .flatMap((r) =>
        r.rawHeaders.filter((_, i) => i % 2 === 1 && r.rawHeaders[i - 1]!.toLowerCase() === 'authorization'),
      );

  beforeAll(async () => {
    pinned = await pinnedUpstream();
    t = new TestHome(pinned.env);
    expect((await cli(['init', '--profile', 'me'])).code).toBe(0);
    expect((await cli(['login', 'github', '--connection', 'personal'], `${PERSONAL}\n`)).code).toBe(0);
    // personal first (it becomes github's default), the rest side by side to keep the suite fast.
    const rest = await Promise.all([
      cli(['login', 'github', '--connection', 'work'], `${WORK}\n`),
      cli(['login', 'openai'], `${OPENAI}\n`),
      ...DAMAGES.map((d) => cli(['login', 'github', '--connection', d.name], `${OTHER}\n`)),
      mintSession(t).then((s) => {
        session = s;
        return { code: 0, stdout: '', stderr: '' };
      }),
    ]);
    for (const r of rest) expect(r.code, output(r)).toBe(0);
    await stop();
    pristine = await dumpStore(t.home);
  });

  afterAll(async () => {
    await t.cleanup();
    await pinned.close();
  });

  /** The proxy refuses the damaged connection with 503 naming the record, and sends nothing upstream. */
  async function expectProxyRefuses(
    connection: string | undefined,
    key: string,
    host?: string,
  ): Promise<void> {
    const from = pinned.upstream.received.length;
    const r = await viaProxy(t.home, session, `/refused-${from}`, {
      ...(connection ? { connection } : {}),
      ...(host ? { host } : {}),
    });
    expect(r.status, r.body).toBe(503);
    expect(r.code).toBe('ERR_VAULT_CORRUPT');
    expect(r.body).toContain(key);
    for (const s of SECRETS) expect(findCanary(r.body, s)).toBeUndefined();
    expect(pinned.upstream.received.length).toBe(from);
  }

  /** One kind of damage per record; all applied at once so that one daemon run checks them all. */
  const DAMAGES: Array<{
    name: string;
    damage: (own: Uint8Array, get: (k: string) => Uint8Array) => Uint8Array;
  }> = [
    { name: 'transplanted', damage: (_own, get) => get(K_PERSONAL) },
    { name: 'flip-tag', damage: (v) => flip(v, v.length - 1) },
    { name: 'flip-ciphertext', damage: (v) => flip(v, 30) },
    { name: 'flip-nonce', damage: (v) => flip(v, 5) },
    { name: 'flip-version', damage: (v) => flip(v, 0) },
    { name: 'cut-tag', damage: (v) => v.subarray(0, v.length - 1) },
    { name: 'cut-short', damage: (v) => v.subarray(0, 10) },
    { name: 'cut-empty', damage: (v) => v.subarray(0, 0) },
  ];
  const keyOf = (name: string): string => `profile/me/conn/github/${name}`;
  let damaged: Array<[string, string]>;

  it('damage: a transplanted value, flipped bytes and truncated values, written with LevelDB while stopped', async () => {
    await withRawStore(t.home, async (db) => {
      const snapshot = new Map<string, Uint8Array>();
      for await (const [k, v] of db.iterator()) snapshot.set(k, Uint8Array.from(v));
      const get = (k: string): Uint8Array => Uint8Array.from(snapshot.get(k) ?? []);
      for (const d of DAMAGES) await db.put(keyOf(d.name), d.damage(get(keyOf(d.name)), get));
      const def = get(K_DEFAULT);
      await db.put(K_DEFAULT, flip(def, def.length - 3));
    });
    damaged = await dumpStore(t.home);
    expect(damaged.length).toBe(pristine.length);
    expect(
      damaged
        .filter(([k, v]) => pristine.find(([pk]) => pk === k)?.[1] !== v)
        .map(([k]) => k)
        .sort(),
    ).toEqual([...DAMAGES.map((d) => keyOf(d.name)), K_DEFAULT].sort());
  });

  it.each(DAMAGES.map((d) => d.name))(
    '%s: the proxy answers 503 naming the record and sends nothing upstream',
    async (name) => {
      if (!daemonJson(t.home)) expect((await cli(['daemon', 'start'])).code).toBe(0);
      await expectProxyRefuses(name, keyOf(name));
    },
  );

  it.each(['transplanted', 'flip-tag', 'cut-short'])(
    '%s: the CLI names the record and the code, with a next step',
    async (name) => {
      const r = await cli(['connection', 'show', 'github', '--connection', name]);
      expect(r.code, output(r)).toBe(8);
      expect(r.stderr).toContain('ERR_VAULT_CORRUPT');
      expect(r.stderr).toContain(keyOf(name));
      expect(r.stderr).toMatch(/next:/);
    },
  );

  it('a damaged default record fails the requests that rely on it; an explicit connection still works', async () => {
    await expectProxyRefuses(undefined, K_DEFAULT, 'api.openai.com');
    const from = pinned.upstream.received.length;
    const explicit = await viaProxy(t.home, session, '/explicit', {
      host: 'api.openai.com',
      connection: 'default',
    });
    expect(explicit.status, explicit.body).toBe(200);
    expect(bearerSeen(from)).toEqual([`Bearer ${OPENAI}`]);
  });

  it('`connection list` reads every record of the profile: it fails loudly, naming a damaged record', async () => {
    const list = await cli(['connection', 'list']);
    expect(list.code).toBe(8);
    expect(list.stderr).toContain('ERR_VAULT_CORRUPT');
    expect(list.stderr).toMatch(/profile\/me\/(conn\/github\/[a-z-]+|default\/openai)/);
  });

  it('every other record is still served: CLI reads and injections with an explicit connection', async () => {
    const r = await cli(['connection', 'show', 'github', '--connection', 'work']);
    expect(r.code, output(r)).toBe(0);
    const from = pinned.upstream.received.length;
    expect((await viaProxy(t.home, session, '/p', { connection: 'personal' })).status).toBe(200);
    expect((await viaProxy(t.home, session, '/w', { connection: 'work' })).status).toBe(200);
    expect(bearerSeen(from)).toEqual([`Bearer ${PERSONAL}`, `Bearer ${WORK}`]);
  });

  it('`run` still starts its command: it needs the connection names only, which the keys give', async () => {
    const r = await cli(['run', '--', 'sh', '-c', 'echo "ran:$GITHUB_TOKEN"']);
    expect(r.code, output(r)).toBe(0);
    expect(r.stdout).toContain('ran:authsome-managed');
  });

  it('nothing was rewritten: after the daemon stops, every record is byte for byte as damaged', async () => {
    await stop();
    expect(await dumpStore(t.home)).toEqual(damaged);
  });

  it('after a repair (the original bytes put back) everything works again and the audit chain holds', async () => {
    await withRawStore(t.home, async (db) => {
      for (const [k, v] of pristine) await db.put(k, Buffer.from(v, 'hex'));
    });
    expect(await dumpStore(t.home)).toEqual(pristine);
    expect((await cli(['daemon', 'start'])).code).toBe(0);
    const from = pinned.upstream.received.length;
    expect((await viaProxy(t.home, session, '/after')).status).toBe(200);
    expect((await viaProxy(t.home, session, '/after', { connection: 'flip-tag' })).status).toBe(200);
    expect((await viaProxy(t.home, session, '/after', { host: 'api.openai.com' })).status).toBe(200);
    expect(bearerSeen(from)).toEqual([`Bearer ${PERSONAL}`, `Bearer ${OTHER}`, `Bearer ${OPENAI}`]);
    expect((await cli(['audit', 'verify'])).code).toBe(0);
  });

  it('no secret reached any CLI output, the daemon log, the audit log or a file in the home', async () => {
    const daemonLog = readFileSync(join(t.home, 'server/daemon.log'), 'utf8');
    for (const s of SECRETS) {
      for (const o of outputs) expect(findCanary(output(o), s)).toBeUndefined();
      expect(findCanary(daemonLog, s)).toBeUndefined();
      expect(filesContaining(t.home, s)).toEqual([]);
    }
  });
});

function flip(v: Uint8Array, i: number): Uint8Array {
  const out = Uint8Array.from(v);
  out[i] = (out[i] ?? 0) ^ 0x01;
  return out;
}
