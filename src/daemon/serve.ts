import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { AppError } from '../errors.js';
import { isValidName } from '../names.js';
import { loadSettings, type SettingsOverrides } from '../config/settings.js';
import { buildApp, type App } from '../app.js';
import { PopVerifier, parsePublicJwk } from '../identity/index.js';
import { VERSION } from '../version.js';
import { anchorKey, recordGap, saveAnchor } from './audit-anchor.js';
import { listenRemote, type RemoteListeners } from './remote-listen.js';
import { createControlServer } from './control.js';
import { buildRoutes } from './routes.js';
import { createUiService, isUiTarget } from './ui-service.js';
import { parseJsonBody } from './http-util.js';
import { stat } from 'node:fs/promises';
import type { Socket } from 'node:net';
import {
  writeDaemonInfo,
  removeDaemonInfo,
  processStartTime,
  readDaemonInfo,
  isAlive,
  type DaemonInfo,
} from './daemon-file.js';

/** How long SIGTERM lets in-flight proxy and control requests run before cutting them. */
const DRAIN_MS = 10_000;
/** After this, a stop that is stuck (a hung disk) exits anyway: nothing unacknowledged is promised. */
const STOP_DEADLINE_MS = DRAIN_MS + 5_000;

/**
 * The first profile registers itself: the bootstrap request is signed by the key it carries,
 * and is accepted only while the registry is empty (SPEC section 4: the first profile is the owner).
 */
async function authenticate(app: App, req: IncomingMessage, url: string, body: Buffer): Promise<string> {
  const target = { method: req.method ?? 'GET', url, body: new Uint8Array(body) };
  const auths = req.headersDistinct['authorization'] ?? [];
  if (auths.length > 1)
    throw new AppError(
      'ERR_AUTH_POP_INVALID',
      'more than one Authorization header',
      'send exactly one PoP token',
    );
  const auth = auths[0];
  const parsed = new URL(url);
  if (parsed.pathname !== '/v1/bootstrap') return (await app.pop.verify(auth, target)).handle;
  // The owner is made by `authsome init` on the node's own machine, never by a remote caller.
  if (parsed.protocol !== 'http:')
    throw new AppError(
      'ERR_AUTH_FORBIDDEN',
      'the owner profile is bootstrapped on loopback only',
      'run `authsome init` on the node itself',
    );
  if ((await app.registry.list()).length > 0) {
    throw new AppError(
      'ERR_AUTH_FORBIDDEN',
      'this daemon already has an owner profile',
      'use `authsome profile create` as the owner',
    );
  }
  const json = parseJsonBody(body);
  const handle = json['handle'];
  const jwk = json['publicJwk'];
  const once = new PopVerifier({
    lookupKey: async (h) => (isValidName(handle) && h === handle ? parsePublicJwk(jwk) : undefined),
    startedAtMs: app.startedAt.getTime(),
  });
  return (await once.verify(auth, target)).handle;
}

