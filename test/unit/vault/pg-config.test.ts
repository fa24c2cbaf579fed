import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { loadSettings } from '../../../src/config/settings.js';
import { clientConfig, DEFAULT_TIMEOUTS, parsePgUrl, Scrubber } from '../../../src/vault/pg-config.js';
import { canaryForms } from '../../helpers/canary.js';
import { expectCode } from './fixtures.js';

const CANARY = 'CANARY-pw-9f3a/+=';

function expectNoCanary(e: Error): void {
  const text = `${e.message}\n${(e as { hint?: string }).hint ?? ''}\n${JSON.stringify(e)}\n${e.stack ?? ''}`;
  for (const form of canaryForms(CANARY)) expect(text).not.toContain(form);
}

describe('store URL', () => {
  it('takes user, host, port and database; TLS off on loopback by default', () => {
    expect(parsePgUrl('postgres://authsome@127.0.0.1:5433/vault')).toEqual({
      host: '127.0.0.1',
      port: 5433,
      user: 'authsome',
      database: 'vault',
      tls: false,
      display: 'postgres://authsome@127.0.0.1:5433/vault',
    });
    expect(parsePgUrl('postgresql://u@localhost/db')).toMatchObject({ port: 5432, tls: false });
    expect(parsePgUrl('postgres://u@[::1]/db')).toMatchObject({ host: '::1', tls: false });
    expect(parsePgUrl('postgres://u@[::1]/db').display).toBe('postgres://u@[::1]:5432/db');
    expect(parsePgUrl('postgres://u@127.0.0.1/db?sslmode=verify-full').tls).toBe(true);
    expect(parsePgUrl('postgres://u@127.0.0.1/db?sslmode=disable').tls).toBe(false);
  });

  it('requires verified TLS off loopback, and refuses to turn it off', async () => {
    for (const host of ['db.example.com', '10.0.0.5', '[fd00::5]', '192.0.2.2']) {
      expect(parsePgUrl(`postgres://u@${host}/db`).tls).toBe(true);
      expect(parsePgUrl(`postgres://u@${host}/db?sslmode=verify-full`).tls).toBe(true);
      await expectCode(() => parsePgUrl(`postgres://u@${host}/db?sslmode=disable`), 'ERR_INPUT_INVALID');
    }
    // Only verify-full semantics exist: the weaker libpq modes are refused, not quietly mapped.
    for (const mode of ['require', 'prefer', 'allow', 'verify-ca', 'no-verify']) {
      await expectCode(
        () => parsePgUrl(`postgres://u@db.example.com/db?sslmode=${mode}`),
        'ERR_INPUT_INVALID',
      );
    }
    const remote = clientConfig(parsePgUrl('postgres://u@db.example.com/db'), {
      password: async () => 'x',
      caPem: '-----BEGIN CERTIFICATE-----\n…',
      schema: 'public',
      timeouts: DEFAULT_TIMEOUTS,
      applicationName: 't',
    });
    expect(remote.ssl).toEqual({ rejectUnauthorized: true, ca: '-----BEGIN CERTIFICATE-----\n…' });
    const local = clientConfig(parsePgUrl('postgres://u@127.0.0.1/db'), {
      password: async () => 'x',
      caPem: undefined,
      schema: 'public',
      timeouts: DEFAULT_TIMEOUTS,
      applicationName: 't',
    });
    expect(local.ssl).toBe(false);
    expect(local.options).toContain('synchronous_commit=on');
  });

  it('refuses a password in the URL (user:pw@ or ?password=) without quoting it', async () => {
    for (const url of [
      `postgres://u:${encodeURIComponent(CANARY)}@db.example.com/db`,
      `postgres://u@db.example.com/db?password=${encodeURIComponent(CANARY)}`,
      `postgres://u:${encodeURIComponent(CANARY)}@db.example.com:notaport/db`,
      `postgres://u@db.example.com/db?options=${encodeURIComponent(CANARY)}`,
    ]) {
      expectNoCanary(await expectCode(() => parsePgUrl(url), 'ERR_INPUT_INVALID'));
    }
  });

  it('refuses other schemes, a missing user or database, and any other parameter', async () => {
    for (const url of [
      'mysql://u@h/db',
      'postgres://h/db',
      'postgres://u@h',
      'postgres://u@h/',
      'postgres://u@h/a/b',
      'postgres://u@h/db?application_name=x',
      'postgres://u@h/db#frag',
      'not a url',
    ]) {
      await expectCode(() => parsePgUrl(url), 'ERR_INPUT_INVALID');
    }
  });
});

describe('scrubbing', () => {
  it('removes every form of a known secret and any URL password', () => {
    const s = new Scrubber();
    s.add(CANARY);
    const b = Buffer.from(CANARY);
    const text = `a ${CANARY} b ${encodeURIComponent(CANARY)} c ${b.toString('base64')} d ${b.toString('base64url')} postgres://u:other@h/db password=other2`;
    const out = s.scrub(text);
    for (const form of canaryForms(CANARY).slice(0, 3)) expect(out).not.toContain(form);
    expect(out).not.toContain('other');
    expect(out).toContain('postgres://u:[redacted]@h/db');
  });
});

describe('store settings', () => {
  const homes: string[] = [];
  afterEach(() => {
    for (const h of homes.splice(0)) rmSync(h, { recursive: true, force: true });
  });
  const home = (config?: object): string => {
    const h = mkdtempSync(join(tmpdir(), 'authsome-settings-'));
    homes.push(h);
    if (config !== undefined) {
      mkdirSync(join(h, 'server'), { recursive: true });
      writeFileSync(join(h, 'server', 'config.json'), JSON.stringify(config));
    }
    return h;
  };

  it('leave the store unset (LevelDB) by default', () => {
    expect(loadSettings(home(), {}).store).toEqual({
      url: undefined,
      passwordFile: undefined,
      password: undefined,
      caFile: undefined,
    });
  });

  it('read store.* from server/config.json, paths relative to server/, and env over file', () => {
    const h = home({
      store: { url: 'postgres://a@db.example.com/x', passwordFile: 'pw', caFile: '/etc/ca.pem' },
    });
    const s = loadSettings(h, {}).store;
    expect(s).toMatchObject({
      url: 'postgres://a@db.example.com/x',
      passwordFile: join(h, 'server', 'pw'),
      caFile: '/etc/ca.pem',
    });
    const e = loadSettings(h, {
      AUTHSOME_STORE_URL: 'postgres://b@127.0.0.1/y',
      AUTHSOME_STORE_PASSWORD_FILE: '/run/secrets/pg',
      PGPASSWORD: CANARY,
    }).store;
    expect(e.url).toBe('postgres://b@127.0.0.1/y');
    expect(e.passwordFile).toBe('/run/secrets/pg');
    expect(e.password?.reveal()).toBe(CANARY);
    // A Secret: printing the settings does not show it.
    expect(JSON.stringify(e)).not.toContain(CANARY);
    expect(
      loadSettings(h, { AUTHSOME_STORE_PASSWORD: 'first', PGPASSWORD: 'second' }).store.password?.reveal(),
    ).toBe('first');
  });

  it('refuse a URL holding a password, from either place, without quoting it', async () => {
    const url = `postgres://u:${CANARY.replace('/', '%2F')}@db.example.com/x`;
    expectNoCanary(await expectCode(() => loadSettings(home({ store: { url } }), {}), 'ERR_INPUT_INVALID'));
    expectNoCanary(
      await expectCode(() => loadSettings(home(), { AUTHSOME_STORE_URL: url }), 'ERR_INPUT_INVALID'),
    );
  });
});
