import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { Level } from 'level';
import { ProxyAgent, request } from 'undici';
import { homePaths } from '../../src/config/paths.js';
import { AUDIT_HEAD_KEY } from '../../src/vault/keys.js';
import type { DaemonInfo } from '../../src/daemon/daemon-file.js';
import type * as Lifecycle from '../../src/daemon/lifecycle.js';
import { CLI, TestHome, type CliResult } from '../helpers/cli.js';
import { makeTestCa } from '../helpers/test-ca.js';
import { startUpstream, type Upstream } from '../helpers/upstream.js';

/** Shared by the fault suites (issue 6, item 6): a real built daemon in a temp home, faults made for real. */

export interface DaemonJson {
  pid: number;
  controlPort: number;
  proxyPort: number;
}

export function daemonJson(home: string): DaemonJson | undefined {
  try {
    return JSON.parse(readFileSync(join(home, 'server/daemon.json'), 'utf8')) as DaemonJson;
  } catch {
    return undefined;
  }
}

/** Alive and not a zombie (a detached daemon is reaped late by init). */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return true;
  }
}

export async function waitGone(pid: number, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (alive(pid)) {
    if (Date.now() > deadline) throw new Error(`pid ${pid} still alive after ${timeoutMs} ms`);
    await sleep(10);
  }
}

/** kill -9 of the daemon daemon.json names (a process this test started), then wait until it is gone. */
export async function kill9(home: string): Promise<number | undefined> {
  const info = daemonJson(home);
  if (!info || !alive(info.pid)) return undefined;
  process.kill(info.pid, 'SIGKILL');
  await waitGone(info.pid);
  return info.pid;
}

/**
 * The CLI's own startDaemon (start lock, stale daemon.json handling), called in-process to save a CLI
 * spawn per restart. Loaded from the build, so that it spawns the built CLI. The daemon inherits this
 * process's environment: the home's env is copied in (each test file runs in its own fork).
 */
export async function startBuiltDaemon(t: TestHome): Promise<DaemonInfo> {
  Object.assign(process.env, t.env);
  const url = pathToFileURL(resolve(import.meta.dirname, '../../dist/src/daemon/lifecycle.js')).href;
  const lifecycle = (await import(url)) as typeof Lifecycle;
  return lifecycle.startDaemon(homePaths(t.home));
}

/** The same LevelDB the vault opens (utf8 keys, raw value bytes), without sealing: for tampering. */
export async function withRawStore<T>(
  home: string,
  fn: (db: Level<string, Uint8Array>) => Promise<T>,
): Promise<T> {
  const db = new Level<string, Uint8Array>(join(home, 'server/kv_store'), {
    keyEncoding: 'utf8',
    valueEncoding: 'view',
  });
  await db.open();
  try {
    return await fn(db);
  } finally {
    await db.close();
  }
}

/** Every record as stored (sealed bytes in hex), in key order. */
/**
 * Every record, raw. Without the daemon's audit anchor (meta/audit-head), which every daemon start and
 * stop rewrites by design: "nothing rewritten" is about the records of profiles, providers and sessions.
 */
export function dumpStore(home: string): Promise<Array<[string, string]>> {
  return withRawStore(home, async (db) => {
    const rows: Array<[string, string]> = [];
    for await (const [k, v] of db.iterator())
      if (k !== AUDIT_HEAD_KEY) rows.push([k, Buffer.from(v).toString('hex')]);
    return rows;
  });
}

export function fileBytes(path: string): Buffer | undefined {
  return existsSync(path) ? readFileSync(path) : undefined;
}

/** An echo upstream with a certificate for api.github.com and api.openai.com from a throwaway CA, pinned by the operator hooks. */
export interface Pinned {
  upstream: Upstream;
  env: NodeJS.ProcessEnv;
  close(): Promise<void>;
}

