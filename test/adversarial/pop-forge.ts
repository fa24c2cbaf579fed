import { createHash, createHmac, generateKeyPairSync, randomBytes, sign, type KeyObject } from 'node:crypto';
import { request } from 'node:http';

/** Hand-made PoP tokens (any header, any claims, any key) and a raw client for the control API. */
const b64 = (v: unknown): string => Buffer.from(JSON.stringify(v)).toString('base64url');

export const bodyHash = (body: string | undefined): string =>
  createHash('sha256')
    .update(body ?? '')
    .digest('base64url');

export interface Claims {
  sub: string;
  iat: number;
  exp: number;
  jti: string;
  htm: string;
  htu: string;
  bh: string;
}

export function claims(o: { sub: string; method: string; url: string; body?: string; iat?: number }): Claims {
  const iat = o.iat ?? Date.now() / 1000;
  return {
    sub: o.sub,
    iat,
    exp: iat + 60,
    jti: randomBytes(16).toString('base64url'),
    htm: o.method,
    htu: o.url,
    bh: bodyHash(o.body),
  };
}

/** EdDSA over header.payload with `key`; header defaults to the real one. */
export function forge(
  payload: object,
  key: KeyObject,
  header: object = { alg: 'EdDSA', typ: 'authsome-pop+jwt' },
): string {
  const input = `${b64(header)}.${b64(payload)}`;
  return `${input}.${sign(null, Buffer.from(input), key).toString('base64url')}`;
}

export function unsigned(payload: object): string {
  return `${b64({ alg: 'none', typ: 'authsome-pop+jwt' })}.${b64(payload)}.`;
}

export function hs256(payload: object, secret: Buffer): string {
  const input = `${b64({ alg: 'HS256', typ: 'authsome-pop+jwt' })}.${b64(payload)}`;
  return `${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`;
}

export function attackerKey(): { privateKey: KeyObject; jwk: object } {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return { privateKey, jwk: publicKey.export({ format: 'jwk' }) };
}

export interface Answer {
  status: number;
  body: string;
}

/** One control-API call with exactly the Authorization given (no client-side tidying). */
export function call(
  port: number,
  method: string,
  path: string,
  auth: string | undefined,
  body?: string,
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { host: `127.0.0.1:${port}`, connection: 'close' };
    if (auth !== undefined) headers['authorization'] = auth;
    if (body !== undefined) {
      headers['content-type'] = 'application/json';
      headers['content-length'] = String(Buffer.byteLength(body));
    }
    const req = request({ host: '127.0.0.1', port, method, path, headers }, (res) => {
      let text = '';
      res.on('data', (d: Buffer) => (text += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}
