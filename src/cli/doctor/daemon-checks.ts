import { X509Certificate, createPrivateKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { rename, writeFile, rm } from 'node:fs/promises';
import type { HomePaths } from '../../config/paths.js';
import { isAppError } from '../../errors.js';
import { VERSION } from '../../version.js';
import type { DaemonClient } from '../../daemon/client.js';
import type { DaemonInfo } from '../../daemon/daemon-file.js';
import { daemonDate, intercept, proxyConnect } from './probe.js';
import { fail, pass, warn, type Check } from './types.js';
import type { CaState } from './local.js';

const RESTART = 'authsome daemon stop && authsome daemon start';

export async function checkStatus(client: DaemonClient): Promise<Check[]> {
  try {
    const s = await client.call<{ version: string; pid: number; sealed: boolean }>('GET', '/v1/status');
    const out = [
      pass(
        'daemon',
        'daemon',
        `pid ${s.pid}, control 127.0.0.1:${client.info.controlPort}, proxy 127.0.0.1:${client.info.proxyPort}; profile "${client.handle}" accepted`,
      ),
    ];
    out.push(
      s.sealed
        ? fail(
            'store',
            'store and master key',
            'the daemon is sealed (the master key does not open the store)',
            `restore server/master.key, then ${RESTART}`,
            'ERR_VAULT_SEALED',
          )
        : pass(
            'store',
            'store and master key',
            'the daemon opened the store with this master key (key check passed)',
          ),
    );
    if (s.version !== VERSION)
      out.push(
        warn('version', 'daemon version', `the daemon runs ${s.version}, this CLI is ${VERSION}`, RESTART),
      );
    return out;
  } catch (e) {
    if (!isAppError(e)) throw e;
    return [
      fail(
        'daemon',
        'daemon',
        `pid ${client.info.pid} is running but refused or failed the status call: ${e.message} [${e.code}]`,
        e.hint ?? RESTART,
        e.code,
      ),
    ];
  }
}

/** Same machine, same clock, in theory; a skew here means a faked or drifting clock for one process. */
export async function checkClock(
  info: DaemonInfo,
  ca: X509Certificate | undefined,
  now: () => number = Date.now,
): Promise<Check> {
  const title = 'clock';
  const fix =
    'sync the system clock: `sudo timedatectl set-ntp true` (Linux) or `sudo sntp -sS time.apple.com` (macOS)';
  if (ca && now() < Date.parse(ca.validFrom))
    return fail(
      'clock',
      title,
      `the clock (${new Date(now()).toISOString()}) is before the CA was made (${ca.validFrom})`,
      fix,
      'ERR_INPUT_INVALID',
    );
  const d = await daemonDate(info.controlPort);
  if (!d) return warn('clock', title, 'the daemon sent no Date header to compare with');
  const skew = Math.abs(d.getTime() - now());
  // Date has 1 s resolution; PoP tokens tolerate seconds, not minutes.
  if (skew > 5_000)
    return fail(
      'clock',
      title,
      `the daemon's clock differs from this process by ${Math.round(skew / 1000)} s`,
      `${fix}; then ${RESTART}`,
      'ERR_AUTH_POP_INVALID',
    );
  return pass(
    'clock',
    title,
    `in step with the daemon (±${Math.round(skew / 1000)} s); after the CA's start date`,
  );
}

/** `probeMark`: the probe session's Proxy-Authorization value, sent as X-Authsome-Probe (connect.ts). */
export async function checkAuthRequired(info: DaemonInfo, host: string, probeMark?: string): Promise<Check> {
  const title = 'proxy identity';
  try {
    const { head, socket } = await proxyConnect(info.proxyPort, host, undefined, probeMark);
    socket.destroy();
    if (head.status === 407 && head.headers['proxy-authenticate'])
      return pass(
        'proxy-407',
        title,
        `CONNECT without a session token gets 407 with Proxy-Authenticate (${head.headers['proxy-authenticate']})`,
      );
    return fail(
      'proxy-407',
      title,
      `CONNECT without a session token got ${head.status}, not 407`,
      `${RESTART}; if it persists, report a bug`,
      'ERR_PROXY_AUTH_REQUIRED',
    );
  } catch (e) {
    return fail(
      'proxy-407',
      title,
      `cannot talk to the proxy on 127.0.0.1:${info.proxyPort}: ${(e as Error).message}`,
      RESTART,
      'ERR_DAEMON_UNREACHABLE',
    );
  }
}

function keyMatches(pem: string | undefined, keyPath: string): boolean {
  try {
    return (
      pem !== undefined && new X509Certificate(pem).checkPrivateKey(createPrivateKey(readFileSync(keyPath)))
    );
  } catch {
    return false;
  }
}

export interface InterceptCheck {
  check: Check;
  /** The daemon's CA when it differs from ca.pem but matches ca.key (`doctor --repair-ca` restores it). */
  recoverable?: string;
}

/** CONNECT with a real session token, TLS trusting ca.pem only, one GET that the proxy itself refuses. */
export async function checkInterception(
  p: HomePaths,
  info: DaemonInfo,
  probe: { host: string; connection: string },
  proxyAuth: string,
  ca: CaState,
): Promise<InterceptCheck> {
  const { host } = probe;
  const title = 'proxy round trip';
  let caPem: string;
  try {
    caPem = readFileSync(p.caCert, 'utf8');
  } catch {
    return {
      check: fail('intercept', title, `cannot read ${p.caCert}`, 'run `authsome init`', 'ERR_CA_UNAVAILABLE'),
    };
  }
  try {
    const { head, socket } = await proxyConnect(info.proxyPort, host, proxyAuth);
    if (head.status !== 200) {
      socket.destroy();
      return {
        check: fail(
          'intercept',
          title,
          `CONNECT ${host}:443 with a fresh session token got ${head.status} ${head.headers['x-authsome-error'] ?? ''}`.trim(),
          RESTART,
          'ERR_PROXY_AUTH_REQUIRED',
        ),
      };
    }
    const r = await intercept(socket, host, caPem, probe.connection);
    if (!r.authorized) {
      const same =
        r.daemonCaPem !== undefined &&
        ca.cert !== undefined &&
        new X509Certificate(r.daemonCaPem).fingerprint256 === ca.cert.fingerprint256;
      const detail = `the daemon's certificate for ${host} does not verify against ${p.caCert} (${r.tlsError})`;
      if (!same && keyMatches(r.daemonCaPem, p.caKey)) {
        return {
          recoverable: r.daemonCaPem!,
          check: fail(
            'intercept',
            title,
            `${detail}: ca.pem was replaced, while the daemon still signs with the CA of ca.key`,
            'authsome doctor --repair-ca   (rewrites ca.pem from the running daemon, after checking it matches ca.key)',
            'ERR_CA_UNAVAILABLE',
          ),
        };
      }
      if (!same && ca.matchesKey)
        return {
          check: fail(
            'intercept',
            title,
            `${detail}: the daemon was started with another CA`,
            RESTART,
            'ERR_CA_UNAVAILABLE',
          ),
        };
      return {
        check: fail(
          'intercept',
          title,
          detail,
          `restore ${p.caCert} and ${p.caKey} from a backup, then ${RESTART}`,
          'ERR_CA_UNAVAILABLE',
        ),
      };
    }
    const code = r.inner?.headers['x-authsome-error'];
    if (r.inner?.status === 403 && code === 'ERR_PROXY_CONNECTION_DENIED') {
      return {
        check: pass(
          'intercept',
          title,
          `CONNECT ${host}:443 with a session token → TLS leaf from ca.pem → request answered by the proxy (403, no credential, nothing sent upstream)`,
        ),
      };
    }
    return {
      check: fail(
        'intercept',
        title,
        `inside the tunnel the proxy answered ${r.inner?.status ?? 'nothing'} ${code ?? ''}, expected 403 ERR_PROXY_CONNECTION_DENIED`.trim(),
        `${RESTART}; if it persists, report a bug`,
        'ERR_INTERNAL',
      ),
    };
  } catch (e) {
    return {
      check: fail(
        'intercept',
        title,
        `the round trip through 127.0.0.1:${info.proxyPort} failed: ${(e as Error).message}`,
        RESTART,
        'ERR_DAEMON_UNREACHABLE',
      ),
    };
  }
}

/** `doctor --repair-ca`: ca.pem := the daemon's CA, only when that certificate belongs to ca.key. */
export async function repairCa(p: HomePaths, daemonCaPem: string): Promise<void> {
  if (!keyMatches(daemonCaPem, p.caKey))
    throw new TypeError('refusing to write a CA certificate that does not match ca.key');
  const tmp = `${p.caCert}.${process.pid}.tmp`;
  await writeFile(tmp, daemonCaPem.endsWith('\n') ? daemonCaPem : `${daemonCaPem}\n`, { mode: 0o644 });
  await rename(tmp, p.caCert);
  await rm(p.caBundle, { force: true });
}

/** The acting profile's policy (SPEC section 9): what it lets through, in one line. Informational. */
export async function checkPolicy(client: DaemonClient): Promise<Check> {
  try {
    const r = await client.call<{
      policy: { default: string; rules: Array<{ action: string; exe?: unknown; rate?: unknown }> } | null;
      setAt?: string;
    }>('GET', `/v1/policies/${client.handle}`);
    if (!r.policy)
      return pass(
        'policy',
        'policy',
        `profile "${client.handle}" has no policy: every request it may inject is allowed`,
      );
    const rules = r.policy.rules;
    const count = (a: string) => rules.filter((x) => x.action === a).length;
    const parts = [`${count('allow')} allow`, `${count('deny')} deny`, `${count('approve')} approve`];
    const extras = [
      rules.some((x) => x.rate !== undefined) ? 'rate limits' : '',
      rules.some((x) => x.exe !== undefined) ? 'exe rules' : '',
    ].filter(Boolean);
    return pass(
      'policy',
      'policy',
      `profile "${client.handle}": default ${r.policy.default}, ${rules.length} rule(s) (${parts.join(', ')})${extras.length ? `, with ${extras.join(' and ')}` : ''}; set ${r.setAt ?? '?'} (authsome policy show ${client.handle})`,
    );
  } catch (e) {
    if (!isAppError(e)) throw e;
    return warn(
      'policy',
      'policy',
      `cannot read the policy of "${client.handle}": ${e.message} [${e.code}]`,
      e.hint,
    );
  }
}
