import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { setTimeout as sleep } from 'node:timers/promises';
import { Client, Pool } from 'undici';
import { memOf, sampleRss } from './daemon.js';

export interface HeldResult {
  connections: number;
  /** First request on each connection (CONNECT + TLS + request) that answered 200. */
  opened: number;
  openFailed: number;
  openSeconds: number;
  baselineRssMB: number;
  /** RSS while all of them are open and idle. */
  heldRssMB: number;
  peakRssMB: number;
  /** A second request on every held connection. */
  secondOk: number;
  secondFailed: number;
  /** Tunnels dialled beyond one per connection (a held connection that was dropped and re-made). */
  reconnects: number;
  afterCloseRssMB: number;
  firstError?: string;
}

async function limited<T>(n: number, parallel: number, fn: (i: number) => Promise<T>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(parallel, n) }, async () => {
      while (next < n) await fn(next++);
    }),
  );
}

/**
 * `count` client connections through the proxy, each its own CONNECT tunnel with TLS to the proxy's
 * leaf and one keep-alive request, all held open at once; then a second request on each of them.
 */
export async function holdConnections(o: {
  proxyPort: number;
  basic: string;
  host: string;
  caPem: string;
  count: number;
  parallel: number;
  pid: number;
}): Promise<HeldResult> {
  const proxy = new Pool(`http://127.0.0.1:${o.proxyPort}`, { headersTimeout: 30_000 });
  let dialled = 0;
  let firstError: string | undefined;
  const tunnel = async (): Promise<TLSSocket> => {
    dialled++;
    const { socket, statusCode } = await proxy.connect({
      path: `${o.host}:443`,
      headers: { host: `${o.host}:443`, 'proxy-authorization': o.basic },
    });
    if (statusCode !== 200) {
      socket.destroy();
      throw new Error(`CONNECT answered ${statusCode}`);
    }
    return new Promise((resolve, reject) => {
      const tls = tlsConnect({ socket, servername: o.host, ca: o.caPem, ALPNProtocols: ['http/1.1'] });
      tls.once('secureConnect', () => resolve(tls));
      tls.once('error', reject);
    });
  };
  const clients = Array.from(
    { length: o.count },
    () =>
      new Client(`https://${o.host}`, {
        connect: (_opts, cb) => {
          tunnel().then(
            (s) => cb(null, s),
            (e: Error) => cb(e, null),
          );
        },
        keepAliveTimeout: 120_000,
        keepAliveMaxTimeout: 120_000,
        headersTimeout: 30_000,
        bodyTimeout: 30_000,
      }),
  );
  const once = async (c: Client): Promise<boolean> => {
    try {
      const r = await c.request({ path: '/json', method: 'GET', headers: { host: o.host } });
      await r.body.dump();
      if (r.statusCode !== 200) throw new Error(`HTTP ${r.statusCode}`);
      return true;
    } catch (e) {
      firstError ??= (e as Error).message;
      return false;
    }
  };
  const baseline = memOf(o.pid).rssMB;
  const sampler = sampleRss(o.pid, 50);
  let opened = 0;
  const t0 = performance.now();
  await limited(o.count, o.parallel, async (i) => {
    if (await once(clients[i]!)) opened++;
  });
  const openSeconds = (performance.now() - t0) / 1000;
  await sleep(1000);
  const held = memOf(o.pid).rssMB;
  let secondOk = 0;
  await limited(o.count, o.parallel, async (i) => {
    if (await once(clients[i]!)) secondOk++;
  });
  const { peakMB } = sampler.stop();
  const reconnects = Math.max(0, dialled - o.count);
  await Promise.all(clients.map((c) => c.destroy().catch(() => undefined)));
  await proxy.destroy().catch(() => undefined);
  await sleep(1000);
  return {
    connections: o.count,
    opened,
    openFailed: o.count - opened,
    openSeconds,
    baselineRssMB: baseline,
    heldRssMB: held,
    peakRssMB: peakMB,
    secondOk,
    secondFailed: o.count - secondOk,
    reconnects,
    afterCloseRssMB: memOf(o.pid).rssMB,
    ...(firstError !== undefined ? { firstError } : {}),
  };
}
