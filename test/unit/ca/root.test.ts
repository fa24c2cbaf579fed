import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { X509Certificate } from 'node:crypto';
import { rootCertificates } from 'node:tls';
import { buildTrustBundle, createCa, loadCa } from '../../../src/ca/index.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'authsome-ca-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('createCa / loadCa', () => {
  it('creates an ECDSA P-256 root with the right constraints and file modes', async () => {
    const caDir = join(dir, 'server', 'ca');
    const ca = await createCa(caDir);
    expect(statSync(caDir).mode & 0o777).toBe(0o700);
    expect(statSync(join(caDir, 'ca.key')).mode & 0o777).toBe(0o600);
    expect(statSync(join(caDir, 'ca.pem')).mode & 0o777).toBe(0o644);
    const cert = new X509Certificate(readFileSync(join(caDir, 'ca.pem')));
    expect(cert.ca).toBe(true);
    expect(cert.subject).toMatch(/CN=authsome local CA [0-9a-f]{8}/);
    expect(cert.publicKey.asymmetricKeyDetails?.namedCurve).toBe('prime256v1');
    const years = (Date.parse(cert.validTo) - Date.now()) / (365.25 * 86400_000);
    expect(years).toBeGreaterThan(9.9);
    expect(years).toBeLessThan(10.1);
    expect(ca.cert.getExtension('2.5.29.19')?.critical).toBe(true);
    const loaded = await loadCa(caDir);
    expect(loaded.certPem).toBe(ca.certPem);
    expect(readFileSync(join(caDir, 'ca.key'), 'utf8')).toMatch(/^-----BEGIN PRIVATE KEY-----/);
  });

  it('never overwrites an existing CA key', async () => {
    await createCa(dir);
    await expect(createCa(dir)).rejects.toMatchObject({ code: 'ERR_HOME_EXISTS' });
  });

  it('refuses a key readable by group or others', async () => {
    await createCa(dir);
    chmodSync(join(dir, 'ca.key'), 0o640);
    await expect(loadCa(dir)).rejects.toMatchObject({
      code: 'ERR_HOME_PERMISSIONS',
      hint: expect.stringContaining('chmod 600'),
    });
  });

  it('a missing CA says to run authsome init', async () => {
    await expect(loadCa(join(dir, 'nope'))).rejects.toMatchObject({
      code: 'ERR_CA_UNAVAILABLE',
      hint: expect.stringContaining('authsome init'),
    });
  });

  it('refuses a key that does not match the certificate', async () => {
    const a = join(dir, 'a');
    const b = join(dir, 'b');
    await createCa(a);
    await createCa(b);
    writeFileSync(join(a, 'ca.pem'), readFileSync(join(b, 'ca.pem')));
    await expect(loadCa(a)).rejects.toMatchObject({ code: 'ERR_CA_UNAVAILABLE' });
  });
});

describe('buildTrustBundle', () => {
  it('system roots plus our CA, 0644, no duplicates', async () => {
    const ca = await createCa(join(dir, 'ca'));
    const out = await buildTrustBundle(ca.certPem, join(dir, 'bundle.pem'));
    const text = readFileSync(out, 'utf8');
    expect(statSync(out).mode & 0o777).toBe(0o644);
    expect(text).toContain(ca.certPem.trim());
    expect(text).toContain(rootCertificates[0]!.trim());
    const blocks = text.match(/-----BEGIN CERTIFICATE-----/g)!.length;
    expect(blocks).toBeGreaterThanOrEqual(rootCertificates.length + 1);
    const again = await buildTrustBundle(ca.certPem, out);
    expect(readFileSync(again, 'utf8')).toBe(text);
  });

  it('works without a system bundle file', async () => {
    const ca = await createCa(join(dir, 'ca'));
    const out = await buildTrustBundle(ca.certPem, join(dir, 'b.pem'), join(dir, 'missing.crt'));
    expect(readFileSync(out, 'utf8').match(/-----BEGIN CERTIFICATE-----/g)!.length).toBe(
      rootCertificates.length + 1,
    );
  });
});