export async function serve(
  home: string,
  overrides: SettingsOverrides = {},
): Promise<{ controlPort: number; proxyPort: number }> {
  const settings = loadSettings(home, process.env, overrides);
  const app = await buildApp(settings);
  const ui = createUiService(app); // the dashboard (SPEC section 11)
  const router = buildRoutes(app);
  ui.addLinkRoute(router);
  const controlOptions = {
    router,
    authenticate: (req: IncomingMessage, url: string, body: Buffer) => authenticate(app, req, url, body),
    // Changes are stored, then audited: a log that cannot take their record refuses them first.
    beforeChange: () => app.audit.ready(),
  };
  // The dashboard is served on the loopback listener only (the remote one, --listen, never has it).
  const control = createControlServer({
    ...controlOptions,
    ui: { owns: isUiTarget, handle: (req, res, port) => ui.handle(req, res, port) },
  });
  let remote: RemoteListeners | undefined;
  let stopping = false;
  const inFlight = new Set<ServerResponse>();
  // Connections that never sent a request (a browser's preconnect, with the dashboard open): Node counts
  // them as busy until headersTimeout, so a stop closes them itself instead of waiting out the drain.
  const unused = new Set<Socket>();
  control.server.on('connection', (s: Socket) => {
    unused.add(s);
    s.once('close', () => unused.delete(s));
  });
  // Prepended, so it runs before the router (which may answer synchronously) can send the headers.
  const track = (_req: IncomingMessage, res: ServerResponse) => {
    // A request parsed after SIGTERM (it was already on the wire) is answered, then its connection closed.
    if (stopping && !res.headersSent) res.setHeader('connection', 'close');
    unused.delete(res.socket!);
    inFlight.add(res);
    res.once('close', () => inFlight.delete(res));
  };
  control.server.prependListener('request', track);
  let ports: { controlPort: number; proxyPort: number };
  let info: DaemonInfo | undefined;
  try {
    const c = await control.listen(settings.daemon.port, settings.daemon.host);
    app.setControlAddress(c);
    const p = await app.proxy.listen(settings.proxy.port, settings.proxy.host);
    app.setProxyAddress(p);
    if (settings.listen) {
      remote = await listenRemote(app, settings.listen, controlOptions);
      remote.control.prependListener('request', track);
      app.remote = { host: remote.host, controlPort: remote.controlPort, proxyPort: remote.proxyPort };
    }
    await recordGap(app.store, app.audit, anchorKey(app.node));
    await ui.start();
    await app.audit.append({
      event: 'daemon.start',
      profile: '-',
      detail: { pid: process.pid, control_port: c.port, proxy_port: p.port, version: VERSION },
    });
    await saveAnchor(app.store, app.audit, settings.paths.auditAnchor, anchorKey(app.node));
    const procStart = processStartTime(process.pid);
    info = {
      pid: process.pid,
      host: settings.daemon.host,
      controlPort: c.port,
      proxyHost: settings.proxy.host,
      proxyPort: p.port,
      startedAt: app.startedAt.toISOString(),
      version: VERSION,
      ...(procStart !== undefined ? { procStart } : {}),
      ...(app.node !== undefined ? { node: app.node } : {}),
      ...(remote
        ? { listen: { host: remote.host, controlPort: remote.controlPort, proxyPort: remote.proxyPort } }
        : {}),
    };
    await writeDaemonInfo(settings.paths.daemonJson, info);
    ports = { controlPort: c.port, proxyPort: p.port };
    const where = remote
      ? `; remote callers: control https://${hostPort(remote.host, remote.controlPort)}, proxy https://${hostPort(remote.host, remote.proxyPort)}`
      : '';
    console.log(
      `authsome daemon ${VERSION} pid ${process.pid}${app.node ? ` (node ${app.node}, ${app.engine})` : ''}: control http://${settings.daemon.host}:${c.port}, proxy http://${settings.proxy.host}:${p.port}${where}`,
    );
  } catch (e) {
    control.server.close();
    remote?.close();
    remote?.control.close();
    await app.close().catch(() => undefined);
    if ((e as NodeJS.ErrnoException).code === 'EADDRINUSE') {
      throw new AppError(
        'ERR_DAEMON_START_FAILED',
        `port in use: ${(e as Error).message}`,
        'stop the other process, or set AUTHSOME_DAEMON_PORT / AUTHSOME_PROXY_PORT (0 picks a free port)',
      );
    }
    throw e;
  }

  const stop = async (signal: string): Promise<void> => {
    if (stopping) return;
    stopping = true;
    console.log(`authsome daemon: ${signal}, draining`);
    setTimeout(() => {
      console.error(`authsome daemon: could not stop within ${STOP_DEADLINE_MS / 1000}s, exiting`);
      process.exit(1);
    }, STOP_DEADLINE_MS).unref();
    let code = 0;
    try {
      // Stop taking work, and let what is in flight finish while the audit log and the store are still
      // open: an in-flight login completes its write and its audit line, a proxied request its response.
      // Held requests are rejected first (audited by the proxy), or the drain would wait for them.
      await app.policies.shutdown().catch(() => undefined);
      ui.closeStreams();
      for (const s of unused) s.destroy();
      remote?.close();
      await Promise.all([
        app.proxy.close(DRAIN_MS),
        drainControl(control.server, inFlight, DRAIN_MS),
        ...(remote ? [drainControl(remote.control, inFlight, DRAIN_MS)] : []),
      ]);
      await app.audit
        .append({ event: 'daemon.stop', profile: '-', detail: { signal } })
        .catch((e: unknown) => {
          console.error('authsome daemon: could not audit daemon.stop:', e);
        });
      await saveAnchor(app.store, app.audit, settings.paths.auditAnchor, anchorKey(app.node)).catch(
        (e: unknown) => {
          console.error('authsome daemon: could not keep the audit head:', e);
        },
      );
      // The dashboard sessions this daemon issued end with it (in team mode, other nodes' stay).
      await ui.stop().catch((e: unknown) => {
        console.error('authsome daemon: could not end the dashboard sessions:', e);
      });
      await app.close(); // audit writer (flushes what is queued) and store (waits for queued writes)
    } catch (e) {
      console.error('authsome daemon: error while stopping:', e);
      code = 1;
    }
    await removeDaemonInfo(settings.paths.daemonJson, process.pid).catch(() => undefined);
    process.exit(code);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
  // The home as it was at start: a home deleted and created again at the same path is another one.
  const homeId = await stat(settings.paths.home).then(
    (st) => ({ dev: st.dev, ino: st.ino }),
    () => undefined,
  );
  const watch = setInterval(() => {
    if (stopping || info === undefined || homeId === undefined) return;
    void watchHome(settings.paths.home, homeId, settings.paths.daemonJson, info, () => !stopping).then(
      (gone) => gone && void stop('home removed'),
      () => undefined,
    );
  }, WATCH_MS);
  watch.unref();
  return ports;
}

function hostPort(host: string, port: number): string {
  return `${host.includes(':') ? `[${host}]` : host}:${port}`;
}

/** How often the daemon checks that its home and daemon.json are still there. */
const WATCH_MS = 2_000;

/**
 * A daemon whose home was deleted (or replaced by a new one at the same path) serves nothing useful
 * (every injection fails on the missing audit log) yet keeps its ports and would run beside the daemon
 * of a new home at the same path: it stops (true). A daemon.json deleted or overwritten with junk
 * would leave the daemon running where no command can find or stop it: it is written again, unless it
 * names another live process.
 */
async function watchHome(
  home: string,
  homeId: { dev: number; ino: number },
  daemonJson: string,
  info: DaemonInfo,
  serving: () => boolean,
): Promise<boolean> {
  let st;
  try {
    st = await stat(home);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') return false;
  }
  if (st === undefined || st.dev !== homeId.dev || st.ino !== homeId.ino) {
    console.error(
      `authsome daemon: its home ${home} was removed${st ? ' (and created again)' : ''}; stopping`,
    );
    return true;
  }
  const cur = await readDaemonInfo(daemonJson);
  if (cur?.pid === info.pid || (cur !== undefined && isAlive(cur.pid)) || !serving()) return false;
  await writeDaemonInfo(daemonJson, info);
  return false;
}

/**
 * Closes the control API gracefully: no new connections, idle keep-alive sockets closed, and each
 * in-flight request told to close its connection once answered. Cut after graceMs.
 */
function drainControl(server: Server, inFlight: ReadonlySet<ServerResponse>, graceMs: number): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => server.closeAllConnections(), graceMs);
    timer.unref();
    server.close(() => {
      clearTimeout(timer);
      resolve();
    });
    for (const res of inFlight) if (!res.headersSent) res.setHeader('connection', 'close');
    server.closeIdleConnections();
  });
}
