import { existsSync, readdirSync, readlinkSync, statSync } from 'node:fs';
import { open, readdir, readlink, type FileHandle } from 'node:fs/promises';
import { setImmediate } from 'node:timers';
import { findProcSocket, procAddressForms, type ProcSocket } from './proc-net.js';

/**
 * Caller attribution on Linux (SPEC section 9): which process is at the other end of a loopback
 * connection to the proxy. The client's socket is the /proc/net/tcp{,6} entry whose local end is
 * the proxy's remote end and the other way round; its inode is found in some process's
 * /proc/PID/fd as "socket:[inode]", and /proc/PID/exe names the executable (the kernel's real path).
 *
 * What it is not: authentication. A process of the same OS user can pass its socket to another, or
 * read the key files outright (docs/policy.md, "The OS user is the boundary").
 *
 * Decisions:
 * - Only processes of the socket's owner (its uid column) are scanned: the others are not the
 *   creator, and an unprivileged daemon could not read their fds anyway.
 * - Several processes holding the socket with one executable (a fork): that executable, and the
 *   lowest pid (the parent that opened it, as a rule). With different executables: unknown.
 * - Bounded: past `deadlineMs` the scan gives up (unknown), so a machine with thousands of
 *   processes delays a new connection by that much at worst, and never hangs it.
 * - Unknown is { pid: null, exe: null }, and never matches an exe rule.
 */
export interface Caller {
  readonly pid: number | null;
  readonly exe: string | null;
}

/** The proxy's view of one accepted connection (net.Socket's own fields). */
export interface SocketEnds {
  readonly localAddress?: string | undefined;
  readonly localPort?: number | undefined;
  readonly remoteAddress?: string | undefined;
  readonly remotePort?: number | undefined;
}

export interface CallerOptions {
  /** Default "/proc"; tests point it elsewhere. */
  readonly procRoot?: string;
  /** Give up after this long (default 1 s: a loaded machine reads /proc slowly; unknown fails closed). */
  readonly deadlineMs?: number;
  /** Never report this pid (the daemon itself holds the other end). Default process.pid. */
  readonly selfPid?: number;
}

export const UNKNOWN: Caller = Object.freeze({ pid: null, exe: null });

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|::1|::ffff:127\.\d+\.\d+\.\d+)$/i;
/** Longest stretch of synchronous /proc reading before the scan yields to other work. */
const SLICE_MS = 2;

/** True where callers can be attributed at all (`policy set` warns otherwise). */
export function procAvailable(procRoot = '/proc'): boolean {
  return (
    process.platform === 'linux' && existsSync(`${procRoot}/net/tcp`) && existsSync(`${procRoot}/self/fd`)
  );
}

class Deadline extends Error {}

interface Ends {
  readonly localAddress: string;
  readonly localPort: number;
  readonly remoteAddress: string;
  readonly remotePort: number;
}

/**
 * Reads a /proc/net/tcp{,6} table in chunks and stops at the entry: the kernel formats the table
 * as it is read, walking its whole socket hash (several ms even with few sockets, measured; tens
 * with thousands of TIME_WAIT ones), so stopping early saves about half on average.
 */
async function scanTable(path: string, local: string, remote: string): Promise<ProcSocket | undefined> {
  let fh: FileHandle;
  try {
    fh = await open(path, 'r');
  } catch {
    return undefined;
  }
  try {
    const buf = Buffer.allocUnsafe(64 * 1024);
    let carry = '';
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, buf.length, null);
      if (bytesRead === 0) return findProcSocket(carry, local, remote);
      const text = carry + buf.toString('latin1', 0, bytesRead);
      const cut = text.lastIndexOf('\n') + 1;
      const found = findProcSocket(text.slice(0, cut), local, remote);
      if (found) return found;
      carry = text.slice(cut);
    }
  } finally {
    await fh.close();
  }
}

