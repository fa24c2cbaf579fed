import { BlockList, isIP } from 'node:net';
import { lookup as dnsLookup } from 'node:dns/promises';
import { networkInterfaces } from 'node:os';
import { AppError } from '../errors.js';
import type { Authority } from './destination.js';

/**
 * Where the proxy may dial. Resolved loopback, private, link-local (incl. the 169.254.169.254
 * metadata service), CGNAT, multicast and reserved addresses are refused with 403
 * ERR_PROXY_DESTINATION_DENIED unless the operator pinned that host:port (AUTHSOME_RESOLVE). The
 * address checked here is the address dialled — there is no second lookup to rebind.
 * The proxy's own listeners (and the control API) are refused with ERR_PROXY_LOOP, pinned or not.
 */
export interface DialAddress {
  readonly address: string;
  readonly port: number;
  readonly pinned: boolean;
}

export type LookupFn = (host: string) => Promise<ReadonlyArray<{ address: string; family: number }>>;

export interface AddressPolicyDeps {
  readonly resolve: ReadonlyMap<string, string>;
  readonly selfAddresses: () => ReadonlyArray<{ host: string; port: number }>;
  readonly lookup?: LookupFn;
  /** Test seam: the address filter (default isForbiddenAddress). */
  readonly forbidden?: (address: string) => boolean;
}

const blocked = new BlockList();
for (const [net, bits] of [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.0.2.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['198.51.100.0', 24],
  ['203.0.113.0', 24],
  ['224.0.0.0', 4],
  ['240.0.0.0', 4],
] as const)
  blocked.addSubnet(net, bits, 'ipv4');
for (const [net, bits] of [
  // IPv4-mapped IPv6 (::ffff:a.b.c.d) needs no rule: BlockList applies the IPv4 rules to it.
  ['::', 96], // unspecified, loopback and the deprecated IPv4-compatible ::a.b.c.d
  ['100::', 64],
  ['2001::', 32], // Teredo: tunnels to an embedded IPv4 address
  ['2001:db8::', 32],
  ['2002::', 16], // 6to4: likewise
  ['fc00::', 7],
  ['fe80::', 10],
  ['fec0::', 10], // deprecated site-local
  ['ff00::', 8],
] as const)
  blocked.addSubnet(net, bits, 'ipv6');

/** NAT64 (RFC 6052, 64:ff9b::/96) carries an IPv4 address: judge that one, so DNS64 networks work. */
function nat64Embedded(address: string): string | undefined {
  const m = /^64:ff9b::(?:(\d+\.\d+\.\d+\.\d+)|([0-9a-f]{1,4}):([0-9a-f]{1,4}))$/i.exec(address);
  if (!m) return /^64:ff9b:/i.test(address) ? '0.0.0.0' : undefined;
  if (m[1]) return m[1];
  const hi = parseInt(m[2]!, 16);
  const lo = parseInt(m[3]!, 16);
  return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
}

export function isForbiddenAddress(address: string): boolean {
  const v = isIP(address);
  if (v === 0) return true;
  const embedded = v === 6 ? nat64Embedded(address) : undefined;
  if (embedded !== undefined) return blocked.check(embedded, 'ipv4');
  return blocked.check(address, v === 4 ? 'ipv4' : 'ipv6');
}

/**
 * Spellings that reach this machine: loopback, and the unspecified address (connecting to 0.0.0.0
 * or :: reaches a local listener on Linux), IPv4-mapped forms included.
 */
const local = new BlockList();
local.addSubnet('127.0.0.0', 8, 'ipv4');
local.addSubnet('0.0.0.0', 8, 'ipv4');
local.addSubnet('::', 127, 'ipv6'); // :: and ::1
function isLocal(a: string): boolean {
  if (a === 'localhost' || a === '') return true;
  const v = isIP(a);
  return v !== 0 && local.check(a, v === 4 ? 'ipv4' : 'ipv6');
}
const isUnspecified = (a: string): boolean => a === '0.0.0.0' || a === '::' || a === '';

