import { describe, expect, it } from 'vitest';
import { X509Certificate, type webcrypto } from 'node:crypto';
import { leafExtensions, LeafMinter } from '../../../src/ca/leaf.js';
import { leafTbs, subjectOf, tbsOf, tlv } from '../../../src/ca/leaf-der.js';
import { EC_KEY, EC_SIGN, randomSerial, subtle, x509 } from '../../../src/ca/x509.js';
import { makeTestCa } from '../../helpers/test-ca.js';

const HOUR = 3600_000;

describe('leaf DER (the fast minting path)', () => {
  it('is byte-identical to @peculiar/x509 for the same inputs (short, long and non-printable names; UTCTime and GeneralizedTime)', async () => {
    const ca = await makeTestCa('authsome test CA, O=authsome');
    const keys = (await subtle.generateKey(EC_KEY, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
    const extensions = await leafExtensions(ca);
    const template = {
      issuer: subjectOf(Buffer.from(ca.cert.rawData)),
      spki: Buffer.from(await subtle.exportKey('spki', keys.publicKey)),
      extensions: extensions.map((e) => Buffer.from(e.rawData)),
    };
    const long = `${'a'.repeat(63)}.${'b'.repeat(63)}.${'c'.repeat(63)}.example.test`;
    const cases: Array<[string, number]> = [
      ['api.example.test', Date.parse('2026-11-25T14:00:00.123Z')],
      ['under_score.example.test', Date.parse('2031-01-02T03:04:05Z')],
      [long, Date.parse('2049-12-31T20:00:00Z')], // notAfter in 2050: GeneralizedTime
      ['x.io', Date.parse('2060-06-01T00:00:00Z')],
    ];
    for (const [host, now] of cases) {
      const serial = randomSerial();
      const notBefore = Math.floor((now - HOUR) / 1000) * 1000;
      const notAfter = Math.floor((now + 7 * 24 * HOUR) / 1000) * 1000;
      const ref = await x509.X509CertificateGenerator.create({
        serialNumber: serial,
        subject: `CN=${host}`,
        issuer: ca.cert.subject,
        notBefore: new Date(notBefore),
        notAfter: new Date(notAfter),
        signingAlgorithm: EC_SIGN,
        publicKey: keys.publicKey,
        signingKey: ca.key,
        extensions: [...extensions, new x509.SubjectAlternativeNameExtension([{ type: 'dns', value: host }])],
      });
      const mine = leafTbs(template, {
        serial: Buffer.from(serial, 'hex'),
        host,
        notBeforeMs: now - HOUR,
        notAfterMs: notAfter,
      });
      expect(mine.toString('hex'), host).toBe(tbsOf(Buffer.from(ref.rawData)).toString('hex'));
    }
  });

  it('minted leaves verify against the CA, name the host and parse in OpenSSL', async () => {
    const ca = await makeTestCa();
    const minter = await LeafMinter.create(ca);
    const caCert = new X509Certificate(ca.certPem);
    for (const host of ['api.example.test', `${'d'.repeat(60)}.${'e'.repeat(60)}.example.test`]) {
      const leaf = await minter.mint(host, Date.now());
      const cert = new X509Certificate(leaf.certPem);
      expect(cert.verify(caCert.publicKey)).toBe(true);
      expect(cert.checkIssued(caCert)).toBe(true);
      expect(cert.subjectAltName).toBe(`DNS:${host}`);
      expect(cert.subject).toBe(`CN=${host}`);
      expect(Date.parse(cert.validTo)).toBe(leaf.notAfter);
    }
  });

  it('encodes DER lengths in short and long form, and refuses what a leaf never needs', () => {
    expect(tlv(0x04, Buffer.alloc(5)).subarray(0, 2)).toEqual(Buffer.from([0x04, 5]));
    expect(tlv(0x04, Buffer.alloc(200)).subarray(0, 3)).toEqual(Buffer.from([0x04, 0x81, 200]));
    expect(tlv(0x04, Buffer.alloc(300)).subarray(0, 4)).toEqual(Buffer.from([0x04, 0x82, 0x01, 0x2c]));
    expect(() => tlv(0x04, Buffer.alloc(70_000))).toThrow(RangeError);
    expect(() => subjectOf(Buffer.from([0x30, 0x05, 0x30]))).toThrow(RangeError);
  });
});
