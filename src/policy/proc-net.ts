import { endianness } from 'node:os';
import { isIPv4, isIPv6 } from 'node:net';

/**
 * The address columns of /proc/net/tcp and /proc/net/tcp6 (Linux net/ipv4/tcp_ipv4.c,
 * net/ipv6/tcp_ipv6.c): "ADDR:PORT" with the port as 4 hex digits and the address as the raw
 * in-kernel words printed with %08X, i.e. each 32-bit word in host byte order. On a little-endian
 * machine 127.0.0.1 is "0100007F", ::1 is "00000000000000000000000001000000", and the IPv4-mapped
 * ::ffff:127.0.0.1 is "0000000000000000FFFF00000100007F".
 */

const LITTLE = endianness() === 'LE';

function wordsHex(bytes: readonly number[]): string {
  let out = '';
  for (let w = 0; w < bytes.length; w += 4) {
    const word = bytes.slice(w, w + 4);
    if (LITTLE) word.reverse();
    out += word.map((b) => b.toString(16).padStart(2, '0')).join('');
  }
  return out.toUpperCase();
}

function ipv4Bytes(a: string): number[] {
  return a.split('.').map(Number);
}

function ipv6Bytes(a: string): number[] {
  // Expand "::" and a trailing dotted quad (::ffff:127.0.0.1) into 16 bytes.
  let text = a;
  const quad = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (quad) {
    const [b0, b1, b2, b3] = ipv4Bytes(quad[1]!) as [number, number, number, number];
    text = `${text.slice(0, -quad[1]!.length)}${((b0 << 8) | b1).toString(16)}:${((b2 << 8) | b3).toString(16)}`;
  }
  const [head = '', tail] = text.split('::') as [string, string | undefined];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  return groups.flatMap((g) => {
    const n = parseInt(g, 16);
    return [n >> 8, n & 255];
  });
}

/** The address column forms an endpoint may take: tcp (IPv4) and tcp6 (IPv6, or IPv4-mapped). */
export function procAddressForms(address: string, port: number): { tcp?: string; tcp6: string } {
  const p = port.toString(16).toUpperCase().padStart(4, '0');
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address)?.[1];
  const v4 = mapped ?? (isIPv4(address) ? address : undefined);
  if (v4 !== undefined) {
    const b = ipv4Bytes(v4);
    return {
      tcp: `${wordsHex(b)}:${p}`,
      tcp6: `${wordsHex([...Array<number>(10).fill(0), 255, 255, ...b])}:${p}`,
    };
  }
  if (!isIPv6(address)) throw new TypeError(`not an IP address: ${address}`);
  return { tcp6: `${wordsHex(ipv6Bytes(address))}:${p}` };
}

export interface ProcSocket {
  readonly inode: number;
  readonly uid: number;
}

/**
 * The socket whose local end is `local` and remote end `remote` (column forms from
 * procAddressForms) in the text of one /proc/net/tcp{,6} file, or undefined. Inode 0 (a socket
 * in TIME_WAIT, owned by no process) never matches.
 */
export function findProcSocket(text: string, local: string, remote: string): ProcSocket | undefined {
  let at = text.indexOf(` ${local} ${remote} `);
  while (at >= 0) {
    const end = text.indexOf('\n', at);
    const cols = text
      .slice(at, end < 0 ? undefined : end)
      .trim()
      .split(/\s+/);
    // local rem st tx:rx tr:when retrnsmt uid timeout inode
    const uid = Number(cols[6]);
    const inode = Number(cols[8]);
    if (Number.isInteger(inode) && inode > 0 && Number.isInteger(uid)) return { inode, uid };
    at = text.indexOf(` ${local} ${remote} `, at + 1);
  }
  return undefined;
}
