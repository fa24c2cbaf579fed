/**
 * The DER of a leaf certificate, assembled from parts instead of through @peculiar/x509's generic
 * ASN.1 object model: minting is on the first request to a new host (issue 5: ≤ 10 ms extra), and
 * the generic path spends ~6 ms per leaf in asn1js. Everything that does not depend on the host
 * (issuer, public key, the constant extensions) is DER produced by @peculiar/x509 once, in
 * LeafMinter.create; only the per-leaf fields are encoded here. A unit test checks the result is
 * byte-identical to @peculiar/x509's own output for the same inputs.
 */

/** Tag-length-value, with DER's definite length (short form below 128, else long form). */
export function tlv(tag: number, ...content: Buffer[]): Buffer {
  const body = content.length === 1 ? content[0]! : Buffer.concat(content);
  const n = body.length;
  let head: Buffer;
  if (n < 0x80) head = Buffer.from([tag, n]);
  else if (n < 0x100) head = Buffer.from([tag, 0x81, n]);
  else if (n < 0x10000) head = Buffer.from([tag, 0x82, n >> 8, n & 0xff]);
  else throw new RangeError('DER value too long for a leaf certificate');
  return Buffer.concat([head, body]);
}

const SEQUENCE = 0x30;
const SET = 0x31;
const INTEGER = 0x02;
const BIT_STRING = 0x03;
const OCTET_STRING = 0x04;
const OID = 0x06;
const UTF8_STRING = 0x0c;
const PRINTABLE_STRING = 0x13;
const UTC_TIME = 0x17;
const GENERALIZED_TIME = 0x18;

/** id-at-commonName 2.5.4.3 and id-ce-subjectAltName 2.5.29.17. */
const OID_CN = Buffer.from([0x55, 0x04, 0x03]);
const OID_SAN = Buffer.from([0x55, 0x1d, 0x11]);
/** AlgorithmIdentifier ecdsa-with-SHA256 (1.2.840.10045.4.3.2), no parameters (RFC 5758 3.2). */
export const ECDSA_SHA256 = tlv(
  SEQUENCE,
  tlv(OID, Buffer.from([0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02])),
);
/** [0] EXPLICIT Version v3. */
const VERSION_3 = Buffer.from([0xa0, 0x03, 0x02, 0x01, 0x02]);

const PRINTABLE = /^[A-Za-z0-9 '()+,\-./:=?]*$/;

/** RFC 5280 4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050; whole seconds, Zulu. */
function time(ms: number): Buffer {
  const iso = new Date(ms).toISOString(); // YYYY-MM-DDTHH:MM:SS.sssZ
  const digits = `${iso.slice(0, 4)}${iso.slice(5, 7)}${iso.slice(8, 10)}${iso.slice(11, 13)}${iso.slice(14, 16)}${iso.slice(17, 19)}Z`;
  const year = Number(iso.slice(0, 4));
  return year < 2050
    ? tlv(UTC_TIME, Buffer.from(digits.slice(2), 'latin1'))
    : tlv(GENERALIZED_TIME, Buffer.from(digits, 'latin1'));
}

/** What every leaf shares, as DER (see LeafMinter.create). */
export interface LeafTemplate {
  /** The CA's subject Name: the leaf's issuer. */
  readonly issuer: Buffer;
  /** SubjectPublicKeyInfo of the shared leaf key. */
  readonly spki: Buffer;
  /** The host-independent Extension SEQUENCEs, in order (SAN is appended after them). */
  readonly extensions: readonly Buffer[];
}

export interface LeafFields {
  /** Positive serial, big-endian, its first byte below 0x80 (so no sign padding is needed). */
  readonly serial: Buffer;
  readonly host: string;
  readonly notBeforeMs: number;
  readonly notAfterMs: number;
}

/** TBSCertificate (RFC 5280 4.1) for one host: subject CN=host, SAN dNSName host. */
export function leafTbs(t: LeafTemplate, f: LeafFields): Buffer {
  const name = Buffer.from(f.host, 'utf8');
  const cn = tlv(PRINTABLE.test(f.host) ? PRINTABLE_STRING : UTF8_STRING, name);
  const subject = tlv(SEQUENCE, tlv(SET, tlv(SEQUENCE, tlv(OID, OID_CN), cn)));
  // GeneralNames SEQUENCE { [2] IMPLICIT IA5String dNSName }
  const san = tlv(SEQUENCE, tlv(OID, OID_SAN), tlv(OCTET_STRING, tlv(SEQUENCE, tlv(0x82, name))));
  return tlv(
    SEQUENCE,
    VERSION_3,
    tlv(INTEGER, f.serial),
    ECDSA_SHA256,
    t.issuer,
    tlv(SEQUENCE, time(f.notBeforeMs), time(f.notAfterMs)),
    subject,
    t.spki,
    tlv(0xa3, tlv(SEQUENCE, ...t.extensions, san)),
  );
}

/** Certificate ::= SEQUENCE { tbs, signatureAlgorithm, BIT STRING signature (DER ECDSA-Sig-Value) }. */
export function certificate(tbs: Buffer, signature: Buffer): Buffer {
  return tlv(SEQUENCE, tbs, ECDSA_SHA256, tlv(BIT_STRING, Buffer.from([0]), signature));
}

/** Offsets of one DER element: where it starts, where its content starts, where it ends. */
function element(der: Buffer, at: number): { start: number; content: number; end: number } {
  const first = der[at + 1];
  if (first === undefined) throw new RangeError('truncated DER');
  let len = first;
  let content = at + 2;
  if (first & 0x80) {
    const n = first & 0x7f;
    if (n < 1 || n > 3) throw new RangeError('unsupported DER length');
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + der[at + 2 + i]!;
    content += n;
  }
  if (content + len > der.length) throw new RangeError('truncated DER');
  return { start: at, content, end: content + len };
}

/**
 * The subject Name of a certificate, byte for byte (a leaf's issuer must match it exactly):
 * Certificate → TBSCertificate → [version], serial, signature, issuer, validity, subject.
 */
export function subjectOf(certDer: Buffer): Buffer {
  const tbs = element(certDer, element(certDer, 0).content);
  let at = tbs.content;
  if (certDer[at] === 0xa0) at = element(certDer, at).end; // explicit version
  for (let i = 0; i < 4; i++) at = element(certDer, at).end; // serial, signature, issuer, validity
  const subject = element(certDer, at);
  return certDer.subarray(subject.start, subject.end);
}

/** The TBSCertificate of a certificate (for tests comparing encoders). */
export function tbsOf(certDer: Buffer): Buffer {
  const tbs = element(certDer, element(certDer, 0).content);
  return certDer.subarray(tbs.start, tbs.end);
}
