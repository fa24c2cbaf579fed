import type { AuditInput, AuditRecord, AuditSink } from '../../src/audit/types.js';
import type { LeafSource } from '../../src/ca/types.js';
import type { ProxySettings } from '../../src/config/settings.js';
import { AppError } from '../../src/errors.js';
import type { Destination, ProviderDef } from '../../src/providers/types.js';
import type {
  CredentialSource,
  ProviderMatcher,
  ProxyDeps,
  ResolvedCredential,
  SessionInfo,
  SessionVerifier,
} from '../../src/proxy/types.js';
import { Secret } from '../../src/secret.js';

/** A distinctive value every test scans client-visible bytes for (raw, base64, URL-encoded). */
export const CANARY = 'sk-canary-7Hq2ZpX9wLr4';

export function canaryForms(value: string = CANARY): string[] {
  return [
    value,
    Buffer.from(value).toString('base64'),
    encodeURIComponent(value),
    Buffer.from(`x:${value}`).toString('base64').slice(4),
  ];
}

export class FakeSessions implements SessionVerifier {
  readonly #tokens = new Map<string, SessionInfo>();
  calls = 0;

  add(
    handle: string,
    token: string,
    opts: { allow?: SessionInfo['allow']; expiresAt?: number } = {},
  ): string {
    this.#tokens.set(`${handle}\0${token}`, {
      id: `sess-${this.#tokens.size}`,
      profile: handle,
      allow: opts.allow,
      expiresAt: opts.expiresAt ?? Date.now() + 3600_000,
    });
    return token;
  }

  revoke(handle: string, token: string): void {
    this.#tokens.delete(`${handle}\0${token}`);
  }

  async verify(handle: string, token: string): Promise<SessionInfo | undefined> {
    this.calls++;
    const s = this.#tokens.get(`${handle}\0${token}`);
    return s && s.expiresAt > Date.now() ? s : undefined;
  }
}

/** profile -> provider -> connection -> fields; plus a default per (profile, provider). */
export class FakeCredentials implements CredentialSource {
  readonly #data = new Map<string, Record<string, string>>();
  readonly #defaults = new Map<string, string>();
  calls = 0;
  fail: AppError | undefined;

  set(
    profile: string,
    provider: string,
    connection: string,
    fields: Record<string, string>,
    isDefault = false,
  ): this {
    this.#data.set(`${profile}/${provider}/${connection}`, fields);
    if (isDefault || !this.#defaults.has(`${profile}/${provider}`))
      this.#defaults.set(`${profile}/${provider}`, connection);
    return this;
  }

  async resolve(
    profile: string,
    provider: string,
    connection: string | undefined,
  ): Promise<ResolvedCredential | undefined> {
    this.calls++;
    if (this.fail) throw this.fail;
    const name = connection ?? this.#defaults.get(`${profile}/${provider}`);
    if (name === undefined) return undefined;
    const raw = this.#data.get(`${profile}/${provider}/${name}`);
    if (!raw) return undefined;
    return {
      connection: name,
      fields: Object.fromEntries(Object.entries(raw).map(([k, v]) => [k, new Secret(v)])),
    };
  }
}

/** Records every event; `fail` makes append reject like a full disk. `order` is shared with the upstream. */
export class FakeAudit implements AuditSink {
  readonly records: AuditRecord[] = [];
  fail = false;
  order: string[] | undefined;
  /** Delay before an append settles (to widen ordering races in tests). */
  delayMs = 0;

  async append(input: AuditInput): Promise<AuditRecord> {
    if (this.delayMs) await new Promise((r) => setTimeout(r, this.delayMs));
    if (this.fail) throw new AppError('ERR_AUDIT_UNAVAILABLE', 'audit log unavailable (test)');
    const rec: AuditRecord = {
      ...input,
      ts: new Date().toISOString(),
      seq: this.records.length,
      prev: '',
      hash: '',
    };
    this.records.push(rec);
    this.order?.push(`audit:${input.event}:${input.path ?? ''}`);
    return rec;
  }

  events(name: AuditInput['event']): AuditRecord[] {
    return this.records.filter((r) => r.event === name);
  }
}

/** Exact host, port (default 443) and optional path prefix — enough for proxy tests. */
export class FakeProviders implements ProviderMatcher {
  readonly #defs: ProviderDef[];

  constructor(defs: ProviderDef[]) {
    this.#defs = defs;
  }

  match(dest: Destination): ProviderDef | undefined {
    return this.#defs.find((d) =>
      d.hosts.some(
        (h) =>
          h.host === dest.host &&
          (h.port ?? 443) === dest.port &&
          (h.pathPrefix === undefined || dest.path.startsWith(h.pathPrefix)),
      ),
    );
  }

  covers(host: string, port: number): boolean {
    return this.#defs.some((d) => d.hosts.some((h) => h.host === host && (h.port ?? 443) === port));
  }
}

export function provider(
  name: string,
  hosts: ProviderDef['hosts'],
  inject: ProviderDef['inject'],
  fields = ['api_key'],
): ProviderDef {
  return { name, displayName: name, docsUrl: 'https://example.test/docs', hosts, fields, inject };
}

export function bearer(name: string, hosts: ProviderDef['hosts']): ProviderDef {
  return provider(name, hosts, [{ type: 'header', name: 'Authorization', template: 'Bearer {{api_key}}' }]);
}

export function testSettings(over: Partial<ProxySettings> = {}): ProxySettings {
  return {
    host: '127.0.0.1',
    port: 0,
    strict: false,
    headersTimeoutMs: 10_000,
    requestTimeoutMs: 0,
    idleTimeoutMs: 30_000,
    upstreamConnectTimeoutMs: 5_000,
    upstreamHeadersTimeoutMs: 10_000,
    upstreamBodyTimeoutMs: 30_000,
    maxHeaderSize: 16_384,
    maxHeaderCount: 100,
    maxConnections: 4096,
    maxConnectionsPerProfile: 2048,
    maxUnidentified: 256,
    ...over,
  };
}

export interface FakeDepsInput {
  settings?: Partial<ProxySettings>;
  providers: ProviderDef[];
  leaves: LeafSource;
  resolve?: Map<string, string>;
  upstreamCaPem?: string;
  selfAddresses?: () => ReadonlyArray<{ host: string; port: number }>;
}

export function fakeDeps(
  input: FakeDepsInput,
): ProxyDeps & { sessions: FakeSessions; credentials: FakeCredentials; audit: FakeAudit } {
  return {
    settings: testSettings(input.settings),
    sessions: new FakeSessions(),
    providers: new FakeProviders(input.providers),
    credentials: new FakeCredentials(),
    audit: new FakeAudit(),
    leaves: input.leaves,
    resolve: input.resolve ?? new Map(),
    upstreamCaPem: input.upstreamCaPem,
    selfAddresses: input.selfAddresses ?? (() => []),
  };
}