async function socketOf(root: string, ends: Ends): Promise<ProcSocket | undefined> {
  // The client's local end is our remote end.
  const mine = procAddressForms(ends.remoteAddress, ends.remotePort);
  const peer = procAddressForms(ends.localAddress, ends.localPort);
  const tables: Array<[string, string, string]> = [];
  if (mine.tcp !== undefined && peer.tcp !== undefined) tables.push(['tcp', mine.tcp, peer.tcp]);
  tables.push(['tcp6', mine.tcp6, peer.tcp6]);
  for (const [file, local, remote] of tables) {
    const found = await scanTable(`${root}/net/${file}`, local, remote);
    if (found) return found;
  }
  return undefined;
}

/** Whether `pid` holds `link` among its fds ("socket:[inode]"). Synchronous: see SLICE_MS. */
function holds(root: string, pid: number, link: string): boolean {
  let fds: string[];
  try {
    fds = readdirSync(`${root}/${pid}/fd`);
  } catch {
    return false; // gone, or not ours to read
  }
  for (const fd of fds) {
    try {
      if (readlinkSync(`${root}/${pid}/fd/${fd}`) === link) return true;
    } catch {
      // closed meanwhile
    }
  }
  return false;
}

/**
 * The pids holding the client end of one accepted loopback connection (sorted), or undefined when
 * it cannot be told (not loopback, not found, past the deadline). Never throws.
 */
export async function socketHolders(
  ends: SocketEnds,
  opts: CallerOptions = {},
): Promise<number[] | undefined> {
  const root = opts.procRoot ?? '/proc';
  const selfPid = opts.selfPid ?? process.pid;
  const { localAddress, localPort, remoteAddress, remotePort } = ends;
  if (
    localAddress === undefined ||
    remoteAddress === undefined ||
    localPort === undefined ||
    remotePort === undefined ||
    !LOOPBACK.test(remoteAddress)
  )
    return undefined;
  const started = Date.now();
  const deadline = opts.deadlineMs ?? 1000;
  const expired = () => Date.now() - started > deadline;
  try {
    const sock = await socketOf(root, { localAddress, localPort, remoteAddress, remotePort });
    if (!sock || expired()) return undefined;
    const link = `socket:[${sock.inode}]`;
    const pids = (await readdir(root))
      .filter((n) => /^[1-9][0-9]*$/.test(n))
      .map(Number)
      .filter((p) => p !== selfPid);
    const holders: number[] = [];
    let slice = performance.now();
    for (const pid of pids) {
      // Yield to the event loop between short slices of synchronous work: each readlink through
      // the libuv pool costs ~50 µs on a busy machine, a synchronous one a few µs (measured).
      if (performance.now() - slice > SLICE_MS) {
        if (expired()) throw new Deadline();
        await new Promise((r) => setImmediate(r));
        slice = performance.now();
      }
      let uid: number | undefined;
      try {
        uid = statSync(`${root}/${pid}`).uid;
      } catch {
        continue; // exited
      }
      if (uid === sock.uid && holds(root, pid, link)) holders.push(pid);
    }
    return holders.length ? holders.sort((a, b) => a - b) : undefined;
  } catch {
    // Past the deadline, /proc gone under us, a malformed table: unknown, never a guess.
    return undefined;
  }
}

/** The calling process of one accepted loopback connection, or UNKNOWN. Never throws. */
export async function findCaller(ends: SocketEnds, opts: CallerOptions = {}): Promise<Caller> {
  const holders = await socketHolders(ends, opts);
  if (!holders) return UNKNOWN;
  const root = opts.procRoot ?? '/proc';
  const exes = await Promise.all(holders.map((p) => readlink(`${root}/${p}/exe`).catch(() => null)));
  const exe = exes[0];
  if (exe === null || exe === undefined || exes.some((e) => e !== exe)) return UNKNOWN;
  return Object.freeze({ pid: holders[0]!, exe });
}
