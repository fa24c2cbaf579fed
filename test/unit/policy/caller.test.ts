import { afterEach, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, realpathSync } from 'node:fs';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { findCaller, procAvailable, socketHolders, UNKNOWN } from '../../../src/policy/caller.js';
import { findProcSocket, procAddressForms } from '../../../src/policy/proc-net.js';

describe('/proc/net/tcp address columns', () => {
  it('encodes IPv4, IPv6 and IPv4-mapped endpoints as the kernel prints them (little-endian words)', () => {
    expect(procAddressForms('127.0.0.1', 8000)).toEqual({
      tcp: '0100007F:1F40',
      tcp6: '0000000000000000FFFF00000100007F:1F40',
    });
    expect(procAddressForms('::ffff:127.0.0.2', 1)).toEqual({
      tcp: '0200007F:0001',
      tcp6: '0000000000000000FFFF00000200007F:0001',
    });
    expect(procAddressForms('::1', 65535)).toEqual({ tcp6: '00000000000000000000000001000000:FFFF' });
    expect(procAddressForms('fe80::1:2', 443).tcp6).toBe('000080FE000000000000000002000100:01BB');
    expect(() => procAddressForms('localhost', 1)).toThrow(TypeError);
  });

  it('finds the entry by both ends and reads its uid and inode, never a TIME_WAIT one (inode 0)', () => {
    const text = [
      '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode',
      '   0: 0100007F:A000 0100007F:1F40 06 00000000:00000000 03:00000F67 00000000     0        0 0 3 0',
      '   1: 0100007F:1F40 0100007F:A000 01 00000000:00000000 00:00000000 00000000  1000        0 4321 1 0',
      '   2: 0100007F:A000 0100007F:1F40 01 00000000:00000000 00:00000000 00000000  1000        0 1234 1 0',
    ].join('\n');
    expect(findProcSocket(text, '0100007F:A000', '0100007F:1F40')).toEqual({ inode: 1234, uid: 1000 });
    expect(findProcSocket(text, '0100007F:A001', '0100007F:1F40')).toBeUndefined();
    expect(findProcSocket('', '0100007F:A000', '0100007F:1F40')).toBeUndefined();
  });
});

