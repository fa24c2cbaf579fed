import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { join } from 'node:path';
import { packageRoot } from '../../config/settings.js';
import { loggedErrorAt, type LoggedError } from '../../daemon/daemon-log.js';
import type { HomePaths } from '../../config/paths.js';
import { fail, pass, skip, warn, type Check } from './types.js';

const DAY_MS = 86_400_000;

/** `>=20.19.0 <25` style ranges (what package.json engines uses): every comparator must hold. */
export function satisfies(version: string, range: string): boolean {
  const num = (v: string) =>
    v
      .replace(/^v/, '')
      .split('.')
      .map((n) => Number(n) || 0);
  const cmp = (a: number[], b: number[]) => {
    for (let i = 0; i < 3; i++) if ((a[i] ?? 0) !== (b[i] ?? 0)) return (a[i] ?? 0) - (b[i] ?? 0);
    return 0;
  };
  const v = num(version);
  return range
    .split(/\s+/)
    .filter(Boolean)
    .every((c) => {
      const m = /^(>=|<=|>|<|=)?v?(\d+(?:\.\d+){0,2})$/.exec(c);
      if (!m) return false;
      const d = cmp(v, num(m[2]!));
      return { '>=': d >= 0, '<=': d <= 0, '>': d > 0, '<': d < 0, '=': d === 0 }[m[1] ?? '='] ?? false;
    });
}

export function checkNode(version: string = process.versions.node): Check {
  let range = '>=20.19.0 <25';
  try {
    const pkg = JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')) as {
      engines?: { node?: string };
    };
    range = pkg.engines?.node ?? range;
  } catch {
    // the built-in range above is the documented one
  }
  return satisfies(version, range)
    ? pass('node', 'Node.js version', `${version} satisfies ${range}`)
    : fail(
        'node',
        'Node.js version',
        `${version} is outside ${range}`,
        'install a supported Node.js, e.g. `nvm install 22 && nvm use 22`',
        'ERR_INPUT_INVALID',
      );
}

/** SPEC section 3: the home and its secret-holding files are private to the user. */
export function checkModes(p: HomePaths): Check[] {
  const dirs = [p.home, p.serverDir, p.kvStore, p.caDir, p.identitiesDir];
  const keys = existsSync(p.identitiesDir)
    ? readdirSync(p.identitiesDir)
        .filter((f) => f.endsWith('.key'))
        .map((f) => join(p.identitiesDir, f))
    : [];
  // next.key: the new CA's key while a `ca rotate` overlaps (absent files are skipped below).
  const files = [p.masterKey, p.caKey, join(p.caDir, 'next.key'), p.auditLog, ...keys];
  const out: Check[] = [];
  let checked = 0;
  const uid = process.getuid?.();
  for (const [path, want] of [
    ...dirs.map((d) => [d, 0o700] as const),
    ...files.map((f) => [f, 0o600] as const),
  ]) {
    let st;
    try {
      st = statSync(path);
    } catch {
      continue;
    }
    checked++;
    const mode = st.mode & 0o777;
    if ((mode & 0o077) !== 0) {
      out.push(
        fail(
          `mode:${path}`,
          'file modes',
          `${path} is accessible by group or others (mode ${mode.toString(8)}, want ${want.toString(8)})`,
          `chmod ${want.toString(8)} ${path}`,
          'ERR_HOME_PERMISSIONS',
        ),
      );
    } else if (uid !== undefined && st.uid !== uid) {
      out.push(
        warn(
          `owner:${path}`,
          'file modes',
          `${path} belongs to uid ${st.uid}, not to you (uid ${uid})`,
          `chown ${uid} ${path}`,
        ),
      );
    }
  }
  if (out.length === 0)
    out.push(pass('modes', 'file modes', `${checked} files and directories are private (0600 / 0700)`));
  return out;
}

export interface CaState {
  check: Check;
  /** ca.pem, when it parses. */
  cert?: X509Certificate;
  /** Does ca.pem belong to ca.key? undefined when either is missing or unreadable. */
  matchesKey?: boolean;
}

