import { createServer, connect, type Server, type Socket } from 'node:net';
import { PassThrough } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { relayOne } from '../../../src/proxy/forward.js';

/**
 * The refusal path of an injected WebSocket handshake (forward.ts): one body goes to the client, then
 * the connection is done on both sides, even for a client that keeps its own side open (the HTTP
 * server's upgraded sockets allow half-open connections), and nothing after the body is passed on.
 */
describe('relayOne', () => {
  const servers: Server[] = [];
  const sockets: Socket[] = [];
  afterEach(() => {
    for (const s of sockets) s.destroy();
    for (const s of servers) s.close();
    sockets.length = 0;
    servers.length = 0;
  });

  const closed = (s: Socket) =>
    new Promise<void>((resolve) => (s.destroyed ? resolve() : s.once('close', () => resolve())));
  const ended = (s: Socket) => new Promise<void>((resolve) => s.once('end', () => resolve()));

  /** A connected pair: [the proxy's side (allowHalfOpen, as http upgrades are), the peer's side]. */
  const pair = async (peerHalfOpen: boolean): Promise<[Socket, Socket]> => {
    const server = createServer({ allowHalfOpen: true });
    servers.push(server);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const accepted = new Promise<Socket>((r) => server.once('connection', r));
    const port = (server.address() as { port: number }).port;
    const peer = connect({ port, host: '127.0.0.1', allowHalfOpen: peerHalfOpen });
    sockets.push(peer);
    const mine = await accepted;
    sockets.push(mine);
    return [mine, peer];
  };

  it('passes exactly Content-Length bytes, then closes a client that keeps its side open', async () => {
    const [client, clientPeer] = await pair(true);
    const [upstream, upstreamPeer] = await pair(false);
    const got: Buffer[] = [];
    clientPeer.on('data', (d: Buffer) => got.push(d));
    relayOne(client, upstream, Buffer.from('he'), 5, new PassThrough(), 10_000);
    upstreamPeer.write('llo, and a second response behind it');
    await Promise.all([ended(clientPeer), closed(client)]);
    expect(Buffer.concat(got).toString()).toBe('hello');
    expect(client.destroyed).toBe(true);
    expect(upstream.destroyed).toBe(true);
  });

  it('a body already complete in the first bytes (the head and a pipelined second response in one segment)', async () => {
    const [client, clientPeer] = await pair(true);
    const [upstream] = await pair(false);
    const got: Buffer[] = [];
    clientPeer.on('data', (d: Buffer) => got.push(d));
    relayOne(client, upstream, Buffer.from('{}HTTP/1.1 200 OK\r\n\r\nsecret'), 2, new PassThrough(), 10_000);
    await Promise.all([ended(clientPeer), closed(client)]);
    expect(Buffer.concat(got).toString()).toBe('{}');
  });

  it('a client that neither reads nor closes is cut after the idle timeout', async () => {
    const [client] = await pair(true);
    const [upstream] = await pair(false);
    relayOne(client, upstream, Buffer.alloc(0), undefined, new PassThrough(), 200);
    await closed(client);
    expect(client.destroyed).toBe(true);
  });
});
