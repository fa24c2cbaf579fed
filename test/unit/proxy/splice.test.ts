import { createServer, connect, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { splice } from '../../../src/proxy/forward.js';

const servers: Server[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await new Promise((r) => s.close(r));
});

/** A real loopback connection: [the accepted side, the connecting side]. */
async function pair(): Promise<[Socket, Socket]> {
  const server = createServer();
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const accepted = new Promise<Socket>((r) => server.once('connection', r));
  const port = (server.address() as { port: number }).port;
  const c = connect(port, '127.0.0.1');
  return [await accepted, c];
}

describe('splice', () => {
  it('a side that closed before the splice (client gone mid-dial) ends the other at once', async () => {
    const [client, clientPeer] = await pair();
    const [upstream, upstreamPeer] = await pair();
    client.destroy();
    await new Promise((r) => client.once('close', r));
    const upstreamGone = new Promise((r) => upstreamPeer.once('close', r));
    splice(client, upstream, 0); // no idle timeout: nothing else would ever end it
    await upstreamGone;
    expect(upstream.destroyed).toBe(true);
    clientPeer.destroy();
  });

  it('bytes flow both ways, and closing one side ends the other', async () => {
    const [client, clientPeer] = await pair();
    const [upstream, upstreamPeer] = await pair();
    splice(client, upstream, 0);
    const got = new Promise<string>((r) => upstreamPeer.once('data', (d: Buffer) => r(d.toString())));
    clientPeer.write('ping');
    expect(await got).toBe('ping');
    const back = new Promise<string>((r) => clientPeer.once('data', (d: Buffer) => r(d.toString())));
    upstreamPeer.write('pong');
    expect(await back).toBe('pong');
    const closed = new Promise((r) => clientPeer.once('close', r));
    upstreamPeer.destroy();
    await closed;
  });
});
