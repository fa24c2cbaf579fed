import { randomBytes } from 'node:crypto';
import { AppError, isAppError } from '../errors.js';
import { Secret } from '../secret.js';
import type { KvStore } from '../vault/types.js';
import { profileScope } from '../vault/scope.js';
import type { AuditSink } from '../audit/types.js';
import type { ProviderDef, OAuthConfig } from '../providers/types.js';
import {
  exchangeCode,
  pollDeviceToken,
  refreshTokens,
  revokeToken,
  RefreshCoordinator,
  startDeviceFlow,
  startPkceFlow,
  type FetchLike,
  type TokenSet,
} from '../providers/oauth.js';
import type { ConnectionService, StoredConnection } from './connections.js';
import { localRefreshLock, type RefreshLock } from './refresh-lock.js';

/** Refresh this long before expiry, so a token never expires in flight. */
export const REFRESH_MARGIN_MS = 60_000;
const FLOW_TTL_MS = 15 * 60_000;

interface Client {
  oauth: OAuthConfig;
  clientId: string;
  clientSecret?: Secret;
}

interface Flow {
  id: string;
  handle: string;
  provider: string;
  connection: string;
  state: 'pending' | 'done' | 'error';
  error?: AppError;
  abort: AbortController;
  createdAt: number;
}

export interface FlowStart {
  id: string;
  userCode?: string;
  verificationUri?: string;
  verificationUriComplete?: string;
  authorizeUrl?: string;
  expiresIn?: number;
}

/**
 * OAuth inside the daemon: client secrets, device codes, PKCE verifiers and tokens never leave
 * it. The CLI starts a flow, shows what the user must do, and polls its state.
 */
export class OAuthService {
  readonly #flows = new Map<string, Flow>();
  readonly #coordinator = new RefreshCoordinator<StoredConnection>();

  constructor(
    private readonly store: KvStore,
    private readonly provider: (name: string) => ProviderDef | undefined,
    private readonly connections: ConnectionService,
    private readonly audit: AuditSink,
    private readonly fetchImpl: FetchLike,
    /** Team mode: the refresh of one connection runs on one node at a time (refresh-lock.ts). */
    private readonly refreshLock: RefreshLock = localRefreshLock,
  ) {}

