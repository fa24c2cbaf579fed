import type { AuditSink } from '../audit/types.js';
import type { LeafSource } from '../ca/types.js';
import type { ProxySettings } from '../config/settings.js';
import type { CredentialFields, Destination, ProviderDef } from '../providers/types.js';
import type {
  CompiledPolicy,
  Decision,
  HeldRequest,
  HoldInput,
  HoldOutcome,
  TakeResult,
} from '../policy/index.js';
import type { AuditInput } from '../audit/types.js';

/** Who is calling, as proved by a session token. */
export interface SessionInfo {
  readonly id: string;
  readonly profile: string;
  /** undefined = every provider/connection of the profile; else allowed pairs (connection undefined = any). */
  readonly allow: ReadonlyArray<{ provider: string; connection?: string }> | undefined;
  readonly expiresAt: number;
  /** `authsome doctor`'s probe session: it never gets a credential, and its refusals are audited as doctor.probe. */
  readonly probe?: boolean;
}

export interface SessionVerifier {
  /** undefined for anything wrong (unknown, expired, revoked) — one answer for all. */
  verify(handle: string, token: string): Promise<SessionInfo | undefined>;
  /**
   * Moves on every revocation (and profile deletion): an identity verified before a move is verified
   * again on its next request instead of trusting the per-connection cache (identify.ts).
   */
  epoch?(): number;
}

export interface ResolvedCredential {
  readonly connection: string;
  readonly fields: CredentialFields;
  /** The tenant hosts the connection is bound to (providers with a wildcard host). */
  readonly hosts?: readonly string[];
}

/**
 * Where the proxy gets secrets. The proxy does not know about the vault (ARCHITECTURE level 3).
 * connection undefined = the profile's default for that provider. undefined result = no such
 * connection for this profile (the same answer as "belongs to another profile").
 */
export interface CredentialSource {
  resolve(
    profile: string,
    provider: string,
    connection: string | undefined,
  ): Promise<ResolvedCredential | undefined>;
  /** The names of this profile's connections (for a refusal's message; never another profile's). */
  names?(profile: string): Promise<ReadonlyArray<{ provider: string; connection: string }>>;
}

export interface ProviderMatcher {
  /** The provider covering exactly this destination, or undefined. */
  match(dest: Destination): ProviderDef | undefined;
  /** Does any provider cover this host:port (for any path)? Decides interception of CONNECT. */
  covers(host: string, port: number): boolean;
}

/**
 * What the proxy asks about policies (SPEC section 9). The daemon's PolicyService implements it; the
 * proxy decides with the pure `decide` of src/policy on what `get` returns.
 */
export interface PolicyGate {
  /** The profile's compiled policy, undefined when none is set (then everything is allowed). */
  get(profile: string): Promise<CompiledPolicy | undefined>;
  /** One token of the deciding rule's bucket (ok when it has no rate). */
  takeRate(profile: string, connection: string, d: Decision): Promise<TakeResult>;
  /** A request refused by a rate: its record is folded with the others of its rule (written best effort). */
  rateLimited(profile: string, d: Decision, record: AuditInput): void;
  /** An `approve --for` grant covers this request. */
  granted(profile: string, connection: string, method: string, path: string): Promise<boolean>;
  /** Holds a request until it is answered or times out (ERR_POLICY_HELD_FULL past the cap). */
  hold(req: HoldInput): Promise<{ held: HeldRequest; outcome: Promise<HoldOutcome> }>;
  /** The held request's client went away: take it off the list. */
  cancel(id: string): Promise<boolean>;
  /** Whether callers are attributed on every connection, not only for policies that name `exe`. */
  readonly attributeAll: boolean;
}

/** The calling process of a loopback connection (policy/caller.ts), found once per connection. */
export interface CallerFinder {
  find(socket: import('node:net').Socket): Promise<{ pid: number | null; exe: string | null }>;
}

export interface ProxyDeps {
  settings: ProxySettings;
  sessions: SessionVerifier;
  providers: ProviderMatcher;
  credentials: CredentialSource;
  audit: AuditSink;
  leaves: LeafSource;
  /** Upstream pins from AUTHSOME_RESOLVE: "host:port" -> "ip:port". */
  resolve: ReadonlyMap<string, string>;
  /** Extra roots for the upstream leg (operator hook), added to the system roots. */
  upstreamCaPem: string | undefined;
  /** Addresses the proxy must never forward to (its own listeners, the control API). */
  selfAddresses: () => ReadonlyArray<{ host: string; port: number }>;
  /** Policies (SPEC section 9); absent: every request the proxy would inject is allowed. */
  policy?: PolicyGate;
  /** Caller attribution; absent: callers are unknown. */
  callers?: CallerFinder;
}

export interface ProxyStats {
  /** Requests (incl. WebSocket handshakes) handled since start. */
  readonly requests: number;
  /** Requests currently between parse and the end of their response. */
  readonly inFlight: number;
  /** Plain CONNECT tunnels currently open. */
  readonly tunnels: number;
  /** Intercepted (TLS-terminated) tunnels currently open. */
  readonly intercepted: number;
  readonly injected: number;
  readonly denied: number;
}

/** What createProxy returns; the daemon owns its lifecycle. */
export interface ProxyHandle {
  readonly server: import('node:http').Server;
  listen(port: number, host: string): Promise<import('node:net').AddressInfo>;
  /**
   * Remote callers (SPEC section 10): the same proxy behind TLS on another address (an HTTPS proxy
   * URL). The TLS server only decrypts; every connection then goes through the proxy as on loopback.
   */
  listenTls(
    port: number,
    host: string,
    tls: import('node:tls').SecureContextOptions,
  ): Promise<{ address: import('node:net').AddressInfo; server: import('node:tls').Server }>;
  /** The sessions with open client connections (team mode: checked after a lost change feed). */
  liveSessions(): string[];
  /** Stops accepting, waits up to graceMs for in-flight requests, then closes every socket. */
  close(graceMs?: number): Promise<void>;
  stats(): ProxyStats;
  /**
   * Pushed changes (issue 18 item 2): close at once every client connection (tunnel, keep-alive socket,
   * WebSocket) that these revoked sessions let in; every one of a deleted profile (and its upstream
   * connections); every stream that carries a removed connection's credential. Each returns how many
   * client connections it closed.
   */
  closeSessions(ids: Iterable<string>): number;
  closeProfile(profile: string): number;
  closeCredential(profile: string, provider: string, connection: string): number;
  /**
   * Whether the proxy would dial this destination: the loop check and the address filter, after DNS
   * (or the pin). Rejects with the proxy's own refusal (ERR_PROXY_LOOP, ERR_PROXY_DESTINATION_DENIED)
   * or a lookup failure. For `explain`.
   */
  checkDestination(a: import('./destination.js').Authority): Promise<void>;
}
