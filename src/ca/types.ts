import type { SecureContext } from 'node:tls';

export interface LeafSource {
  /** A TLS context whose leaf certificate names exactly `host` (cached, single-flight minting). */
  secureContextFor(host: string): Promise<SecureContext>;
}
