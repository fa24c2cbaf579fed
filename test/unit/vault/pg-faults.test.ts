import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Secret } from '../../../src/secret.js';
import { connectionKey } from '../../../src/vault/keys.js';
import type { PgStore } from '../../../src/vault/pg-open.js';
import { canaryForms } from '../../helpers/canary.js';
import {
  cuttableProxy,
  hasPg,
  passwordEchoServer,
  pgUrl,
  viaPort,
  type CuttableProxy,
} from '../../helpers/pg.js';
import { pgEngine } from './engines.js';
import { expectCode } from './fixtures.js';

const a = connectionKey('alice', 'github', 'a');
const b = connectionKey('alice', 'github', 'b');
const boom = connectionKey('alice', 'github', 'boom');
const CANARY = 'CANARY-pgpw-4c1d/+=';
const FAST = { connectMs: 1000, statementMs: 1000 };

function expectNoCanary(e: Error): void {
  const text = `${e.message}\n${(e as { hint?: string }).hint ?? ''}\n${JSON.stringify(e)}\n${e.stack ?? ''}\n${String(e.cause ?? '')}`;
  for (const form of canaryForms(CANARY)) expect(text).not.toContain(form);
}

function nextStatus(opened: PgStore, want: boolean): Promise<void> {
  return new Promise((resolve) => {
    const off = opened.feed.onStatus((up) => {
      if (up === want) {
        off();
        resolve();
      }
    });
  });
}

