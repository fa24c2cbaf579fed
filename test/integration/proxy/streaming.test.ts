import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { request } from 'undici';
import WebSocket from 'ws';
import { rawValues } from '../../../src/proxy/headers.js';
import { patternBytes } from '../../helpers/upstream.js';
import {
  HOSTS,
  SECRETS,
  openProxySocket,
  rawConnect,
  readHead,
  startHarness,
  tlsOver,
  type Harness,
} from './harness.js';

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await h.close();
});

const MiB = 1024 * 1024;
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
const last = () => h.upstream.received[h.upstream.received.length - 1]!;

describe('bodies stream both ways', () => {
  it('10 MiB download arrives intact', async () => {
    const r = await request(h.url('api', `/large?bytes=${10 * MiB}`), { dispatcher: h.agent() });
    expect(r.statusCode).toBe(200);
    const hash = createHash('sha256');
    let n = 0;
    for await (const c of r.body) {
      n += (c as Buffer).length;
      hash.update(c as Buffer);
    }
    expect(n).toBe(10 * MiB);
    expect(hash.digest('hex')).toBe(sha(patternBytes(10 * MiB)));
  });

  it('a client that stops reading stops the upstream too (bounded buffering), then gets every byte', async () => {
    const total = 96 * MiB;
    const before = h.upstream.streamed.bytes;
    const r = await request(h.url('api', `/stream?bytes=${total}`), { dispatcher: h.agent() });
    expect(r.statusCode).toBe(200);
    // Read nothing for a while: the proxy must pause the upstream instead of buffering the body.
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    const sentWhilePaused = h.upstream.streamed.bytes - before;
    // Kernel socket buffers on both legs plus the proxy's PAUSE_ABOVE slack: far less than the body.
    expect(sentWhilePaused).toBeLessThan(total / 2);
    let n = 0;
    for await (const c of r.body) n += (c as Buffer).length;
    expect(n).toBe(total);
    expect(h.upstream.streamed.bytes - before).toBe(total);
  });

  it('10 MiB chunked upload arrives intact, without Content-Length', async () => {
    const chunk = randomBytes(64 * 1024);
    const hash = createHash('sha256');
    for (let i = 0; i < 160; i++) hash.update(chunk);
    const body = Readable.from(
      (function* () {
        for (let i = 0; i < 160; i++) yield chunk;
      })(),
    );
    const r = await request(h.url('api', '/upload'), { dispatcher: h.agent(), method: 'POST', body });
    const json = JSON.parse(await r.body.text());
    expect(json.bodyLength).toBe(10 * MiB);
    expect(json.bodySha256).toBe(hash.digest('hex'));
    expect(rawValues(last().rawHeaders, 'authorization')).toEqual([`Bearer ${SECRETS.alicePersonal}`]);
  });

  it('an upload with Content-Length keeps it', async () => {
    const buf = randomBytes(MiB);
    const r = await request(h.url('api', '/upload'), {
      dispatcher: h.agent(),
      method: 'PUT',
      body: buf,
      headers: { 'content-length': String(buf.length) },
    });
    expect(JSON.parse(await r.body.text())).toMatchObject({ bodyLength: MiB, bodySha256: sha(buf) });
    expect(rawValues(last().rawHeaders, 'content-length')).toEqual([String(MiB)]);
  });

  it.each([
    [
      'chunked',
      'Transfer-Encoding: chunked',
      (b: Buffer) => Buffer.concat([Buffer.from(`${b.length.toString(16)}\r\n`), b, Buffer.from('\r\n')]),
    ],
    ['Content-Length', `Content-Length: ${4 * MiB}`, (b: Buffer) => b],
  ])(
    'a client that dies mid-upload (%s) never gives the upstream a complete-looking request',
    async (_kind, framing, frame) => {
      const { socket, status } = await rawConnect(h.proxyPort, `${HOSTS.api}:${h.upstream.httpsPort}`, [
        `Proxy-Authorization: ${h.basic('alice', h.tokens.alice)}`,
      ]);
      expect(status).toBe(200);
      const tls = await tlsOver(socket, { servername: HOSTS.api, ca: h.localCa.certPem });
      const before = h.upstream.received.length;
      tls.write(`POST /upload HTTP/1.1\r\nHost: ${HOSTS.api}:${h.upstream.httpsPort}\r\n${framing}\r\n\r\n`);
      tls.write(frame(randomBytes(256 * 1024)));
      const deadline = Date.now() + 5_000;
      while (h.upstream.received.length === before && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 20));
      const rec = h.upstream.received[before]!;
      expect(rec.url).toBe('/upload');
      while (rec.bodyLength === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      expect(rec.bodyLength).toBeGreaterThan(0);
      tls.destroy();
      socket.destroy();
      await new Promise((r) => setTimeout(r, 500));
      // The upstream saw part of a body and then a reset: its request never ended.
      expect(rec.bodySha256).toBe('');
      expect(rec.bodyLength).toBeLessThan(4 * MiB);
    },
  );

  it('server-sent events arrive as they are sent', async () => {
    const start = Date.now();
    const r = await request(h.url('api', '/sse?n=3&interval=200'), { dispatcher: h.agent() });
    expect(r.headers['content-type']).toBe('text/event-stream');
    const arrivals: number[] = [];
    let text = '';
    for await (const c of r.body) {
      arrivals.push(Date.now() - start);
      text += String(c);
    }
    expect(text).toBe('data: event 0\n\ndata: event 1\n\ndata: event 2\n\n');
    expect(arrivals.length).toBeGreaterThanOrEqual(3);
    // The first event is seen well before the stream ends (~600 ms), i.e. nothing was buffered.
    expect(arrivals[0]!).toBeLessThan(arrivals[arrivals.length - 1]! - 250);
  });
});

