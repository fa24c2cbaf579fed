import type { AddressInfo } from 'node:net';
import { parseDuration, type Settings } from './config/settings.js';
import { initSodium, loadMasterKey, openStore, profileScope, type ChangeFeed } from './vault/index.js';
import type { KvStore } from './vault/types.js';
import { AuditWriter } from './audit/index.js';
import { ProfileRegistry, SessionStore, PopVerifier } from './identity/index.js';
import { existsSync } from 'node:fs';
import { loadCa, type LocalCa } from './ca/index.js';
import { assertPrivateKeyFile } from './ca/root.js';
import { finishRotation, rotationFiles } from './ca/rotate.js';
import { CaManager } from './daemon/ca-manager.js';
import { createProxy, type ProxyHandle } from './proxy/index.js';
import { ConnectionService } from './daemon/connections.js';
import { ProviderCatalog } from './daemon/provider-catalog.js';
import { OAuthService } from './daemon/oauth.js';
import { upstreamFetch } from './daemon/upstream-fetch.js';
import { exactHosts } from './providers/host.js';
import { openTeamNode } from './daemon/team.js';
import { followRemoteChanges } from './daemon/remote-changes.js';
import { pgRefreshLock } from './daemon/refresh-lock.js';
import { PolicyService } from './daemon/policies.js';
import { findCaller, PgApprovalState, PgRateState } from './policy/index.js';
import { STALE_MS } from './daemon/nodes.js';

/** Everything the daemon runs, built from settings. The only place that wires areas together. */
export interface App {
  readonly settings: Settings;
  readonly startedAt: Date;
  readonly store: KvStore;
  readonly audit: AuditWriter;
  readonly registry: ProfileRegistry;
  readonly sessions: SessionStore;
  readonly pop: PopVerifier;
  readonly providers: ProviderCatalog;
  readonly connections: ConnectionService;
  readonly oauth: OAuthService;
  readonly proxy: ProxyHandle;
  /** Team mode: this node's name (server/node.json); undefined with LevelDB. */
  readonly node: string | undefined;
  /** Changes made through this node and (team mode) every other one. */
  readonly feed: ChangeFeed;
  readonly engine: 'level' | 'postgres';
  /** Policies, held approvals and rate buckets (SPEC section 9). */
  readonly policies: PolicyService;
  /**
   * The CA leaves are minted from (team mode: the one every node loads from the store); `ca rotate`
   * swaps it without a restart (LevelDB only).
   */
  readonly ca: CaManager;
  controlPort(): number;
  proxyPort(): number;
  setControlAddress(a: AddressInfo): void;
  setProxyAddress(a: AddressInfo): void;
  /** Another listener of this daemon (--listen): the proxy never forwards to it. */
  addSelfAddress(a: AddressInfo): void;
  /** Where remote callers reach this node (--listen), once it listens there. */
  remote: { host: string; controlPort: number; proxyPort: number } | undefined;
  deleteProfileData(handle: string): Promise<number>;
  close(): Promise<void>;
}

