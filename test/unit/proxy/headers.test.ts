import { describe, expect, it } from 'vitest';
import {
  checkHeaderCount,
  checkRequestHead,
  clientResponseHeaders,
  rawValues,
  singleValue,
  upstreamRequestHeaders,
} from '../../../src/proxy/headers.js';

const raw = [
  'Host',
  'api.example.com',
  'Authorization',
  'Bearer caller',
  'authorization',
  'Bearer caller2',
  'Connection',
  'keep-alive, X-Secret-Hop',
  'X-Secret-Hop',
  'v',
  'Keep-Alive',
  'timeout=5',
  'TE',
  'trailers',
  'Trailer',
  'x',
  'Transfer-Encoding',
  'chunked',
  'Upgrade',
  'websocket',
  'Proxy-Authorization',
  'Basic abc',
  'Proxy-Connection',
  'keep-alive',
  'X-Authsome-Connection',
  'work',
  'X-AUTHSOME-Other',
  '1',
  'Expect',
  '100-continue',
  'Accept',
  'application/json',
  'Content-Type',
  'text/plain',
];

describe('upstreamRequestHeaders', () => {
  it('strips hop-by-hop, Connection-listed, Proxy-*, X-Authsome-*, Host and Expect', () => {
    expect(upstreamRequestHeaders(raw)).toEqual([
      'Authorization',
      'Bearer caller',
      'authorization',
      'Bearer caller2',
      'Accept',
      'application/json',
      'Content-Type',
      'text/plain',
    ]);
  });

  it('strips a Connection-listed name wherever it stands, across several Connection fields', () => {
    const listedFirst = [
      'X-Before',
      '1',
      'Connection',
      'x-before',
      'Connection',
      'Close, X-After ',
      'x-after',
      '2',
    ];
    expect(upstreamRequestHeaders([...listedFirst, 'Accept', 'a'])).toEqual(['Accept', 'a']);
    expect(clientResponseHeaders([...listedFirst, 'Content-Length', '3'])).toEqual(['Content-Length', '3']);
  });

  it('strips every caller copy of an injected header, whatever its case', () => {
    const out = upstreamRequestHeaders(raw, { injected: new Set(['authorization', 'content-type']) });
    expect(out).toEqual(['Accept', 'application/json']);
  });
});

describe('raw header helpers', () => {
  it('finds every copy, case-insensitively', () => {
    expect(rawValues(raw, 'authorization')).toEqual(['Bearer caller', 'Bearer caller2']);
    expect(rawValues(raw, 'nope')).toEqual([]);
  });

  it('singleValue refuses duplicates with 400', () => {
    expect(singleValue(raw, 'host')).toBe('api.example.com');
    expect(singleValue(raw, 'nope')).toBeUndefined();
    expect(() => singleValue(raw, 'authorization')).toThrow(
      expect.objectContaining({ code: 'ERR_PROXY_BAD_REQUEST' }),
    );
  });

  it('counts headers itself (Node truncates silently)', () => {
    expect(() => checkHeaderCount(raw, raw.length / 2)).not.toThrow();
    expect(() => checkHeaderCount(raw, raw.length / 2 - 1)).toThrow(
      expect.objectContaining({ code: 'ERR_PROXY_HEADERS_TOO_LARGE' }),
    );
  });

  it('clientResponseHeaders drops hop-by-hop response fields and keeps duplicates', () => {
    expect(
      clientResponseHeaders([
        'Set-Cookie',
        'a=1',
        'Set-Cookie',
        'b=2',
        'Connection',
        'close, X-H',
        'X-H',
        '1',
        'Transfer-Encoding',
        'chunked',
        'Keep-Alive',
        'x',
        'Content-Length',
        '3',
      ]),
    ).toEqual(['Set-Cookie', 'a=1', 'Set-Cookie', 'b=2', 'Content-Length', '3']);
  });
});

describe('checkRequestHead', () => {
  const ok = ['Host', 'a.example', 'Content-Length', '3', 'Accept', '*/*'];
  it('passes an ordinary head', () => {
    expect(() => checkRequestHead(ok, 100)).not.toThrow();
    expect(() => checkRequestHead(['Transfer-Encoding', 'Chunked'], 100)).not.toThrow();
  });
  it('says whether the head announces a body', () => {
    expect(checkRequestHead(ok, 100)).toBe(true);
    expect(checkRequestHead(['Transfer-Encoding', 'Chunked'], 100)).toBe(true);
    expect(checkRequestHead(['Host', 'a.example', 'content-length', '0'], 100)).toBe(false);
    expect(checkRequestHead(['Host', 'a.example'], 100)).toBe(false);
  });
  it.each([
    [['Content-Length', '3', 'content-length', '3']],
    [['Content-Length', '3', 'Transfer-Encoding', 'chunked']],
    [['Transfer-Encoding', 'chunked', 'TRANSFER-ENCODING', 'chunked']],
    [['Transfer-Encoding', 'gzip, chunked']],
    [['Host', 'a', 'host', 'a']],
    [['Proxy-Authorization', 'Basic a', 'proxy-authorization', 'Basic a']],
    [['X-Authsome-Connection', 'a', 'x-authsome-connection', 'b']],
  ])('refuses %j with 400', (raw) => {
    expect(() => checkRequestHead(raw, 100)).toThrow(
      expect.objectContaining({ code: 'ERR_PROXY_BAD_REQUEST' }),
    );
  });
  it('counts before anything else (431 past the limit, not at it)', () => {
    const at = Array.from({ length: 10 }, (_, i) => [`X-${i}`, 'v']).flat();
    expect(() => checkRequestHead(at, 10)).not.toThrow();
    expect(() => checkRequestHead([...at, 'X-a', 'v'], 10)).toThrow(
      expect.objectContaining({ code: 'ERR_PROXY_HEADERS_TOO_LARGE' }),
    );
  });
});
