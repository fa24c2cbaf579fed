// reflect-metadata must load before @peculiar/x509 (its ASN.1 schema uses decorators).
import 'reflect-metadata';
import { webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';

// Node's own WebCrypto, so keys never leave OpenSSL and signing is native.
x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

export { x509 };
export const subtle = webcrypto.subtle;

/** ECDSA P-256: small certificates and keys, fast to sign and to verify (issue 3: not RSA). */
export const EC_KEY = { name: 'ECDSA', namedCurve: 'P-256' } as const;
export const EC_SIGN = { name: 'ECDSA', hash: 'SHA-256' } as const;

/** A positive 128-bit serial (RFC 5280 4.1.2.2: at most 20 octets, non-negative). */
export function randomSerial(): string {
  const b = webcrypto.getRandomValues(new Uint8Array(16));
  b[0] = (b[0]! & 0x7f) | 0x01;
  return Buffer.from(b).toString('hex');
}

export function pkcs8Pem(der: ArrayBuffer): string {
  return pemOf('PRIVATE KEY', Buffer.from(der));
}

/** PEM armour, 64 columns (RFC 7468): the inverse of pemBody. */
export function pemOf(label: string, der: Buffer): string {
  const b64 = der.toString('base64').replace(/.{64}/g, '$&\n').replace(/\n$/, '');
  return `-----BEGIN ${label}-----\n${b64}\n-----END ${label}-----\n`;
}

export function pemBody(pem: string, label: string): Buffer {
  const m = new RegExp(`-----BEGIN ${label}-----([A-Za-z0-9+/=\\s]+)-----END ${label}-----`).exec(pem);
  if (!m) throw new TypeError(`no ${label} PEM block`);
  return Buffer.from(m[1]!.replace(/\s+/g, ''), 'base64');
}

/** A DNS host name as the proxy canonicalises it (lower-case, no trailing dot, no IP literal). */
const LABEL = /^(?!-)[a-z0-9_-]{1,63}(?<!-)$/;
export function isDnsName(host: string): boolean {
  if (host.length === 0 || host.length > 253) return false;
  const labels = host.split('.');
  if (!labels.every((l) => LABEL.test(l))) return false;
  return !/^(\d+|0x[0-9a-f]*)$/.test(labels[labels.length - 1]!);
}
