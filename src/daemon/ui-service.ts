import type { IncomingMessage, ServerResponse } from 'node:http';
import { AppError } from '../errors.js';
import { VERSION } from '../version.js';
import type { App } from '../app.js';
import { parseJsonBody, readBody } from './http-util.js';
import { str, type Router } from './router.js';
import { parseDuration } from '../config/settings.js';
import { buildUiApi } from './ui-api.js';
import { UiAudit } from './ui-audit.js';
import { UiEvents } from './ui-events.js';
import {
  CSRF_HEADER,
  checkUiRequest,
  headerValues,
  readCookie,
  sendUiError,
  sendUiJson,
  sessionCookie,
  setSecurityHeaders,
} from './ui-http.js';
import { LINK_TTL_MS, noSession, UiSessionStore, type UiSession } from './ui-sessions.js';
import { UiStatic } from './ui-static.js';

/**
 * The dashboard (SPEC section 11), as the daemon serves it on its control port:
 *   POST /v1/ui/link   (PoP-signed, like every control call) a one-time link for the signing profile
 *   /ui/, /ui/login    the page (dist/ui); /ui/assets/* its script and style
 *   /ui/api/*          the page's API, authenticated by the cookie session instead of PoP
 * The link's token rides in the URL's fragment, which browsers never send: the page POSTs it to
 * /ui/api/login (exact Origin) and gets the cookie; the fragment is dropped from the address bar and
 * history at once, and no Referer can carry it.
 */
export interface UiService {
  handle(req: IncomingMessage, res: ServerResponse, port: number): Promise<void>;
  /** Adds POST /v1/ui/link to the control API. */
  addLinkRoute(router: Router): void;
  /** Daemon start: what this node left behind goes. */
  start(): Promise<void>;
  /** Daemon stop, before the control server drains: the live streams end. */
  closeStreams(): void;
  /** Daemon stop, while the store is still open: the sessions this run issued are deleted. */
  stop(): Promise<void>;
}

/** True for the request targets the dashboard answers (everything else is the PoP-signed API). */
export function isUiTarget(target: string | undefined): boolean {
  return target !== undefined && (target === '/ui' || target.startsWith('/ui/') || target.startsWith('/ui?'));
}

/** The node name sessions are recorded under: team mode's node (SPEC 10), else one local daemon. */
function nodeName(app: App): string {
  return app.node ?? 'local';
}