export function checkCaFiles(p: HomePaths, now: number = Date.now()): CaState {
  const title = 'local CA';
  if (!existsSync(p.caCert))
    return {
      check: fail(
        'ca',
        title,
        `no CA certificate at ${p.caCert}`,
        'run `authsome init` (it creates the CA)',
        'ERR_CA_UNAVAILABLE',
      ),
    };
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(readFileSync(p.caCert));
  } catch (e) {
    return {
      check: fail(
        'ca',
        title,
        `${p.caCert} is not a PEM certificate: ${(e as Error).message}`,
        `restore ${p.caCert} from a backup (it must match ${p.caKey})`,
        'ERR_CA_UNAVAILABLE',
      ),
    };
  }
  let matchesKey: boolean | undefined;
  try {
    matchesKey = cert.checkPrivateKey(createPrivateKey(readFileSync(p.caKey)));
  } catch {
    matchesKey = undefined;
  }
  const state = { cert, ...(matchesKey !== undefined ? { matchesKey } : {}) };
  const until = Date.parse(cert.validTo);
  // Team mode (SPEC section 10): the CA key is sealed in the database; ca.pem is the daemon's copy of
  // the certificate, checked against the running daemon's CA by the daemon checks.
  const team = matchesKey === undefined && existsSync(p.nodeFile) && !existsSync(p.caKey);
  if (!cert.ca)
    return {
      ...state,
      check: fail(
        'ca',
        title,
        `${p.caCert} is not a CA certificate (${cert.subject.replace(/\n/g, ', ')})`,
        `restore ${p.caCert} from a backup (it must match ${p.caKey})`,
        'ERR_CA_UNAVAILABLE',
      ),
    };
  if (matchesKey === false)
    return {
      ...state,
      check: fail(
        'ca',
        title,
        `${p.caCert} does not belong to the CA key ${p.caKey}`,
        `restore ${p.caCert} from a backup (it must match ${p.caKey})`,
        'ERR_CA_UNAVAILABLE',
      ),
    };
  if (matchesKey === undefined && !team)
    return {
      ...state,
      check: fail(
        'ca',
        title,
        `the CA key ${p.caKey} is missing or unreadable`,
        'the CA cannot sign leaves without it: restore it from a backup',
        'ERR_CA_UNAVAILABLE',
      ),
    };
  if (until <= now)
    return {
      ...state,
      check: fail(
        'ca',
        title,
        `the CA expired on ${cert.validTo}`,
        'make a new one at once: `authsome ca rotate --overlap 0` (docs/troubleshooting.md, "CA expired")',
        'ERR_CA_UNAVAILABLE',
      ),
    };
  if (until - now < 30 * DAY_MS)
    return {
      ...state,
      check: fail(
        'ca',
        title,
        `the CA expires on ${cert.validTo}, in less than 30 days`,
        'rotate it before then: `authsome ca rotate` (docs/troubleshooting.md, "CA expired")',
        'ERR_CA_UNAVAILABLE',
      ),
    };
  return {
    ...state,
    check: pass(
      'ca',
      title,
      `${cert.subject.replace(/\n/g, ', ')}; valid until ${cert.validTo}; ${team ? 'its key is sealed in the team database' : 'matches its key'}`,
    ),
  };
}

/**
 * The daemon's last words from daemon.log when it is not running: a failed start ends with
 * `authsome: … [ERR_…]` and `  next: …` (reportError), e.g. ERR_VAULT_SEALED for a wrong master key.
 */
export function lastStartError(logPath: string): LoggedError | undefined {
  let text: string;
  try {
    text = readFileSync(logPath, 'utf8');
  } catch {
    return undefined;
  }
  const lines = text.split('\n').slice(-200);
  let found: LoggedError | undefined;
  lines.forEach((l, i) => {
    if (/^authsome daemon .* pid \d+:/.test(l)) found = undefined;
    found = loggedErrorAt(lines, i) ?? found;
  });
  return found;
}

export function checkStoreOffline(p: HomePaths): Check {
  const err = lastStartError(p.daemonLog);
  if (!err)
    return skip(
      'store',
      'store and master key',
      'unknown until the daemon runs (`authsome daemon start` opens it)',
    );
  return fail(
    'store',
    'store and master key',
    `the daemon's last start failed: ${err.message} [${err.code}]`,
    err.hint ?? `see ${p.daemonLog}`,
    err.code,
  );
}
