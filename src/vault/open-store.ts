import { readFile } from 'node:fs/promises';
import type { HomePaths } from '../config/paths.js';
import type { StoreSettings } from '../config/settings.js';
import { AppError } from '../errors.js';
import { FeedHub, type ChangeFeed } from './change-feed.js';
import { openPgStore, type PgOpenMode, type PgStoreOptions } from './pg-open.js';
import type { PgHandle } from './pg-store.js';
import { openVault } from './store.js';
import type { KvStore } from './types.js';

/**
 * The one entry point the daemon uses to open its vault (SPEC section 10): PostgreSQL when
 * settings.store.url is set, otherwise the embedded LevelDB store exactly as before.
 */

export interface OpenedStore {
  readonly engine: 'level' | 'postgres';
  readonly store: KvStore;
  /** Changes made through this node (both engines) and through every other node (PostgreSQL). */
  readonly feed: ChangeFeed;
  /** Where the data is, safe to print: the LevelDB directory or the URL (which never has a password). */
  readonly location: string;
  /** PostgreSQL only: SQL access for the audit and nodes tables, errors mapped and scrubbed. */
  readonly pg: PgHandle | undefined;
  /** Closes the feed, then the store (after its writes in flight). Close users of `pg` first. */
  close(): Promise<void>;
}

export interface OpenStoreOptions {
  /** PostgreSQL only (LevelDB creates its store on first open, as always). Default 'open'. */
  readonly mode?: PgOpenMode;
  /** PostgreSQL only: for tests (schema per test, short timeouts, a small pool). */
  readonly pgOverrides?: Pick<PgStoreOptions, 'schema' | 'timeouts' | 'poolMax' | 'feed'>;
}

export async function openStore(
  settings: { readonly paths: Pick<HomePaths, 'kvStore'>; readonly store: StoreSettings },
  masterKey: Uint8Array,
  options: OpenStoreOptions = {},
): Promise<OpenedStore> {
  const { store: s } = settings;
  if (s.url === undefined) {
    const hub = new FeedHub(true);
    const store = await openVault({
      dir: settings.paths.kvStore,
      masterKey,
      onWrite: (keys) => hub.emit(keys),
    });
    return {
      engine: 'level',
      store,
      feed: hub,
      location: settings.paths.kvStore,
      pg: undefined,
      async close() {
        await hub.close();
        await store.close();
      },
    };
  }
  const opened = await openPgStore({
    url: s.url,
    masterKey,
    mode: options.mode ?? 'open',
    password: { file: s.passwordFile, env: s.password },
    caPem: s.caFile === undefined ? undefined : await readCa(s.caFile),
    ...options.pgOverrides,
  });
  return {
    engine: 'postgres',
    store: opened.store,
    feed: opened.feed,
    location: opened.db.display,
    pg: opened.db,
    close: () => opened.close(),
  };
}

async function readCa(path: string): Promise<string> {
  let pem: string;
  try {
    pem = await readFile(path, 'utf8');
  } catch {
    throw new AppError('ERR_INPUT_INVALID', `cannot read the database CA file ${path}`, 'check store.caFile');
  }
  if (!pem.includes('-----BEGIN CERTIFICATE-----')) {
    throw new AppError(
      'ERR_INPUT_INVALID',
      `the database CA file ${path} holds no PEM certificate`,
      'point store.caFile at the PEM of the CA that signed the database server certificate',
    );
  }
  return pem;
}