export async function pinnedUpstream(): Promise<Pinned> {
  const ca = await makeTestCa('fault-suite upstream CA');
  const cert = await ca.issue(['api.github.com', 'api.openai.com']);
  const upstream = await startUpstream({ cert });
  const dir = mkdtempSync(join(tmpdir(), 'authsome-faults-ca-'));
  const caFile = join(dir, 'upstream-ca.pem');
  writeFileSync(caFile, ca.certPem);
  return {
    upstream,
    env: {
      AUTHSOME_RESOLVE: `api.github.com:443=127.0.0.1:${upstream.httpsPort},api.openai.com:443=127.0.0.1:${upstream.httpsPort}`,
      AUTHSOME_UPSTREAM_CA: caFile,
    },
    async close() {
      await upstream.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A session token for a profile, minted through the CLI (it lives in the store: it survives restarts). */
export async function mintSession(t: TestHome, profile?: string): Promise<{ handle: string; token: string }> {
  const out = await t.json<{ env: Record<string, string> }>([
    'proxy',
    'env',
    ...(profile ? ['--profile', profile] : []),
  ]);
  const url = new URL(out.env['HTTPS_PROXY'] ?? '');
  return { handle: decodeURIComponent(url.username), token: decodeURIComponent(url.password) };
}

export interface ProxyAnswer {
  status: number;
  body: string;
  code: string | undefined;
}

/** One request through the daemon's proxy (whatever port it has now), TLS intercepted with the local CA. */
export async function viaProxy(
  home: string,
  session: { handle: string; token: string },
  path: string,
  opts: { connection?: string; timeoutMs?: number; host?: string } = {},
): Promise<ProxyAnswer> {
  const info = daemonJson(home);
  if (!info) throw new Error('no daemon.json');
  const agent = new ProxyAgent({
    uri: `http://127.0.0.1:${info.proxyPort}`,
    token: `Basic ${Buffer.from(`${session.handle}:${session.token}`).toString('base64')}`,
    requestTls: { ca: readFileSync(join(home, 'server/ca/ca.pem'), 'utf8') },
  });
  try {
    const r = await request(`https://${opts.host ?? 'api.github.com'}${path}`, {
      dispatcher: agent,
      headers: opts.connection ? { 'x-authsome-connection': opts.connection } : {},
      headersTimeout: opts.timeoutMs ?? 10_000,
      bodyTimeout: opts.timeoutMs ?? 10_000,
    });
    const body = await r.body.text();
    const code = r.headers['x-authsome-error'];
    return { status: r.statusCode, body, code: typeof code === 'string' ? code : undefined };
  } finally {
    await agent.destroy().catch(() => undefined);
  }
}

/** The audit log as parsed lines (complete lines only). */
export function auditLines(home: string): Array<Record<string, unknown>> {
  const text = fileBytes(join(home, 'audit.log'))?.toString('utf8') ?? '';
  return text
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** `authsome daemon serve` in the foreground, for at most timeoutMs (then SIGKILLed by us). */
export function serveForeground(t: TestHome, timeoutMs: number): Promise<CliResult & { timedOut: boolean }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, 'daemon', 'serve'], {
      env: t.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, stdout, stderr, timedOut });
    });
  });
}

/** Everything the CLI printed must name the code and never carry the secret. */
export function output(r: CliResult): string {
  return r.stdout + r.stderr;
}

/**
 * A small tmpfs to hold AUTHSOME_HOME, so the disk can really fill (as root, file modes do not stop
 * writes). Undefined where mounting is not allowed (not root, or no tmpfs): callers skip.
 */
export interface SmallDisk {
  dir: string;
  fill(): void;
  free(): void;
  unmount(): void;
}

export function mountSmallDisk(sizeBytes: number): SmallDisk | undefined {
  if (process.platform !== 'linux' || process.getuid?.() !== 0) return undefined;
  const dir = mkdtempSync(join(tmpdir(), 'authsome-tmpfs-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${sizeBytes},mode=0700`, 'tmpfs', dir], {
      stdio: 'ignore',
    });
  } catch {
    rmSync(dir, { recursive: true, force: true });
    return undefined;
  }
  const filler = join(dir, 'filler');
  return {
    dir,
    /** Writes until ENOSPC, in big then small chunks so not even a partial block stays free. */
    fill() {
      mkdirSync(dir, { recursive: true });
      execFileSync(process.execPath, [
        '-e',
        `const fs=require('fs');const fd=fs.openSync(${JSON.stringify(filler)},'a');
         for (const n of [1<<20, 1<<16, 4096, 512, 64, 1]) { const b=Buffer.alloc(n,1); try { for(;;) fs.writeSync(fd,b); } catch {} }
         fs.closeSync(fd);`,
      ]);
    },
    free() {
      rmSync(filler, { force: true });
    },
    unmount() {
      try {
        execFileSync('umount', [dir], { stdio: 'ignore' });
      } catch {
        execFileSync('umount', ['-l', dir], { stdio: 'ignore' });
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