export function createUiService(app: App, opts: { staticDir?: string } = {}): UiService {
  const node = nodeName(app);
  const sessions = new UiSessionStore(app.store, {
    node,
    profileKey: async (h) => (await app.registry.get(h))?.publicJwk.x,
  });
  const files = new UiStatic(opts.staticDir);
  // Only the writer's head and listener, and the log's path: the audit sink's other parts may change.
  const audit = new UiAudit({
    path: app.settings.paths.auditLog,
    head: () => app.audit.head,
    onAppend: (l) => app.audit.onAppend(l),
  });
  const api = buildUiApi(app, audit);
  const isOwner = async (h: string) => (await app.registry.get(h))?.owner === true;
  const events = new UiEvents({
    onAudit: (l) => app.audit.onAppend(l),
    onApproval: (l) => app.policies.approvals.subscribe(l),
    onSessionsRevoked: (l) => app.sessions.onRevoke(l),
  });

  const login = async (req: IncomingMessage, res: ServerResponse, port: number): Promise<void> => {
    const body = parseJsonBody(await readJson(req));
    await app.audit.ready(); // a session is access granted: refused while it could not be audited
    const { cookie, session } = await sessions.exchange(body['token']);
    // The browser's earlier session of this daemon, which the new cookie replaces, ends now.
    let previous: string | undefined;
    try {
      previous = readCookie(req, port);
    } catch {
      previous = undefined;
    }
    if (previous !== undefined) await sessions.revoke(previous).catch(() => false);
    await app.audit.append({
      event: 'ui.login',
      profile: session.profile,
      detail: { id: session.id, node: session.node },
    });
    sendUiJson(
      res,
      200,
      { profile: session.profile, expiresAt: new Date(session.expiresAt).toISOString() },
      { 'set-cookie': sessionCookie(port, cookie, Math.floor(sessions.sessionTtlMs / 1000)) },
    );
  };

  const api_ = async (
    req: IncomingMessage,
    res: ServerResponse,
    port: number,
    pathname: string,
    query: URLSearchParams,
  ): Promise<void> => {
    const method = req.method ?? 'GET';
    if (pathname === '/ui/api/login' && method === 'POST') return login(req, res, port);
    const cookie = readCookie(req, port);
    const session = await sessions.verify(cookie);
    if (session === undefined) throw noSession();
    const changes = method !== 'GET' && method !== 'HEAD';
    const body = changes ? await readJson(req) : Buffer.alloc(0);
    if (changes) {
      // The synchronizer token: only the session's own page was given it (by /ui/api/me).
      const sent = headerValues(req.rawHeaders, CSRF_HEADER);
      if (sent.length !== 1 || !UiSessionStore.csrfMatches(session, sent[0]))
        throw new AppError(
          'ERR_AUTH_FORBIDDEN',
          'missing or wrong CSRF token',
          'use the dashboard page itself; reload it if it was open for long',
        );
    }
    if (pathname === '/ui/api/me' && method === 'GET') return sendUiJson(res, 200, await me(session));
    if (pathname === '/ui/api/events' && method === 'GET')
      return events.attach(
        res,
        session,
        await isOwner(session.profile),
        async () => (await sessions.verify(cookie)) !== undefined,
      );
    if (pathname === '/ui/api/logout' && method === 'POST') {
      await sessions.revoke(cookie!);
      events.endSession(session.id);
      await app.audit
        .append({ event: 'ui.logout', profile: session.profile, detail: { id: session.id } })
        .catch(() => undefined); // access taken away: it goes on even when the log refuses
      return sendUiJson(res, 200, { loggedOut: true }, { 'set-cookie': sessionCookie(port, '', 0) });
    }
    const { handler, params } = api.find(method, pathname);
    if (changes) await app.audit.ready();
    const out = await handler({ handle: session.profile, params, query, body: parseJsonBody(body) });
    sendUiJson(res, out.status ?? 200, out.body);
  };

  const me = async (s: UiSession) => {
    const owner = await isOwner(s.profile);
    return {
      profile: s.profile,
      owner,
      profiles: owner ? (await app.registry.list()).map((p) => p.handle) : [s.profile],
      csrf: s.csrf,
      sessionId: s.id,
      sessionExpiresAt: new Date(s.expiresAt).toISOString(),
      node: s.node === node ? node : `${node} (session from ${s.node})`,
      version: VERSION,
      controlPort: app.controlPort(),
      proxyPort: app.proxyPort(),
    };
  };

  return {
    async handle(req, res, port) {
      try {
        checkUiRequest(req, port);
        const target = req.url ?? '';
        const q = target.indexOf('?');
        const pathname = q < 0 ? target : target.slice(0, q);
        // Exactly as sent: no dot segments, no doubled or encoded slashes, nothing a parser would rewrite.
        if (!/^\/ui(?:\/[A-Za-z0-9._~-]*)*$/.test(pathname) || /\/\.{1,2}(?:\/|$)/.test(pathname))
          throw new AppError('ERR_NOT_FOUND', 'no such dashboard path', 'open /ui/');
        const query = new URLSearchParams(q < 0 ? '' : target.slice(q + 1));
        if (pathname === '/ui') {
          setSecurityHeaders(res);
          res.writeHead(308, { location: '/ui/', 'cache-control': 'no-store', 'content-length': 0 });
          res.end();
          return;
        }
        if (pathname.startsWith('/ui/api/')) return await api_(req, res, port, pathname, query);
        if (await files.serve(pathname, req.method ?? 'GET', res)) return;
        throw new AppError('ERR_NOT_FOUND', 'no such dashboard path', 'open /ui/');
      } catch (e) {
        sendUiError(res, e);
      }
    },

    addLinkRoute(router) {
      router.add('POST', '/v1/ui/link', async ({ handle, body }) => {
        // A shorter-lived link may be asked for (`authsome ui --ttl 10s`), never a longer one.
        const ttl = str(body, 'ttl');
        let ttlMs: number | undefined;
        if (ttl !== undefined) {
          ttlMs = parseDuration(ttl);
          if (ttlMs <= 0 || ttlMs > LINK_TTL_MS)
            throw new AppError(
              'ERR_INPUT_INVALID',
              `--ttl ${ttl} is out of range`,
              'a link lives at most 60s',
            );
        }
        const { token, expiresAt } = await sessions.mintLink(handle, ttlMs);
        return {
          status: 201,
          body: {
            url: `http://127.0.0.1:${app.controlPort()}/ui/login#token=${token}`,
            expires: new Date(expiresAt).toISOString(),
          },
        };
      });
    },

    async start() {
      await sessions.start();
    },

    closeStreams() {
      events.close();
      audit.close();
    },

    async stop() {
      await sessions.stop();
    },
  };
}

/** A JSON body (or none): a form post (what another page can send without CORS) is refused. */
async function readJson(req: IncomingMessage): Promise<Buffer> {
  const body = await readBody(req);
  const types = headerValues(req.rawHeaders, 'content-type');
  if (body.length > 0 && (types.length !== 1 || !/^application\/json\s*(;|$)/i.test(types[0]!)))
    throw new AppError(
      'ERR_INPUT_INVALID',
      'the dashboard API takes JSON bodies only',
      'send application/json',
    );
  return body;
}
