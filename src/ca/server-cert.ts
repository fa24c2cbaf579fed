import { isIP } from 'node:net';
import type { webcrypto } from 'node:crypto';
import { leafExtensions } from './leaf.js';
import { EC_KEY, EC_SIGN, isDnsName, pkcs8Pem, randomSerial, subtle, x509 } from './x509.js';
import type { LocalCa } from './types.js';

/** How long a listener certificate is valid; the daemon mints a new one long before (remote-listen.ts). */
export const SERVER_CERT_VALIDITY_MS = 30 * 24 * 3600_000;

/**
 * The certificate of a daemon's own remote listener (SPEC section 10, `--listen`): issued by the local
 * CA (in team mode the one CA every node shares), naming exactly the address or host name callers use
 * (a dNSName, or an iPAddress for an IP literal), so one CA bundle trusts every node's listeners and
 * the leaves their proxies mint. Its key is new for every certificate and never written anywhere.
 */
export async function mintServerCert(
  ca: LocalCa,
  host: string,
  now: Date = new Date(),
): Promise<{ certPem: string; keyPem: string; notAfter: number }> {
  const ip = isIP(host) !== 0;
  if (!ip && !isDnsName(host))
    throw new TypeError('a listener certificate names a DNS name or an IP address');
  const keys = (await subtle.generateKey(EC_KEY, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
  const notAfter = Math.floor((now.getTime() + SERVER_CERT_VALIDITY_MS) / 1000) * 1000;
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: randomSerial(),
    subject: `CN=${ip ? 'authsome node' : host}, O=authsome`,
    issuer: ca.cert.subject,
    notBefore: new Date(now.getTime() - 3600_000),
    notAfter: new Date(notAfter),
    signingAlgorithm: EC_SIGN,
    publicKey: keys.publicKey,
    signingKey: ca.key,
    extensions: [
      ...(await leafExtensions(ca)),
      new x509.SubjectAlternativeNameExtension([{ type: ip ? 'ip' : 'dns', value: host }]),
    ],
  });
  const certPem = `${cert.toString('pem')}\n${ca.certPem.endsWith('\n') ? ca.certPem : `${ca.certPem}\n`}`;
  return { certPem, keyPem: pkcs8Pem(await subtle.exportKey('pkcs8', keys.privateKey)), notAfter };
}
