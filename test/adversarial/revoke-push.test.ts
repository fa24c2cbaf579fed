import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AdvEnv, HOST } from './env.js';

/**
 * Issue 18 items 2 and 5: a revoke, an expiry, a profile delete or a connection removal closes every
 * tunnel and WebSocket the session or credential opened, at once; `run` revoking on exit cuts what its
 * child left open; a profile deleted and created again does not inherit an old tunnel.
 */
let e: AdvEnv;
beforeAll(async () => {
  // Idle connections stay open far longer than any wait here: only the pushed close can end them.
  e = await AdvEnv.start({ proxy: { idleTimeoutMs: 120_000 } });
}, 90_000);
afterAll(async () => {
  await e?.stop();
});

interface Minted {
  id: string;
  token: string;
}

async function mint(args: string[]): Promise<Minted> {
  const out = JSON.parse(await e.ok([...args, '--json'])) as { id: string; env: Record<string, string> };
  return { id: out.id, token: decodeURIComponent(new URL(out.env['HTTPS_PROXY']!).password) };
}

interface Open {
  readonly tls: TLSSocket;
  readonly closed: Promise<void>;
  isClosed(): boolean;
}

/** CONNECT + TLS to the origin; with `ws`, a WebSocket handshake answered 101 (frames echo back). */
async function open(handle: string, token: string, ws: boolean): Promise<Open> {
  const c = await e.wire.connect(`${HOST.api}:443`, [`Proxy-Authorization: ${e.auth(handle, token)}`]);
  expect(c.status).toBe(200);
  const tls = await e.wire.tls(c.socket, e.localCa, HOST.api);
  let closed = false;
  const done = new Promise<void>((resolve) => tls.once('close', () => resolve()));
  void done.then(() => (closed = true));
  if (ws) {
    tls.write(
      `GET /ws/plain HTTP/1.1\r\nHost: ${HOST.api}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`,
    );
    expect((await e.wire.head(tls)).status).toBe(101);
    tls.resume();
  } else {
    tls.write(`GET /plain HTTP/1.1\r\nHost: ${HOST.api}\r\n\r\n`);
    expect((await e.wire.head(tls)).status).toBe(200);
    tls.resume();
  }
  return { tls, closed: done, isClosed: () => closed };
}

/**
 * Resolves true once `o` closed, false if it is still open after `ms`. The daemon closes them before it
 * answers the command that caused it; `ms` only leaves room for this process to see the close on a
 * loaded machine.
 */
const closesWithin = (o: Open, ms: number): Promise<boolean> =>
  Promise.race([o.closed.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), ms))]);

