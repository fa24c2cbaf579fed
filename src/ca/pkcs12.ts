/**
 * A PKCS#12 (RFC 7292) trust store for Java (`-Djavax.net.ssl.trustStoreType=PKCS12`), written as DER
 * from parts. @peculiar/asn1-pfx models the same structure, but serialising ~150 system roots through
 * its generic ASN.1 layer takes 2-3 s, and `run` builds this file whenever the CA changes; assembled
 * here it takes milliseconds. A unit test checks the output is byte-identical to @peculiar/asn1-pfx's
 * for the same certificates, and the Java integration test loads it.
 */

/** Tag-length-value with DER's definite length (long form for 128 bytes and more). */
function tlv(tag: number, ...content: Buffer[]): Buffer {
  const body = content.length === 1 ? content[0]! : Buffer.concat(content);
  const n = body.length;
  if (n < 0x80) return Buffer.concat([Buffer.from([tag, n]), body]);
  const len: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) len.unshift(v & 0xff);
  return Buffer.concat([Buffer.from([tag, 0x80 | len.length, ...len]), body]);
}

const SEQUENCE = 0x30;
const SET = 0x31;
const INTEGER = 0x02;
const OCTET_STRING = 0x04;
const OID = 0x06;
const BMP_STRING = 0x1e;
/** [0] EXPLICIT (constructed, context-specific 0). */
const EXPLICIT_0 = 0xa0;

const oid = (bytes: number[]): Buffer => tlv(OID, Buffer.from(bytes));
/** pkcs7-data 1.2.840.113549.1.7.1 */
const ID_DATA = oid([0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x01]);
/** pkcs-12 certBag 1.2.840.113549.1.12.10.1.3 */
const ID_CERT_BAG = oid([0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x0c, 0x0a, 0x01, 0x03]);
/** x509Certificate 1.2.840.113549.1.9.22.1 */
const ID_X509_CERTIFICATE = oid([0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x16, 0x01]);
/** PKCS#9 friendlyName 1.2.840.113549.1.9.20: the alias a Java KeyStore lists the entry under. */
const ID_FRIENDLY_NAME = oid([0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x14]);
/**
 * Oracle's "trusted key usage" bag attribute 2.16.840.1.113894.746875.1.1. Java's PKCS12 KeyStore treats
 * a certificate bag as a trusted certificate entry (what a trust store is made of) only when it carries
 * this attribute; keytool writes it with anyExtendedKeyUsage for every `-importcert`.
 */
const ID_ORACLE_TRUSTED_KEY_USAGE = oid([
  0x60, 0x86, 0x48, 0x01, 0x86, 0xf9, 0x66, 0xad, 0xca, 0x7b, 0x01, 0x01,
]);
/** anyExtendedKeyUsage 2.5.29.37.0 */
const ANY_EXTENDED_KEY_USAGE = oid([0x55, 0x1d, 0x25, 0x00]);

/** ContentInfo { pkcs7-data, [0] EXPLICIT OCTET STRING } */
function dataContent(der: Buffer): Buffer {
  return tlv(SEQUENCE, ID_DATA, tlv(EXPLICIT_0, tlv(OCTET_STRING, der)));
}

function certBag(certDer: Buffer, alias: string): Buffer {
  const value = tlv(SEQUENCE, ID_X509_CERTIFICATE, tlv(EXPLICIT_0, tlv(OCTET_STRING, certDer)));
  const friendlyName = tlv(
    SEQUENCE,
    ID_FRIENDLY_NAME,
    tlv(SET, tlv(BMP_STRING, Buffer.from(alias, 'utf16le').swap16())),
  );
  const trusted = tlv(SEQUENCE, ID_ORACLE_TRUSTED_KEY_USAGE, tlv(SET, ANY_EXTENDED_KEY_USAGE));
  return tlv(SEQUENCE, ID_CERT_BAG, tlv(EXPLICIT_0, value), tlv(SET, friendlyName, trusted));
}

/**
 * PFX { v3, data(AuthenticatedSafe { data(SafeContents { certBag… }) }) } holding `certs` as trusted
 * certificate entries. Public certificates only, so the bags are not encrypted and there is no MAC
 * (integrity comes from the file's place and mode, as for bundle.pem); Java then loads it with any
 * trust store password, or none.
 */
export function trustStorePkcs12(certs: ReadonlyArray<{ der: Buffer; alias: string }>): Buffer {
  const safeContents = tlv(SEQUENCE, ...certs.map((c) => certBag(c.der, c.alias)));
  const authenticatedSafe = tlv(SEQUENCE, dataContent(safeContents));
  return tlv(SEQUENCE, tlv(INTEGER, Buffer.from([3])), dataContent(authenticatedSafe));
}