/** One masked client text frame (RFC 6455 5.2), payload < 126 bytes. */
function frame(text: string): Buffer {
  const payload = Buffer.from(text);
  const mask = randomBytes(4);
  const masked = Buffer.from(payload.map((b, i) => b ^ mask[i % 4]!));
  return Buffer.concat([Buffer.from([0x81, 0x80 | payload.length]), mask, masked]);
}

describe('WebSocket', () => {
  it('echoes through an intercepted tunnel, with the credential injected on the handshake', async () => {
    const authority = `${HOSTS.api}:${h.upstream.httpsPort}`;
    const { socket, status } = await rawConnect(h.proxyPort, authority, [
      `Proxy-Authorization: ${h.basic('alice', h.tokens.alice)}`,
    ]);
    expect(status).toBe(200);
    const tls = await tlsOver(socket, { servername: HOSTS.api, ca: h.localCa.certPem });
    const ws = new WebSocket(`wss://${authority}/ws`, {
      createConnection: () => tls,
      headers: { 'X-Authsome-Connection': 'work', Authorization: 'Bearer caller' },
    });
    const echoed = await new Promise<string>((resolve, reject) => {
      ws.once('open', () => ws.send('hello through tls'));
      ws.once('message', (d) => resolve(String(d)));
      ws.once('error', reject);
    });
    expect(echoed).toBe('hello through tls');
    const hs = h.upstream.received.filter((r) => r.websocket).at(-1)!;
    expect(hs.secure).toBe(true);
    expect(rawValues(hs.rawHeaders, 'authorization')).toEqual([`Bearer ${SECRETS.aliceWork}`]);
    expect(rawValues(hs.rawHeaders, 'x-authsome-connection')).toEqual([]);
    expect(h.deps.audit.events('proxy.inject').at(-1)).toMatchObject({ connection: 'work', path: '/ws' });
    const closed = new Promise((r) => ws.once('close', r));
    ws.close();
    await closed;
  });

  it('echoes over plain http:// (absolute-form upgrade), without injection', async () => {
    const s = await openProxySocket(h.proxyPort);
    const key = randomBytes(16).toString('base64');
    s.write(
      `GET http://${HOSTS.plain}:${h.upstream.httpPort}/ws HTTP/1.1\r\nHost: ${HOSTS.plain}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
        `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\nProxy-Authorization: ${h.basic('alice', h.tokens.alice)}\r\n\r\n`,
    );
    const head = await readHead(s);
    expect(head.status).toBe(101);
    const expectAccept = createHash('sha1')
      .update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`)
      .digest('base64');
    expect(head.head).toContain(expectAccept);
    const reply = new Promise<Buffer>((resolve) => {
      let buf = head.rest;
      if (buf.length >= 2) return resolve(buf);
      s.on('data', (c: Buffer) => {
        buf = Buffer.concat([buf, c]);
        if (buf.length >= 2 + (buf[1]! & 0x7f)) resolve(buf);
      });
    });
    s.write(frame('plain hello'));
    const f = await reply;
    expect(f[0]).toBe(0x81);
    expect(f.subarray(2, 2 + (f[1]! & 0x7f)).toString()).toBe('plain hello');
    const hs = h.upstream.received.filter((r) => r.websocket).at(-1)!;
    expect(hs.secure).toBe(false);
    expect(rawValues(hs.rawHeaders, 'authorization')).toEqual([]);
    expect(rawValues(hs.rawHeaders, 'proxy-authorization')).toEqual([]);
    s.destroy();
  });

  it('non-WebSocket upgrades are refused', async () => {
    const s = await openProxySocket(h.proxyPort);
    s.write(
      `GET http://${HOSTS.plain}:${h.upstream.httpPort}/ HTTP/1.1\r\nHost: x\r\nUpgrade: h2c\r\nConnection: Upgrade\r\nProxy-Authorization: ${h.basic('alice', h.tokens.alice)}\r\n\r\n`,
    );
    const head = await readHead(s);
    expect(head.status).toBe(400);
    s.destroy();
  });
});
