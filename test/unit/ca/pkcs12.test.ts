import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { X509Certificate } from 'node:crypto';
import { rootCertificates } from 'node:tls';
import { AsnConvert, OctetString } from '@peculiar/asn1-schema';
import { ContentInfo, id_data } from '@peculiar/asn1-cms';
import {
  AuthenticatedSafe,
  CertBag,
  id_certBag,
  id_x509Certificate,
  PFX,
  PKCS12Attribute,
  SafeBag,
  SafeContents,
} from '@peculiar/asn1-pfx';
import { trustStorePkcs12 } from '../../../src/ca/pkcs12.js';

/** The same trust store built with @peculiar/asn1-pfx's object model (slow, but the reference). */
function reference(certs: ReadonlyArray<{ der: Buffer; alias: string }>): Buffer {
  const ab = (b: Buffer) => new Uint8Array(b).buffer;
  const attr = (attrId: string, value: Buffer) =>
    Object.assign(new PKCS12Attribute(), { attrId, attrValues: [ab(value)] });
  const data = (content: ArrayBuffer) =>
    new ContentInfo({ contentType: id_data, content: AsnConvert.serialize(new OctetString(content)) });
  const bags = certs.map(
    (c) =>
      new SafeBag({
        bagId: id_certBag,
        bagValue: AsnConvert.serialize(
          new CertBag({
            certId: id_x509Certificate,
            certValue: AsnConvert.serialize(new OctetString(ab(c.der))),
          }),
        ),
        bagAttributes: [
          attr(
            '1.2.840.113549.1.9.20',
            Buffer.concat([
              Buffer.from([0x1e, c.alias.length * 2]),
              Buffer.from(c.alias, 'utf16le').swap16(),
            ]),
          ),
          attr('2.16.840.1.113894.746875.1.1', Buffer.from([0x06, 0x04, 0x55, 0x1d, 0x25, 0x00])),
        ],
      }),
  );
  const safe = new AuthenticatedSafe([data(AsnConvert.serialize(new SafeContents(bags)))]);
  const pfx = new PFX({ version: 3, authSafe: data(AsnConvert.serialize(safe)) });
  delete (pfx as Partial<PFX>).macData;
  return Buffer.from(AsnConvert.serialize(pfx));
}

const certs = rootCertificates
  .slice(0, 5)
  .map((pem, i) => ({ der: new X509Certificate(pem).raw, alias: `root-${i}` }));

describe('trustStorePkcs12', () => {
  it('is byte-identical to @peculiar/asn1-pfx’s encoding of the same store', () => {
    expect(trustStorePkcs12(certs).toString('hex')).toBe(reference(certs).toString('hex'));
  });

  it('handles every system root in milliseconds, with long-form lengths past 64 KiB', () => {
    const all = rootCertificates.map((pem, i) => ({ der: new X509Certificate(pem).raw, alias: `r${i}` }));
    const p12 = trustStorePkcs12(all);
    expect(p12.length).toBeGreaterThan(0x10000);
    expect(p12.subarray(0, 2)).toEqual(Buffer.from([0x30, 0x83]));
  });

  const keytool = spawnSync('keytool', ['-help']).error === undefined;
  it.runIf(keytool)('keytool lists every certificate as a trusted certificate entry', () => {
    const dir = mkdtempSync(join(tmpdir(), 'authsome-p12-'));
    try {
      writeFileSync(join(dir, 't.p12'), trustStorePkcs12(certs));
      const r = spawnSync('keytool', [
        '-list',
        '-storetype',
        'PKCS12',
        '-keystore',
        join(dir, 't.p12'),
        '-storepass',
        'authsome',
      ]);
      expect(r.stdout.toString().match(/trustedCertEntry/g)).toHaveLength(5);
      expect(r.stdout.toString()).toContain('root-4,');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
