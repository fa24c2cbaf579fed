import { open } from 'node:fs/promises';
import { isIP } from 'node:net';
import type { ClientConfig } from 'pg';
import { AppError } from '../errors.js';
import type { Secret } from '../secret.js';

/**
 * How authsome reaches PostgreSQL (SPEC section 10): the URL names user, host, port and database and
 * nothing else. A password comes only from a file or the environment; off loopback the connection is
 * TLS with a verified certificate and host name (libpq's sslmode=verify-full), with no way to turn
 * that off. The URL is never handed to `pg` as a string, so no query parameter can weaken TLS.
 */

export interface PgTarget {
  readonly host: string;
  readonly port: number;
  readonly user: string;
  readonly database: string;
  /** TLS with verify-full semantics. Always true off loopback. */
  readonly tls: boolean;
  /** Safe to print: postgres://user@host:port/db (there is never a password to leave out). */
  readonly display: string;
}

function invalid(message: string, hint = 'write it as postgres://user@host:5432/dbname'): AppError {
  return new AppError('ERR_INPUT_INVALID', message, hint);
}

const PASSWORD_HINT =
  'remove the password from the URL; put it in a file named by store.passwordFile, or in AUTHSOME_STORE_PASSWORD';

export function isLoopbackDbHost(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

/** Parses store.url. Its messages never quote the URL: a mistyped one may still hold a password. */
export function parsePgUrl(text: string): PgTarget {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw invalid('store.url is not a valid URL');
  }
  if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:') {
    throw invalid('store.url must start with postgres://');
  }
  if (url.password !== '') throw invalid('store.url must not contain a password', PASSWORD_HINT);
  if (url.hash !== '') throw invalid('store.url must not have a #fragment');
  const user = decodeURIComponent(url.username);
  if (user === '') throw invalid('store.url must name the database user (postgres://user@host/db)');
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  if (host === '') throw invalid('store.url must name the database host');
  const port = url.port === '' ? 5432 : Number(url.port);
  const database = decodeURIComponent(url.pathname.replace(/^\//, ''));
  if (database === '' || database.includes('/')) {
    throw invalid('store.url must name one database (postgres://user@host:5432/dbname)');
  }
  const loopback = isLoopbackDbHost(host);
  let tls = !loopback;
  for (const [name, value] of url.searchParams) {
    if (name === 'password') throw invalid('store.url must not contain a password', PASSWORD_HINT);
    if (name !== 'sslmode') {
      throw invalid(
        `store.url has an unsupported parameter ${JSON.stringify(name)}`,
        'only sslmode is allowed',
      );
    }
    if (value === 'verify-full') tls = true;
    else if (value === 'disable' && loopback) tls = false;
    else if (value === 'disable') {
      throw invalid(
        'store.url asks for no TLS to a database off loopback',
        'a remote database needs TLS with a verified certificate; remove sslmode=disable (store.caFile names its CA)',
      );
    } else {
      throw invalid('store.url has an unsupported sslmode', 'use sslmode=verify-full, or leave it out');
    }
  }
  const hostForUrl = isIP(host) === 6 ? `[${host}]` : host;
  const display = `postgres://${encodeURIComponent(user)}@${hostForUrl}:${port}/${encodeURIComponent(database)}`;
  return { host, port, user, database, tls, display };
}

/** Replaces every known secret (and anything shaped like a URL password) in text sent to users or logs. */
export class Scrubber {
  readonly #needles = new Set<string>();

  add(secret: string | undefined): void {
    if (secret === undefined || secret === '') return;
    const b = Buffer.from(secret);
    for (const form of [secret, encodeURIComponent(secret), b.toString('base64'), b.toString('base64url')]) {
      this.#needles.add(form);
    }
  }

  scrub(text: string): string {
    let out = text;
    // Longest first, so a form that contains another is replaced whole.
    for (const n of [...this.#needles].sort((a, b) => b.length - a.length))
      out = out.split(n).join('[redacted]');
    return out
      .replace(/(\/\/[^\s/@:]*):[^\s/@]*@/g, '$1:[redacted]@')
      .replace(/(password\s*[=:]\s*)\S+/gi, '$1[redacted]');
  }
}

export interface PasswordSource {
  /** A file holding the password (one line); read at each new connection, so it can be rotated. */
  readonly file?: string | undefined;
  /** From AUTHSOME_STORE_PASSWORD or PGPASSWORD. */
  readonly env?: Secret | undefined;
}

/** The password callback `pg` calls only when the server asks for one. Every value read is scrubbed. */
export function passwordCallback(source: PasswordSource, scrubber: Scrubber): () => Promise<string> {
  scrubber.add(source.env?.reveal());
  return async () => {
    if (source.file !== undefined) {
      const pw = await readPasswordFile(source.file);
      scrubber.add(pw);
      return pw;
    }
    if (source.env !== undefined) return source.env.reveal();
    throw new AppError(
      'ERR_STORE_UNAVAILABLE',
      'the database asks for a password and none is configured',
      'set store.passwordFile in server/config.json, or AUTHSOME_STORE_PASSWORD',
    );
  };
}

async function readPasswordFile(path: string): Promise<string> {
  let fh;
  try {
    fh = await open(path, 'r');
  } catch {
    throw new AppError(
      'ERR_STORE_UNAVAILABLE',
      `cannot read the database password file ${path}`,
      'check store.passwordFile',
    );
  }
  try {
    const st = await fh.stat();
    if (process.platform !== 'win32' && (st.mode & 0o077) !== 0) {
      throw new AppError(
        'ERR_HOME_PERMISSIONS',
        `database password file ${path} is accessible by group or others`,
        `chmod 600 ${path}`,
      );
    }
    return (await fh.readFile('utf8')).replace(/\r?\n$/, '');
  } finally {
    await fh.close();
  }
}

export interface PgTimeouts {
  /** Opening a connection (TCP + TLS + authentication). */
  readonly connectMs: number;
  /** Server-side statement_timeout; the client gives up a little later if the server never answers. */
  readonly statementMs: number;
}

export const DEFAULT_TIMEOUTS: PgTimeouts = { connectMs: 3000, statementMs: 5000 };

/** Schema names we put into identifiers and channel names: plain, short, nothing to quote. */
export const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,39}$/;

export function clientConfig(
  target: PgTarget,
  opts: {
    readonly password: () => Promise<string>;
    readonly caPem: string | undefined;
    readonly schema: string;
    readonly timeouts: PgTimeouts;
    readonly applicationName: string;
  },
): ClientConfig {
  if (!SCHEMA_NAME.test(opts.schema))
    throw new TypeError(`invalid schema name ${JSON.stringify(opts.schema)}`);
  return {
    host: target.host,
    port: target.port,
    user: target.user,
    database: target.database,
    password: opts.password,
    // verify-full: chain to a trusted CA (the system's, or store.caFile's) and the host name checked.
    // Set explicitly, so PGSSLMODE in the environment cannot change it.
    ssl: target.tls
      ? { rejectUnauthorized: true, ...(opts.caPem === undefined ? {} : { ca: opts.caPem }) }
      : false,
    application_name: opts.applicationName,
    connectionTimeoutMillis: opts.timeouts.connectMs,
    statement_timeout: opts.timeouts.statementMs,
    query_timeout: opts.timeouts.statementMs + 1000,
    idle_in_transaction_session_timeout: opts.timeouts.statementMs * 2,
    keepAlive: true,
    // Every commit waits for the WAL flush even where the database default says otherwise: a
    // credential acknowledged as saved must survive a crash of the database server.
    options: `-c search_path=${opts.schema} -c synchronous_commit=on`,
  };
}
