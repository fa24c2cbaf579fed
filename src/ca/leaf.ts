import { createSecureContext, type SecureContext } from 'node:tls';
import type { webcrypto } from 'node:crypto';
import { EC_KEY, EC_SIGN, isDnsName, pkcs8Pem, randomSerial, subtle, x509 } from './x509.js';
import type { LocalCa } from './types.js';

const HOUR_MS = 3600_000;
export const LEAF_VALIDITY_MS = 7 * 24 * HOUR_MS;

/**
 * Everything about a leaf that does not depend on the host, computed once: the key pair (minting a
 * key per host is the expensive part; one key for all leaves is what mitmproxy does too), its PEM,
 * and the constant extensions.
 */
export class LeafMinter {
  readonly #ca: LocalCa;
  readonly #keys: webcrypto.CryptoKeyPair;
  readonly #keyPem: string;
  readonly #chainPem: string;
  readonly #constExtensions: x509.Extension[];

  private constructor(ca: LocalCa, keys: webcrypto.CryptoKeyPair, keyPem: string, aki: x509.Extension) {
    this.#ca = ca;
    this.#keys = keys;
    this.#keyPem = keyPem;
    this.#chainPem = ca.certPem.endsWith('\n') ? ca.certPem : `${ca.certPem}\n`;
    this.#constExtensions = [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth], false),
      aki,
    ];
  }

  static async create(ca: LocalCa): Promise<LeafMinter> {
    const keys = (await subtle.generateKey(EC_KEY, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
    const keyPem = pkcs8Pem(await subtle.exportKey('pkcs8', keys.privateKey));
    const aki = await x509.AuthorityKeyIdentifierExtension.create(ca.cert.publicKey);
    return new LeafMinter(ca, keys, keyPem, aki);
  }

  /** A leaf naming exactly `host` (SAN dNSName, nothing else), valid from now-1h to now+7d. */
  async mint(
    host: string,
    nowMs: number,
  ): Promise<{ certPem: string; notAfter: number; context: SecureContext }> {
    if (!isDnsName(host)) throw new TypeError('leaf certificates are minted for canonical DNS names only');
    const notAfter = nowMs + LEAF_VALIDITY_MS;
    const cert = await x509.X509CertificateGenerator.create({
      serialNumber: randomSerial(),
      subject: `CN=${host}`,
      issuer: this.#ca.cert.subject,
      notBefore: new Date(nowMs - HOUR_MS),
      notAfter: new Date(notAfter),
      signingAlgorithm: EC_SIGN,
      publicKey: this.#keys.publicKey,
      signingKey: this.#ca.key,
      extensions: [
        ...this.#constExtensions,
        new x509.SubjectAlternativeNameExtension([{ type: 'dns', value: host }], false),
      ],
    });
    const certPem = `${cert.toString('pem')}\n`;
    // X.509 stores whole seconds; report the value the certificate really carries.
    const realNotAfter = cert.notAfter.getTime();
    const context = createSecureContext({
      key: this.#keyPem,
      cert: certPem + this.#chainPem,
      minVersion: 'TLSv1.2',
    });
    return { certPem, notAfter: realNotAfter, context };
  }
}
