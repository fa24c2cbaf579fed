import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { loadSettings } from '../../../src/config/settings.js';
import { connectionKey } from '../../../src/vault/keys.js';
import { openStore, type OpenedStore } from '../../../src/vault/open-store.js';
import { hasPg, pgUrl, usePgSchemas } from '../../helpers/pg.js';
import { expectCode } from './fixtures.js';

const conn = connectionKey('alice', 'github', 'work');

describe('openStore: the engine follows the settings', () => {
  const schemas = usePgSchemas();
  const homes: string[] = [];
  const opened: OpenedStore[] = [];
  afterEach(async () => {
    for (const o of opened.splice(0)) await o.close();
    for (const h of homes.splice(0)) rmSync(h, { recursive: true, force: true });
  });
  const home = (): string => {
    const h = mkdtempSync(join(tmpdir(), 'authsome-open-store-'));
    homes.push(h);
    return h;
  };
  const key = new Uint8Array(32).fill(3);

  it('no store.url: LevelDB in server/kv_store, exactly as before', async () => {
    const settings = loadSettings(home(), {});
    const s = await openStore(settings, key);
    opened.push(s);
    expect(s.engine).toBe('level');
    expect(s.location).toBe(settings.paths.kvStore);
    await s.store.put(conn, { v: 1 });
    expect(await s.store.get(conn)).toEqual({ v: 1 });
  });

  it.skipIf(!hasPg)(
    'AUTHSOME_STORE_URL: PostgreSQL, with the SQL handle for the audit and nodes tables',
    async () => {
      const schema = await schemas.fresh();
      const settings = loadSettings(home(), { AUTHSOME_STORE_URL: pgUrl() ?? '' });
      const s = await openStore(settings, key, { mode: 'create', pgOverrides: { schema, poolMax: 2 } });
      opened.push(s);
      expect(s.engine).toBe('postgres');
      expect(s.location).toMatch(/^postgres:\/\/[^:]+@/);
      expect(s.feed.up).toBe(true);
      await s.store.put(conn, { v: 1 });
      const { rows } = await s.pg!.query<{ n: number }>('SELECT count(*)::int AS n FROM authsome_kv');
      expect(rows[0]?.n).toBe(2); // the key check and our record
      await expectCode(s.pg!.query('SELECT * FROM no_such_table'), 'ERR_STORE_UNAVAILABLE');
      // The default mode is 'open': a second node joins the same database.
      const joined = await openStore(settings, key, { pgOverrides: { schema, poolMax: 2 } });
      opened.push(joined);
      expect(await joined.store.get(conn)).toEqual({ v: 1 });
    },
  );

  it('a store.caFile that is not a PEM certificate is refused before connecting', async () => {
    const h = home();
    const ca = join(h, 'ca.pem');
    writeFileSync(ca, 'not a certificate');
    const settings = loadSettings(h, {
      AUTHSOME_STORE_URL: 'postgres://u@db.example.invalid/x',
      AUTHSOME_STORE_CA_FILE: ca,
    });
    await expectCode(openStore(settings, key), 'ERR_INPUT_INVALID');
    const missing = loadSettings(h, {
      AUTHSOME_STORE_URL: 'postgres://u@db.example.invalid/x',
      AUTHSOME_STORE_CA_FILE: join(h, 'nope.pem'),
    });
    await expectCode(openStore(missing, key), 'ERR_INPUT_INVALID');
  });
});
