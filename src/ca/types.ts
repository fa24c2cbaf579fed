import type { SecureContext } from 'node:tls';
import type { webcrypto } from 'node:crypto';
import type { X509Certificate } from '@peculiar/x509';

export interface LeafSource {
  /** A TLS context whose leaf certificate names exactly `host` (cached, single-flight minting). */
  secureContextFor(host: string): Promise<SecureContext>;
}

/** The local CA as loaded from server/ca/. Only the leaf minter uses the private key. */
export interface LocalCa {
  readonly certPem: string;
  readonly cert: X509Certificate;
  readonly key: webcrypto.CryptoKey;
}

/** One minted leaf: PEM of the certificate (chain not included) and its validity end. */
export interface LeafEntry {
  readonly host: string;
  readonly certPem: string;
  readonly notAfter: number;
  readonly context: SecureContext;
}
