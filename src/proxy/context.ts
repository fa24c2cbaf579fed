import type { Server } from 'node:http';
import type { Socket } from 'node:net';
import type { SecureContext } from 'node:tls';
import type { ProxySettings } from '../config/settings.js';
import type { AddressPolicy } from './address-policy.js';
import type { DenyFolder } from './deny-fold.js';
import type { LiveSockets } from './live.js';
import type { Authority } from './destination.js';
import type { CachedIdentity, Identifier } from './identify.js';
import type { ConnectionLimiter } from './limits.js';
import type { ProxyDeps, ProxyStats } from './types.js';
import type { Upstreams } from './upstream.js';

/** An intercepted CONNECT tunnel: its authority and the identity decided once at CONNECT. */
export interface Tunnel {
  readonly authority: Authority;
  /** The client's own TCP connection (under the TLS), which the caller attribution looks at. */
  readonly client: Socket;
  identity: CachedIdentity;
  /** The last inner Host value that was checked and matched (skips re-parsing the same bytes). */
  hostOk?: string;
}

/** Everything built once at createProxy and shared by every request. */
export interface ProxyContext {
  readonly deps: ProxyDeps;
  readonly settings: ProxySettings;
  readonly identifier: Identifier;
  readonly policy: AddressPolicy;
  readonly limiter: ConnectionLimiter;
  readonly upstreams: Upstreams;
  readonly trust: SecureContext;
  /** Decrypted TLS socket -> its tunnel. */
  readonly tunnels: WeakMap<Socket, Tunnel>;
  /** Internal server the decrypted sockets are fed into. */
  readonly inner: Server;
  readonly stats: { -readonly [K in keyof ProxyStats]: ProxyStats[K] };
  /** Open client connections by session and credential, closed when those go (live.ts). */
  readonly live: LiveSockets;
  /** The calling process of each client connection, looked up at most once (policy-step.ts). */
  readonly callers: WeakMap<Socket, Promise<{ pid: number | null; exe: string | null }>>;
  /** proxy.deny records, bounded and folded (deny-fold.ts). */
  readonly denials: DenyFolder;
  /** Sockets to destroy at the end of a drain (tunnels and their upstream legs). */
  readonly sockets: Set<Socket>;
}

export function track(ctx: ProxyContext, socket: Socket): void {
  ctx.sockets.add(socket);
  socket.once('close', () => ctx.sockets.delete(socket));
}