export async function buildApp(settings: Settings): Promise<App> {
  const { paths } = settings;
  const startedAt = new Date();
  await initSodium();
  const masterKey = await loadMasterKey(paths.masterKey);
  // LevelDB: the CA in server/ca/, as always; a finish of `ca rotate` cut short by a crash (ca.key already
  // the new key) is completed before it loads, and a rotation in progress has a second key, as private as
  // the first (SPEC section 4). PostgreSQL (team mode): the one CA sealed in the store.
  let repaired: { fingerprint: string } | undefined;
  let fileCa: LocalCa | undefined;
  if (settings.store.url === undefined) {
    const next = rotationFiles(paths.caDir);
    repaired = existsSync(next.pem) && !existsSync(next.key) ? await finishRotation(paths.caDir) : undefined;
    if (existsSync(next.key)) await assertPrivateKeyFile(next.key);
    fileCa = await loadCa(paths.caDir);
  }
  const vault = await openStore(settings, masterKey);
  const { store, feed } = vault;
  const opened: Array<() => Promise<void>> = [() => vault.close()];
  try {
    const team = vault.pg ? await openTeamNode(settings, vault.pg, store) : undefined;
    if (team) opened.unshift(() => team.close());
    const ca = fileCa ?? team!.ca;
    const audit = await AuditWriter.open(paths.auditLog);
    opened.unshift(() => audit.close());
    const registry = new ProfileRegistry(store);
    const sessions = new SessionStore(store, {
      maxTtlMs: parseDuration(settings.session.maxTtl),
      profileKey: async (h) => (await registry.get(h))?.publicJwk.x,
      feed,
    });
    const purge = setInterval(() => void sessions.purgeExpired().catch(() => undefined), 10 * 60_000);
    purge.unref();
    opened.unshift(async () => clearInterval(purge));
    const pop = new PopVerifier({
      lookupKey: (h) => registry.lookupKey(h),
      startedAtMs: startedAt.getTime(),
    });
    const providers = await ProviderCatalog.open(store, feed);
    opened.unshift(async () => providers.close());
    const connections = new ConnectionService(store, (n) => providers.require(n), { feed });
    let control: AddressInfo | undefined;
    let proxyAddr: AddressInfo | undefined;
    const extraAddrs: AddressInfo[] = [];
    const selfAddresses = () => [
      ...(control ? [{ host: control.address, port: control.port }] : []),
      ...(proxyAddr ? [{ host: proxyAddr.address, port: proxyAddr.port }] : []),
      ...extraAddrs.map((a) => ({ host: a.address, port: a.port })),
    ];
    const oauth = new OAuthService(
      store,
      (n) => providers.get(n),
      connections,
      audit,
      upstreamFetch(settings, selfAddresses),
      ...(vault.pg ? [pgRefreshLock(vault.pg)] : []),
    );
    connections.setRefresher((h, rec) => oauth.refreshIfDue(h, rec));
    // Team mode: rate buckets and held approvals live in the database, shared by every node (SPEC
    // section 10), and compiled policies are read through while this node's change feed is down.
    const shared =
      vault.pg && team
        ? {
            rates: new PgRateState(vault.pg),
            approvals: await PgApprovalState.open({
              db: vault.pg,
              feed,
              node: team.name,
              maxHeld: settings.policy.maxHeld,
              staleMs: STALE_MS,
            }),
            fresh: () => feed.up,
          }
        : undefined;
    if (shared) opened.unshift(() => shared.approvals.close());
    const policies = new PolicyService(store, audit, {
      approvalTimeoutMs: settings.policy.approvalTimeoutS * 1000,
      maxHeld: settings.policy.maxHeld,
      attributeAll: settings.policy.attributeCallers,
      ...shared,
    });
    if (repaired)
      await audit.append({
        event: 'ca.rotate',
        profile: '-',
        detail: { phase: 'finish', ca: repaired.fingerprint, completed_at_start: true },
      });
    // Team mode: a policy set or cleared through another node drops this node's compiled copy.
    const unwatchPolicies = feed.subscribe('profile/', (key) => {
      if (key !== undefined)
        return void (key.split('/')[2] === 'policy' && policies.invalidate(key.split('/')[1]!));
      policies.invalidateAll(); // at once: the feed turns up right after this call
    });
    opened.unshift(async () => unwatchPolicies());
    const leaves = await CaManager.open(paths.caDir, ca, audit);
    opened.unshift(async () => leaves.close());
    // Mint leaves for the providers' exact hosts in the background, off the first request's path.
    const warm = setTimeout(() => {
      const hosts = providers.list().flatMap((p) => exactHosts(p.def));
      void leaves.warm(hosts).catch(() => undefined);
    }, 200);
    warm.unref();
    const proxy = createProxy({
      settings: settings.proxy,
      sessions,
      providers,
      credentials: connections,
      audit,
      leaves,
      resolve: settings.resolve,
      upstreamCaPem: settings.upstreamCaPem,
      selfAddresses,
      policy: policies,
      callers: { find: (socket) => findCaller(socket) },
    });
    // Pushed to open connections at once (issue 18 item 2): a revoked session, a removed connection.
    sessions.onRevoke((revoked) => proxy.closeSessions(revoked.map((r) => r.id)));
    connections.onRemoved((h, provider, connection) => proxy.closeCredential(h, provider, connection));
    // The same for changes made through other nodes (team mode), heard on the change feed.
    const unfollow = followRemoteChanges(feed, store, proxy);
    opened.unshift(async () => unfollow());
    return {
      settings,
      startedAt,
      store,
      audit,
      registry,
      sessions,
      pop,
      providers,
      connections,
      oauth,
      proxy,
      node: team?.name,
      feed,
      engine: vault.engine,
      policies,
      ca: leaves,
      controlPort: () => control?.port ?? 0,
      proxyPort: () => proxyAddr?.port ?? 0,
      setControlAddress: (a) => {
        control = a;
      },
      setProxyAddress: (a) => {
        proxyAddr = a;
      },
      addSelfAddress: (a) => {
        extraAddrs.push(a);
      },
      remote: undefined,
      async deleteProfileData(handle) {
        oauth.cancelAll(handle); // a login finishing later must not write under the deleted name
        await sessions.revokeAll(handle); // first: its tokens stop reaching anything at once
        proxy.closeProfile(handle);
        const n = await profileScope(store, handle).destroy();
        connections.forget(handle);
        await policies.forget(handle);
        return n;
      },
      async close() {
        // Every closer runs even when one fails (the store must close after a failing audit flush).
        const results = await Promise.allSettled([proxy.close()]);
        for (const c of opened) results.push(...(await Promise.allSettled([c()])));
        const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
        if (failed) throw failed.reason;
      },
    };
  } catch (e) {
    for (const c of opened) await c().catch(() => undefined);
    throw e;
  }
}
