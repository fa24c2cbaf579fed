import type { webcrypto } from 'node:crypto';
import { EC_KEY, EC_SIGN, pkcs8Pem, randomSerial, subtle, x509 } from '../../src/ca/x509.js';
import type { LocalCa } from '../../src/ca/types.js';

/** A throwaway CA made at test time (never a committed key), able to issue server certificates. */
export interface TestCa extends LocalCa {
  issue(names: string[], opts?: { notBefore?: Date; notAfter?: Date }): Promise<ServerCert>;
}

export interface ServerCert {
  readonly certPem: string;
  readonly keyPem: string;
}

const DAY = 24 * 3600_000;

export async function makeTestCa(cn = 'authsome test CA'): Promise<TestCa> {
  const keys = (await subtle.generateKey(EC_KEY, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerial(),
    name: `CN=${cn}`,
    notBefore: new Date(Date.now() - DAY),
    notAfter: new Date(Date.now() + 30 * DAY),
    signingAlgorithm: EC_SIGN,
    keys,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  const certPem = `${cert.toString('pem')}\n`;
  const aki = await x509.AuthorityKeyIdentifierExtension.create(keys.publicKey);
  return {
    certPem,
    cert,
    key: keys.privateKey,
    async issue(names, opts = {}) {
      const leafKeys = (await subtle.generateKey(EC_KEY, true, [
        'sign',
        'verify',
      ])) as webcrypto.CryptoKeyPair;
      const leaf = await x509.X509CertificateGenerator.create({
        serialNumber: randomSerial(),
        subject: `CN=${names[0] ?? 'localhost'}`,
        issuer: cert.subject,
        notBefore: opts.notBefore ?? new Date(Date.now() - DAY),
        notAfter: opts.notAfter ?? new Date(Date.now() + 7 * DAY),
        signingAlgorithm: EC_SIGN,
        publicKey: leafKeys.publicKey,
        signingKey: keys.privateKey,
        extensions: [
          new x509.BasicConstraintsExtension(false, undefined, true),
          new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
          new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
          new x509.SubjectAlternativeNameExtension(
            names.map((n) =>
              /^[\d.]+$|:/.test(n) ? { type: 'ip' as const, value: n } : { type: 'dns' as const, value: n },
            ),
          ),
          aki,
        ],
      });
      return {
        certPem: `${leaf.toString('pem')}\n`,
        keyPem: pkcs8Pem(await subtle.exportKey('pkcs8', leafKeys.privateKey)),
      };
    },
  };
}
