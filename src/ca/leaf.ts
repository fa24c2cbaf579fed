import { createSecureContext, type SecureContext } from 'node:tls';
import { KeyObject, sign, type webcrypto } from 'node:crypto';
import { certificate, leafTbs, subjectOf, type LeafTemplate } from './leaf-der.js';
import { EC_KEY, isDnsName, pemOf, pkcs8Pem, randomSerial, subtle, x509 } from './x509.js';
import type { LocalCa } from './types.js';

const HOUR_MS = 3600_000;
export const LEAF_VALIDITY_MS = 7 * 24 * HOUR_MS;

/** The extensions every leaf carries before its SAN: end-entity, digitalSignature, serverAuth, AKI. */
export async function leafExtensions(ca: LocalCa): Promise<x509.Extension[]> {
  return [
    new x509.BasicConstraintsExtension(false, undefined, true),
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
    new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth], false),
    await x509.AuthorityKeyIdentifierExtension.create(ca.cert.publicKey),
  ];
}

/**
 * Everything about a leaf that does not depend on the host, computed once: the key pair (minting a
 * key per host is the expensive part; one key for all leaves is what mitmproxy does too), its PEM,
 * and the DER of the issuer, public key and constant extensions (produced by @peculiar/x509). Each
 * leaf is then a few DER splices and one native ECDSA signature (leaf-der.ts): ~2 ms, not ~9.
 */
export class LeafMinter {
  readonly #signingKey: KeyObject;
  readonly #keyPem: string;
  readonly #chainPem: string;
  readonly #template: LeafTemplate;

  private constructor(ca: LocalCa, keyPem: string, template: LeafTemplate) {
    this.#signingKey = KeyObject.from(ca.key);
    this.#keyPem = keyPem;
    this.#chainPem = ca.certPem.endsWith('\n') ? ca.certPem : `${ca.certPem}\n`;
    this.#template = template;
  }

  static async create(ca: LocalCa): Promise<LeafMinter> {
    const keys = (await subtle.generateKey(EC_KEY, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
    const keyPem = pkcs8Pem(await subtle.exportKey('pkcs8', keys.privateKey));
    const template: LeafTemplate = {
      issuer: subjectOf(Buffer.from(ca.cert.rawData)),
      spki: Buffer.from(await subtle.exportKey('spki', keys.publicKey)),
      extensions: (await leafExtensions(ca)).map((e) => Buffer.from(e.rawData)),
    };
    return new LeafMinter(ca, keyPem, template);
  }

  /** A leaf naming exactly `host` (SAN dNSName, nothing else), valid from now-1h to now+7d. */
  async mint(
    host: string,
    nowMs: number,
  ): Promise<{ certPem: string; notAfter: number; context: SecureContext }> {
    if (!isDnsName(host)) throw new TypeError('leaf certificates are minted for canonical DNS names only');
    // X.509 stores whole seconds; the value reported is the one the certificate really carries.
    const notAfter = Math.floor((nowMs + LEAF_VALIDITY_MS) / 1000) * 1000;
    const tbs = leafTbs(this.#template, {
      serial: Buffer.from(randomSerial(), 'hex'),
      host,
      notBeforeMs: nowMs - HOUR_MS,
      notAfterMs: notAfter,
    });
    const signature = sign('sha256', tbs, { key: this.#signingKey, dsaEncoding: 'der' });
    const certPem = pemOf('CERTIFICATE', certificate(tbs, signature));
    const context = createSecureContext({
      key: this.#keyPem,
      cert: certPem + this.#chainPem,
      minVersion: 'TLSv1.2',
    });
    return { certPem, notAfter, context };
  }
}