function parsePin(pin: string): { address: string; port: number } {
  const m = /^\[?([^\]]+?)\]?:(\d+)$/.exec(pin);
  if (!m) throw new TypeError(`malformed resolve pin ${pin}`);
  return { address: m[1]!, port: Number(m[2]) };
}

const defaultLookup: LookupFn = (host) => dnsLookup(host, { all: true, verbatim: true });

export class AddressPolicy {
  readonly #deps: AddressPolicyDeps;
  readonly #lookup: LookupFn;
  readonly #forbidden: (address: string) => boolean;

  constructor(deps: AddressPolicyDeps) {
    this.#deps = deps;
    this.#lookup = deps.lookup ?? defaultLookup;
    this.#forbidden = deps.forbidden ?? isForbiddenAddress;
  }

  #isSelf(address: string, port: number): boolean {
    for (const s of this.#deps.selfAddresses()) {
      if (s.port !== port) continue;
      if (address === s.host || (isLocal(address) && isLocal(s.host))) return true;
      if (isUnspecified(s.host) && localAddresses().has(address)) return true;
    }
    return false;
  }

  #assertNotSelf(address: string, port: number): void {
    if (this.#isSelf(address, port))
      throw new AppError('ERR_PROXY_LOOP', 'the proxy does not forward to itself or to its control API');
  }

  /** Cheap checks before the audit record (no DNS): pins and literal addresses. */
  precheck(a: Authority): void {
    const pin = this.#deps.resolve.get(`${a.host}:${a.port}`);
    if (pin) {
      const p = parsePin(pin);
      this.#assertNotSelf(p.address, p.port);
      return;
    }
    const literal =
      a.kind === 'ipv6'
        ? a.host.slice(1, -1)
        : a.kind === 'ipv4' || a.host === 'localhost'
          ? a.host
          : undefined;
    if (literal !== undefined) {
      this.#assertNotSelf(literal, a.port);
      if (this.#forbidden(literal)) throw denied();
    }
  }

  /** The one address to dial for this authority. */
  async resolve(a: Authority): Promise<DialAddress> {
    const pin = this.#deps.resolve.get(`${a.host}:${a.port}`);
    if (pin) {
      const p = parsePin(pin);
      this.#assertNotSelf(p.address, p.port);
      return { ...p, pinned: true };
    }
    let candidates: ReadonlyArray<{ address: string }>;
    if (a.kind === 'name') {
      try {
        candidates = await this.#lookup(a.host);
      } catch (e) {
        throw new AppError('ERR_UPSTREAM_FAILED', `cannot resolve ${a.host}`, undefined, { cause: e });
      }
    } else {
      candidates = [{ address: a.kind === 'ipv6' ? a.host.slice(1, -1) : a.host }];
    }
    for (const c of candidates) this.#assertNotSelf(c.address, a.port);
    // Fail closed when any answer is internal: a name that mixes public and private answers is a
    // rebinding setup, not a configuration to pick the good half of.
    if (candidates.length === 0 || candidates.some((c) => this.#forbidden(c.address))) throw denied();
    return { address: candidates[0]!.address, port: a.port, pinned: false };
  }
}

function denied(): AppError {
  return new AppError(
    'ERR_PROXY_DESTINATION_DENIED',
    'the destination resolves to a loopback, private, link-local or reserved address',
    'add the host to NO_PROXY to reach it directly',
  );
}

let localCache: { at: number; set: Set<string> } | undefined;
/** Interface addresses (only consulted when the proxy binds a wildcard address). */
function localAddresses(): Set<string> {
  const now = Date.now();
  if (!localCache || now - localCache.at > 10_000) {
    const set = new Set<string>();
    for (const list of Object.values(networkInterfaces())) for (const i of list ?? []) set.add(i.address);
    localCache = { at: now, set };
  }
  return localCache.set;
}
