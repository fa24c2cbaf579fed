import { execFileSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { spawnTracked, stopChild } from './children.js';

/**
 * mitmproxy as the third column: the same HTTPS load through `mitmdump` with a tiny addon that sets
 * the same header authsome injects, and sends the upstream leg to the loopback origin (mitmproxy has
 * no resolve pin, so the addon rewrites the address in its server_connect hook; the SNI stays the
 * provider's name and the upstream certificate is verified against the origin's test CA).
 */
const ADDON = `
import os
ORIGIN = ("127.0.0.1", int(os.environ["BENCH_ORIGIN_PORT"]))
VALUE = os.environ["BENCH_AUTH_VALUE"]

class Inject:
    def server_connect(self, data):
        data.server.address = ORIGIN

    def request(self, flow):
        flow.request.headers["Authorization"] = VALUE

addons = [Inject()]
`;

export interface Mitm {
  readonly pid: number;
  readonly port: number;
  readonly caPem: string;
  readonly version: string;
  stop(): Promise<void>;
}

export function mitmdumpPath(): string | undefined {
  for (const dir of (process.env['PATH'] ?? '').split(':')) {
    const p = join(dir || '.', 'mitmdump');
    if (dir && existsSync(p)) return p;
  }
  return undefined;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      const port = typeof a === 'object' && a ? a.port : 0;
      s.close(() => resolve(port));
    });
  });
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

export async function startMitm(
  dir: string,
  originHttpsPort: number,
  authValue: string,
  originCaFile: string,
): Promise<Mitm> {
  const bin = mitmdumpPath();
  if (!bin) throw new TypeError('mitmdump is not on PATH');
  const version = execFileSync(bin, ['--version'], { encoding: 'utf8', timeout: 20_000 })
    .split('\n')[0]!
    .trim();
  const confdir = join(dir, 'mitm');
  mkdirSync(confdir, { recursive: true, mode: 0o700 });
  const addon = join(confdir, 'inject.py');
  writeFileSync(addon, ADDON);
  const port = await freePort();
  const child: ChildProcess = spawnTracked(
    bin,
    [
      '-q',
      '--listen-host',
      '127.0.0.1',
      '--listen-port',
      String(port),
      '--set',
      `confdir=${confdir}`,
      '--set',
      `ssl_verify_upstream_trusted_ca=${originCaFile}`,
      '--set',
      'flow_detail=0',
      '-s',
      addon,
    ],
    {
      env: { ...process.env, BENCH_ORIGIN_PORT: String(originHttpsPort), BENCH_AUTH_VALUE: authValue },
      stdio: ['ignore', 'ignore', 'pipe'],
    },
  );
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const deadline = Date.now() + 30_000;
  const caFile = join(confdir, 'mitmproxy-ca-cert.pem');
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`mitmdump exited: ${stderr.trim().slice(-500)}`);
    if (existsSync(caFile) && (await canConnect(port))) {
      return {
        pid: child.pid!,
        port,
        caPem: readFileSync(caFile, 'utf8'),
        version,
        stop: () => stopChild(child, 5_000),
      };
    }
    await sleep(100);
  }
  await stopChild(child, 1000);
  throw new Error('mitmdump did not start within 30 s');
}