describe('pushed to open connections', () => {
  it('proxy revoke ID closes the tunnels and WebSockets of that session, and no other', async () => {
    const a = await mint(['proxy', 'env']);
    const b = await mint(['proxy', 'env']);
    const tunnel = await open('me', a.token, false);
    const ws = await open('me', a.token, true);
    const other = await open('me', b.token, true);
    await e.ok(['proxy', 'revoke', a.id]);
    // The daemon closed them before it answered the revoke.
    expect(await closesWithin(tunnel, 3000)).toBe(true);
    expect(await closesWithin(ws, 3000)).toBe(true);
    expect(other.isClosed(), 'right after the revoke').toBe(false);
    await new Promise((r) => setTimeout(r, 300));
    expect(other.isClosed()).toBe(false);
    other.tls.destroy();
  });

  it('an expired session (--ttl 3s): its WebSocket and tunnel close when it expires', async () => {
    const s = await mint(['proxy', 'env', '--ttl', '3s']);
    const t0 = Date.now();
    const tunnel = await open('me', s.token, false);
    const ws = await open('me', s.token, true);
    expect(await closesWithin(ws, 10_000)).toBe(true);
    expect(await closesWithin(tunnel, 3000)).toBe(true);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(2_000);
  });

  it('removing a connection closes the WebSockets that carry its credential, not the others', async () => {
    await e.ok(['login', 'canaryco', '--connection', 'spare'], 'sk-spare-0123456789\n');
    const s = await mint(['proxy', 'env']);
    const c = await e.wire.connect(`${HOST.api}:443`, [`Proxy-Authorization: ${e.auth('me', s.token)}`]);
    const tls = await e.wire.tls(c.socket, e.localCa, HOST.api);
    const closed = new Promise<void>((r) => tls.once('close', () => r()));
    tls.write(
      `GET /ws/plain HTTP/1.1\r\nHost: ${HOST.api}\r\nX-Authsome-Connection: spare\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`,
    );
    expect((await e.wire.head(tls)).status).toBe(101);
    tls.resume();
    const personal = await open('me', s.token, true); // the default connection
    await e.ok(['connection', 'remove', 'canaryco', '--connection', 'spare']);
    const gone = await Promise.race([
      closed.then(() => true),
      new Promise<boolean>((r) => setTimeout(() => r(false), 3000)),
    ]);
    expect(gone).toBe(true);
    expect(personal.isClosed()).toBe(false);
    personal.tls.destroy();
  });

  it('a deleted profile: its tunnels close; created again with a new key and login, the old token opens nothing', async () => {
    await e.ok(['profile', 'create', 'tmp']);
    await e.ok(['--profile', 'tmp', 'login', 'canaryco', '--connection', 'c'], 'sk-tmp-old-0123456789\n');
    const old = await mint(['--profile', 'tmp', 'proxy', 'env']);
    const tunnel = await open('tmp', old.token, false);
    await e.ok(['profile', 'delete', 'tmp']);
    expect(await closesWithin(tunnel, 3000)).toBe(true);
    await e.ok(['profile', 'create', 'tmp']);
    await e.ok(['--profile', 'tmp', 'login', 'canaryco', '--connection', 'c'], 'sk-tmp-new-0123456789\n');
    const again = await e.wire.connect(`${HOST.api}:443`, [
      `Proxy-Authorization: ${e.auth('tmp', old.token)}`,
    ]);
    expect(again.status).toBe(407);
    again.socket.destroy();
  });
});

describe('run', () => {
  it('revoking on exit cuts what its child left open (a detached grandchild holding a tunnel)', async () => {
    const marker = join(e.t.dir, 'grandchild-closed');
    const holder = join(e.t.dir, 'holder.mjs');
    // Opens a plain tunnel (to a host no provider covers) through the proxy in HTTPS_PROXY and writes the marker when the proxy closes it.
    writeFileSync(
      holder,
      `import { connect } from 'node:net'; import { writeFileSync } from 'node:fs';
const u = new URL(process.env.HTTPS_PROXY);
const auth = Buffer.from(decodeURIComponent(u.username) + ':' + decodeURIComponent(u.password)).toString('base64');
const s = connect(Number(u.port), u.hostname, () => s.write('CONNECT ${HOST.decoy}:443 HTTP/1.1\\r\\nHost: ${HOST.decoy}:443\\r\\nProxy-Authorization: Basic ' + auth + '\\r\\n\\r\\n'));
s.once('data', () => writeFileSync(process.argv[2] + '.open', 'open'));
s.on('close', () => { writeFileSync(process.argv[2], 'closed'); process.exit(0); });
setTimeout(() => process.exit(1), 30000);
`,
    );
    const launcher = `const { spawn } = require('node:child_process'); const c = spawn(process.execPath, [${JSON.stringify(holder)}, ${JSON.stringify(marker)}], { detached: true, stdio: 'ignore' }); c.unref(); const fs = require('node:fs'); const t = setInterval(() => { if (fs.existsSync(${JSON.stringify(marker + '.open')})) { clearInterval(t); process.exit(0); } }, 20);`;
    const r = await e.cli(['run', '--', process.execPath, '-e', launcher]);
    expect(r.code, r.stderr).toBe(0);
    const until = Date.now() + 5000;
    while (!existsSync(marker) && Date.now() < until) await new Promise((res) => setTimeout(res, 50));
    expect(existsSync(marker)).toBe(true);
  });
});

describe('leaks', () => {
  it('no canary anywhere', () => {
    expect(e.leaks()).toEqual([]);
  });
});