  #oauthOf(name: string): { def: ProviderDef; oauth: OAuthConfig } {
    const def = this.provider(name);
    if (!def)
      throw new AppError(
        'ERR_PROVIDER_NOT_FOUND',
        `unknown provider "${name}"`,
        'run `authsome provider list`',
      );
    if (!def.oauth)
      throw new AppError(
        'ERR_INPUT_INVALID',
        `provider "${name}" has no OAuth login`,
        `use: authsome login ${name} --flow api-key`,
      );
    return { def, oauth: def.oauth };
  }

  async setClient(
    handle: string,
    provider: string,
    clientId: string,
    clientSecret: string | undefined,
  ): Promise<void> {
    this.#oauthOf(provider);
    if (!/^[\x21-\x7e]{1,512}$/.test(clientId))
      throw new AppError(
        'ERR_INPUT_INVALID',
        'the client id must be printable ASCII without spaces',
        'copy it again from the provider',
      );
    await profileScope(this.store, handle).put(`oauth-client/${provider}`, {
      clientId,
      ...(clientSecret ? { clientSecret } : {}),
    });
    await this.audit.append({
      event: 'provider.client',
      profile: handle,
      provider,
      detail: { confidential: clientSecret !== undefined },
    });
  }

  async #client(handle: string, provider: string): Promise<Client> {
    const { oauth } = this.#oauthOf(provider);
    const rec = await profileScope(this.store, handle).get(`oauth-client/${provider}`);
    if (!rec || typeof rec['clientId'] !== 'string') {
      throw new AppError(
        'ERR_INPUT_INVALID',
        `no OAuth client registered for "${provider}" in this profile`,
        `run: authsome provider client ${provider} --client-id <id>`,
      );
    }
    const secret = typeof rec['clientSecret'] === 'string' ? new Secret(rec['clientSecret']) : undefined;
    return { oauth, clientId: rec['clientId'], ...(secret ? { clientSecret: secret } : {}) };
  }

  #options(c: Client, provider: string) {
    return {
      oauth: c.oauth,
      clientId: c.clientId,
      ...(c.clientSecret ? { clientSecret: c.clientSecret } : {}),
      fetchImpl: this.fetchImpl,
      provider,
    };
  }

  async startFlow(
    handle: string,
    provider: string,
    connection: string,
    kind: 'device' | 'pkce',
    scopes: string[] | undefined,
  ): Promise<FlowStart> {
    const client = await this.#client(handle, provider);
    this.#prune();
    const flow: Flow = {
      id: randomBytes(12).toString('hex'),
      handle,
      provider,
      connection,
      state: 'pending',
      abort: new AbortController(),
      createdAt: Date.now(),
    };
    const opts = { ...this.#options(client, provider), ...(scopes ? { scopes } : {}) };
    let start: FlowStart;
    let finish: Promise<TokenSet>;
    if (kind === 'device') {
      const d = await startDeviceFlow(opts);
      start = {
        id: flow.id,
        userCode: d.userCode,
        verificationUri: d.verificationUri,
        ...(d.verificationUriComplete ? { verificationUriComplete: d.verificationUriComplete } : {}),
        expiresIn: d.expiresIn,
      };
      finish = pollDeviceToken({
        ...opts,
        deviceCode: d.deviceCode,
        interval: d.interval,
        expiresIn: d.expiresIn,
        signal: flow.abort.signal,
      });
    } else {
      const p = await startPkceFlow({ ...opts, host: '127.0.0.1' });
      start = { id: flow.id, authorizeUrl: p.authorizeUrl, expiresIn: FLOW_TTL_MS / 1000 };
      finish = p
        .waitForCode(flow.abort.signal)
        .then((code) =>
          exchangeCode({ ...opts, code, codeVerifier: p.codeVerifier, redirectUri: p.redirectUri }),
        )
        .finally(() => p.close());
    }
    this.#flows.set(flow.id, flow);
    finish
      .then(async (tokens) => {
        // Cancelled (or its profile deleted) while the provider answered: store nothing.
        if (flow.abort.signal.aborted)
          throw new AppError(
            'ERR_NOT_FOUND',
            'the login was cancelled',
            'start it again with `authsome login`',
          );
        await this.connections.putTokens(handle, provider, connection, tokens, kind);
        await this.audit.append({
          event: 'login',
          profile: handle,
          provider,
          connection,
          detail: { flow: kind },
        });
        flow.state = 'done';
      })
      .catch((e: unknown) => {
        flow.state = 'error';
        flow.error = isAppError(e)
          ? e
          : new AppError(
              'ERR_OAUTH_FAILED',
              'the login failed',
              `run: authsome login ${provider} --flow ${kind}`,
            );
      });
    return start;
  }

  flowStatus(
    handle: string,
    id: string,
  ): { state: Flow['state']; error?: ReturnType<AppError['toJSON']>; connection: string } {
    const flow = this.#flows.get(id);
    if (!flow || flow.handle !== handle)
      throw new AppError(
        'ERR_NOT_FOUND',
        'no such login in progress',
        'start it again with `authsome login`',
      );
    return {
      state: flow.state,
      connection: flow.connection,
      ...(flow.error ? { error: flow.error.toJSON() } : {}),
    };
  }

  cancel(handle: string, id: string): void {
    const flow = this.#flows.get(id);
    if (!flow || flow.handle !== handle) return;
    flow.abort.abort();
    this.#flows.delete(id);
  }

  /** A deleted profile's logins in progress end here: none may store tokens for it afterwards. */
  cancelAll(handle: string): void {
    for (const [id, f] of this.#flows) {
      if (f.handle !== handle) continue;
      f.abort.abort();
      this.#flows.delete(id);
    }
  }

  #prune(): void {
    const now = Date.now();
    for (const [id, f] of this.#flows) {
      if (now - f.createdAt > FLOW_TTL_MS) {
        f.abort.abort();
        this.#flows.delete(id);
      }
    }
  }

  /** Called by the credential source: refreshes a token near expiry, once for all concurrent callers. */
  async refreshIfDue(handle: string, rec: StoredConnection): Promise<StoredConnection> {
    if (!rec.expiresAt || !rec.refreshToken || Date.parse(rec.expiresAt) - Date.now() > REFRESH_MARGIN_MS)
      return rec;
    const key = `${handle}/${rec.provider}/${rec.connection}`;
    return this.#coordinator.refresh(key, () =>
      this.refreshLock.run(key, () => this.#refreshNow(handle, rec)),
    );
  }

  async #refreshNow(handle: string, seen: StoredConnection): Promise<StoredConnection> {
    {
      // Another caller (in this process, or on another node) may have refreshed while we waited.
      const current = await this.connections.stored(handle, seen.provider, seen.connection);
      if (current?.expiresAt && Date.parse(current.expiresAt) - Date.now() > REFRESH_MARGIN_MS)
        return current;
      // Still due: refresh what is stored now (another node may have rotated the refresh token since
      // this one read the record), and write only over exactly that.
      const rec = current?.refreshToken ? current : seen;
      const fixIt = `authsome login ${rec.provider} --connection ${rec.connection} --flow ${rec.flow === 'pkce' ? 'pkce' : 'device'}`;
      try {
        const client = await this.#client(handle, rec.provider);
        const tokens = await refreshTokens({
          ...this.#options(client, rec.provider),
          refreshToken: new Secret(rec.refreshToken!),
        });
        const saved = await this.connections.putTokens(
          handle,
          rec.provider,
          rec.connection,
          tokens,
          rec.flow,
          { replaces: rec }, // only if rec is still what is stored: never over a newer login
        );
        await this.audit.append({
          event: 'token.refresh',
          profile: handle,
          provider: rec.provider,
          connection: rec.connection,
        });
        return saved;
      } catch (e) {
        await this.audit
          .append({
            event: 'token.refresh_failed',
            profile: handle,
            provider: rec.provider,
            connection: rec.connection,
            reason: isAppError(e) ? e.code : 'error',
          })
          .catch(() => undefined);
        throw new AppError(
          'ERR_TOKEN_REFRESH_FAILED',
          `the OAuth token of ${rec.provider} connection "${rec.connection}" could not be refreshed; log in again: ${fixIt}`,
          `log in again: ${fixIt}`,
          { cause: e },
        );
      }
    }
  }

  /** RFC 7009 revocation where the provider supports it; false when it cannot. Never throws. */
  async revoke(handle: string, rec: StoredConnection): Promise<boolean> {
    const def = this.provider(rec.provider);
    if (!def?.oauth?.revokeUrl) return false;
    try {
      const client = await this.#client(handle, rec.provider);
      const token = rec.refreshToken ?? rec.fields['access_token'];
      if (!token) return false;
      return await revokeToken({
        ...this.#options(client, rec.provider),
        token: new Secret(token),
        hint: rec.refreshToken ? 'refresh_token' : 'access_token',
      });
    } catch {
      return false;
    }
  }
}
