import type { webcrypto } from 'node:crypto';
import { EC_KEY, EC_SIGN, pkcs8Pem, randomSerial, subtle, x509 } from '../../src/ca/x509.js';
import type { LocalCa } from '../../src/ca/types.js';
import type { ServerCert } from '../helpers/test-ca.js';

/** Server certificates the upstream leg must refuse: self-signed, and signed by the daemon's own CA. */
const DAY = 24 * 3600_000;

const leafExtensions = async (names: string[]): Promise<x509.Extension[]> => [
  new x509.BasicConstraintsExtension(false, undefined, true),
  new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
  new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
  new x509.SubjectAlternativeNameExtension(names.map((value) => ({ type: 'dns' as const, value }))),
];

export async function selfSigned(names: string[]): Promise<ServerCert> {
  const keys = (await subtle.generateKey(EC_KEY, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerial(),
    name: `CN=${names[0]}`,
    notBefore: new Date(Date.now() - DAY),
    notAfter: new Date(Date.now() + 7 * DAY),
    signingAlgorithm: EC_SIGN,
    keys,
    extensions: await leafExtensions(names),
  });
  return {
    certPem: cert.toString('pem'),
    keyPem: pkcs8Pem(await subtle.exportKey('pkcs8', keys.privateKey)),
  };
}

/** A leaf issued by any loaded CA (here: the daemon's local interception CA). */
export async function issueWith(ca: LocalCa, names: string[]): Promise<ServerCert> {
  const keys = (await subtle.generateKey(EC_KEY, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: randomSerial(),
    subject: `CN=${names[0]}`,
    issuer: ca.cert.subject,
    notBefore: new Date(Date.now() - DAY),
    notAfter: new Date(Date.now() + 7 * DAY),
    signingAlgorithm: EC_SIGN,
    publicKey: keys.publicKey,
    signingKey: ca.key,
    extensions: await leafExtensions(names),
  });
  return {
    certPem: cert.toString('pem'),
    keyPem: pkcs8Pem(await subtle.exportKey('pkcs8', keys.privateKey)),
  };
}