describe.skipIf(!hasPg)('PostgreSQL store faults', () => {
  const fx = pgEngine();
  const closers: Array<() => Promise<void>> = [];
  const dirs: string[] = [];
  afterEach(async () => {
    for (const c of closers.splice(0).reverse()) await c().catch(() => undefined);
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });
  const proxy = async (): Promise<CuttableProxy> => {
    const u = new URL(pgUrl() ?? '');
    const p = await cuttableProxy(u.hostname, Number(u.port || 5432));
    closers.push(() => p.close());
    return p;
  };

  it('with the database unreachable every call fails with ERR_STORE_UNAVAILABLE, and works again after, without reopening', async () => {
    const schema = await fx.place();
    const key = fx.key();
    await (await fx.openPg(schema, key)).store.put(a, { v: 1 });
    const p = await proxy();
    const opened = await fx.openPg(schema, key, {
      url: viaPort(pgUrl() ?? '', p.port),
      mode: 'open',
      timeouts: FAST,
      feed: { pingMs: 200, initialBackoffMs: 50, maxBackoffMs: 200 },
    });
    const { store } = opened;
    expect(await store.get(a)).toEqual({ v: 1 });
    expect(opened.feed.up).toBe(true);

    const down = nextStatus(opened, false);
    p.cut();
    await down;
    expect(opened.feed.up).toBe(false);
    for (const call of [
      () => store.get(a),
      () => store.put(b, { v: 2 }),
      () => store.del(a),
      () => store.batch([{ type: 'put', key: b, value: { v: 2 } }]),
      () => store.list('profile/alice/'),
      () => store.keys('profile/alice/'),
    ]) {
      const e = await expectCode(call(), 'ERR_STORE_UNAVAILABLE');
      expect(e.message).toContain(`postgres://`);
      expect((e as { status?: number }).status).toBe(503);
    }

    const up = nextStatus(opened, true);
    p.restore();
    expect(await store.get(a)).toEqual({ v: 1 });
    await store.put(b, { v: 3 });
    expect(await store.keys('profile/alice/')).toEqual([a, b]);
    await up;
    expect(opened.feed.up).toBe(true);
  });

  it('a batch that fails part-way leaves nothing of itself (one transaction)', async () => {
    const schema = await fx.place();
    const opened = await fx.openPg(schema, fx.key());
    const { store } = opened;
    await store.put(a, { v: 1 });
    // A trigger that refuses one key: the statement fails after the other ops have run.
    await fx.schemas.admin(`CREATE FUNCTION ${schema}.refuse() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF NEW.k = convert_to('${boom}', 'UTF8') THEN RAISE EXCEPTION 'refused for the test'; END IF;
        RETURN NEW;
      END $$`);
    await fx.schemas.admin(
      `CREATE TRIGGER refuse BEFORE INSERT ON ${schema}.authsome_kv FOR EACH ROW EXECUTE FUNCTION ${schema}.refuse()`,
    );
    await expectCode(
      store.batch([
        { type: 'del', key: a },
        { type: 'put', key: b, value: { v: 2 } },
        { type: 'put', key: boom, value: { v: 3 } },
      ]),
      'ERR_STORE_UNAVAILABLE',
    );
    expect(await store.keys('profile/alice/')).toEqual([a]);
    expect(await store.get(a)).toEqual({ v: 1 });
    // The store carries on.
    await store.batch([{ type: 'put', key: b, value: { v: 2 } }]);
    expect(await store.keys('profile/alice/')).toEqual([a, b]);
  });

  it('close waits for writes in flight, and refuses calls after it', async () => {
    const schema = await fx.place();
    const key = fx.key();
    const opened = await fx.openPg(schema, key);
    const pending = opened.store.put(a, { v: 1 });
    const closing = opened.close();
    await expect(pending).resolves.toBeUndefined();
    await closing;
    await expectCode(opened.store.put(b, { v: 2 }), 'ERR_STORE_UNAVAILABLE');
    await expectCode(opened.store.get(a), 'ERR_STORE_UNAVAILABLE');
    expect(await fx.rawKeys(schema)).toContain(a);
  });

  describe('the database password', () => {
    let received: string[] = [];
    const echoUrl = async (): Promise<string> => {
      const server = await passwordEchoServer();
      closers.push(() => server.close());
      received = server.received;
      return `postgres://u@127.0.0.1:${server.port}/db`;
    };
    const open = (url: string, password: { file?: string; env?: Secret }) =>
      fx.openPg('authsome_never_created', fx.key(), { url, password, timeouts: FAST });

    it('from the environment never appears in an error, even when the server quotes it back', async () => {
      const e = await expectCode(open(await echoUrl(), { env: new Secret(CANARY) }), 'ERR_STORE_UNAVAILABLE');
      expect(received).toEqual([CANARY]); // the server got it and quoted it back: it was scrubbed
      expect(e.message).toContain('[redacted]');
      expect(e.message).toContain('postgres://u@127.0.0.1:');
      expectNoCanary(e);
    });

    it('from a file the same; the file must be private', async () => {
      const dir = mkdtempSync(join(tmpdir(), 'authsome-pgpw-'));
      dirs.push(dir);
      const file = join(dir, 'pw');
      writeFileSync(file, `${CANARY}\n`, { mode: 0o600 });
      const url = await echoUrl();
      const e = await expectCode(open(url, { file }), 'ERR_STORE_UNAVAILABLE');
      expect(e.message).toContain('[redacted]');
      expectNoCanary(e);
      if (process.platform !== 'win32') {
        chmodSync(file, 0o644);
        expectNoCanary(await expectCode(open(url, { file }), 'ERR_HOME_PERMISSIONS'));
      }
    });

    it('none configured and the server asks: a clear refusal', async () => {
      const e = await expectCode(open(await echoUrl(), {}), 'ERR_STORE_UNAVAILABLE');
      expect(e.message).toContain('asks for a password and none is configured');
    });

    it('is never sent where TLS is required and the server does not offer it', async () => {
      const url = `${await echoUrl()}?sslmode=verify-full`;
      const e = await expectCode(open(url, { env: new Secret(CANARY) }), 'ERR_STORE_UNAVAILABLE');
      expect(e.message).toMatch(/SSL/);
      expect(received).toEqual([]);
      expectNoCanary(e);
      // A CA file (store.caFile) turns verified TLS on even on loopback.
      const withCa = fx.openPg('authsome_never_created', fx.key(), {
        url: await echoUrl(),
        password: { env: new Secret(CANARY) },
        caPem: '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n',
        timeouts: FAST,
      });
      expect((await expectCode(withCa, 'ERR_STORE_UNAVAILABLE')).message).toMatch(/SSL/);
      expect(received).toEqual([]);
      // And the real test server (no TLS configured here, or not with a certificate we trust).
      const real = `${pgUrl() ?? ''}?sslmode=verify-full`;
      await expectCode(open(real, { env: new Secret(CANARY) }), 'ERR_STORE_UNAVAILABLE');
    });
  });
});