/** Real sockets and real child processes: the proxy's view of a connection, and who made it. */
describe('findCaller (Linux /proc)', () => {
  const children: ChildProcess[] = [];
  const extraPids: number[] = [];
  const sockets: Socket[] = [];
  let server: Server | undefined;

  /** Closes the server (its accepted sockets first: close() waits for them). */
  async function closeServer(): Promise<void> {
    for (const s of sockets.splice(0)) s.destroy();
    await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
    server = undefined;
  }

  afterEach(async () => {
    for (const p of extraPids.splice(0)) {
      try {
        process.kill(p, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    for (const c of children.splice(0)) c.kill('SIGKILL');
    await closeServer();
  });

  /** A server on `host`; resolves with the accepted socket once `start` has a client connect. */
  async function accept(
    host: string,
    start: (port: number) => ChildProcess,
  ): Promise<{ sock: Socket; child: ChildProcess }> {
    const accepted = new Promise<Socket>((resolve) => {
      server = createServer((s) => resolve(s));
    });
    await new Promise<void>((r) => server!.listen(0, host, () => r()));
    const child = start((server!.address() as AddressInfo).port);
    children.push(child);
    const sock = await accepted;
    sockets.push(sock);
    sock.on('error', () => undefined);
    return { sock, child };
  }

  /** Waits for one line on the child's stdout (it says when its sockets are in place). */
  function line(child: ChildProcess): Promise<string> {
    return new Promise((resolve, reject) => {
      let buf = '';
      child.stdout!.on('data', (d: Buffer) => {
        buf += d.toString();
        if (buf.includes('\n')) resolve(buf.split('\n')[0]!);
      });
      child.once('exit', (c) => reject(new Error(`child exited ${c}`)));
    });
  }

  const node = (script: string) =>
    spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  const nodeExe = realpathSync(process.execPath);
  const SLOW_OK = { deadlineMs: 20_000 };

  it('is available here (these tests run on Linux with /proc)', () => {
    expect(procAvailable()).toBe(true);
  });

  it('finds a node child: its pid and the real path of its executable', async () => {
    const { sock, child } = await accept('127.0.0.1', (port) =>
      node(
        `require('net').connect(${port}, '127.0.0.1', () => console.log('up')); setTimeout(() => {}, 30000)`,
      ),
    );
    await line(child);
    // A generous deadline: on a loaded machine the /proc scan is slow, and speed is the benchmark's to
    // measure (scripts/measure-caller.mjs), not this test's.
    expect(await findCaller(sock, SLOW_OK)).toEqual({ pid: child.pid, exe: nodeExe });
  });

  it('finds other executables than node (python3, curl): the real path, not the symlink', async () => {
    const clients: Array<[string, (port: number) => string[]]> = [
      [
        '/usr/bin/python3',
        (p) => ['-c', `import socket,time; s=socket.create_connection(('127.0.0.1',${p})); time.sleep(30)`],
      ],
      ['/usr/bin/curl', (p) => ['-s', '-m', '30', `http://127.0.0.1:${p}/`]],
    ];
    const present = clients.filter(([exe]) => existsSync(exe));
    expect(present.length).toBeGreaterThan(0);
    for (const [exe, args] of present) {
      const { sock, child } = await accept('127.0.0.1', (port) =>
        spawn(exe, args(port), { stdio: 'ignore' }),
      );
      expect(await findCaller(sock, SLOW_OK), exe).toEqual({ pid: child.pid, exe: realpathSync(exe) });
      await closeServer();
      child.kill('SIGKILL');
    }
  });

  it('finds a client over IPv6 loopback, and an IPv4 client of a dual-stack listener', async () => {
    const v6 = await accept('::1', (port) =>
      node(`require('net').connect(${port}, '::1', () => console.log('up')); setTimeout(() => {}, 30000)`),
    );
    await line(v6.child);
    expect(v6.sock.remoteAddress).toBe('::1');
    expect(await findCaller(v6.sock, SLOW_OK)).toEqual({ pid: v6.child.pid, exe: nodeExe });
    await closeServer();
    const dual = await accept('::', (port) =>
      node(
        `require('net').connect(${port}, '127.0.0.1', () => console.log('up')); setTimeout(() => {}, 30000)`,
      ),
    );
    await line(dual.child);
    expect(dual.sock.remoteAddress).toBe('::ffff:127.0.0.1');
    expect(await findCaller(dual.sock, SLOW_OK)).toEqual({ pid: dual.child.pid, exe: nodeExe });
  });

  /** A node child that connects, then hands its socket (as fd 3) to a process of `cmd`. */
  const sharing = (cmd: string, args: string[]) => (port: number) =>
    node(`
      const s = require('net').connect(${port}, '127.0.0.1', () => {
        const c = require('child_process').spawn(${JSON.stringify(cmd)}, ${JSON.stringify(args)}, { stdio: ['ignore', 'ignore', 'ignore', s] });
        c.on('spawn', () => console.log(c.pid));
      });
      setTimeout(() => {}, 30000);`);

  it('says unknown when processes of different executables hold the socket', async () => {
    const { sock, child } = await accept('127.0.0.1', sharing('/bin/sleep', ['30']));
    const sleeper = Number(await line(child));
    extraPids.push(sleeper);
    expect(await socketHolders(sock)).toEqual([child.pid!, sleeper].sort((a, b) => a - b));
    expect(await findCaller(sock, SLOW_OK)).toEqual(UNKNOWN);
  });

  it('names the executable and the lowest pid when one executable holds it in several processes', async () => {
    const { sock, child } = await accept(
      '127.0.0.1',
      sharing(process.execPath, ['-e', 'setTimeout(() => {}, 30000)']),
    );
    const grandchild = Number(await line(child));
    extraPids.push(grandchild);
    expect(await socketHolders(sock)).toEqual([child.pid!, grandchild].sort((a, b) => a - b));
    expect(await findCaller(sock, SLOW_OK)).toEqual({ pid: Math.min(child.pid!, grandchild), exe: nodeExe });
  });

  it('says unknown for a peer that is not loopback, a closed client, no /proc, or a spent deadline', async () => {
    expect(
      await findCaller({ localAddress: '10.0.0.1', localPort: 1, remoteAddress: '10.0.0.2', remotePort: 2 }),
    ).toBe(UNKNOWN);
    expect(await findCaller({})).toBe(UNKNOWN);
    const { sock, child } = await accept('127.0.0.1', (port) =>
      node(
        `require('net').connect(${port}, '127.0.0.1', () => console.log('up')); setTimeout(() => {}, 30000)`,
      ),
    );
    await line(child);
    const ends = {
      ...sock.address(),
      localAddress: sock.localAddress,
      localPort: sock.localPort,
      remoteAddress: sock.remoteAddress,
      remotePort: sock.remotePort,
    };
    expect(await findCaller(ends, { procRoot: '/nonexistent' })).toBe(UNKNOWN);
    expect(await findCaller(ends, { deadlineMs: -1 })).toBe(UNKNOWN);
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await exited;
    expect(await findCaller(ends)).toBe(UNKNOWN);
  });
});
