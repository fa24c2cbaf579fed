import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, mkdir, open, rm, writeFile } from 'node:fs/promises';
import { AppError, isAppError } from '../errors.js';
import type { HomePaths } from '../config/paths.js';
import type { StoreSettings } from '../config/settings.js';
import { assertName } from '../names.js';
import { initSodium, loadMasterKey, MASTER_KEY_BYTES, openStore } from '../vault/index.js';
import { parsePgUrl } from '../vault/pg-config.js';
import { defaultNodeName, writeNodeName } from './node-name.js';
import { claimNode } from './nodes.js';
import { ensureStoreCa, exportCaCert } from './team-ca.js';

/**
 * The server side of `authsome init --store URL` (the first node: a new master key, an empty database
 * initialised with its key check and the team's CA) and `authsome init --join URL --master-key FILE`
 * (a further node: the master key checked against the database before anything is written).
 */

export interface TeamInit {
  readonly node: string;
  /** The database URL as printed (never a password). */
  readonly location: string;
  readonly caCert: string;
}

function refuseExisting(paths: HomePaths): void {
  if (existsSync(paths.masterKey) || existsSync(paths.clientConfig))
    throw new AppError(
      'ERR_HOME_EXISTS',
      `${paths.home} is already initialised`,
      'use another --home for this node (each node has its own home)',
    );
}

/** server/config.json of a node: the database, and where its password and CA files are, if any. */
async function writeServerConfig(paths: HomePaths, store: StoreSettings, url: string): Promise<void> {
  const config = {
    store: {
      url,
      ...(store.passwordFile ? { passwordFile: store.passwordFile } : {}),
      ...(store.caFile ? { caFile: store.caFile } : {}),
    },
  };
  await writeFile(paths.serverConfig, `${JSON.stringify(config, null, 2)}\n`, { mode: 0o600, flag: 'wx' });
}

async function writeKey(path: string, key: Uint8Array): Promise<void> {
  const fh = await open(path, 'wx', 0o600);
  try {
    await fh.writeFile(`${Buffer.from(key).toString('base64')}\n`, 'utf8');
    await fh.sync();
  } finally {
    await fh.close();
  }
}

async function makeDirs(paths: HomePaths): Promise<void> {
  for (const dir of [paths.home, paths.serverDir]) await mkdir(dir, { recursive: true, mode: 0o700 });
  await chmod(paths.home, 0o700);
}

/**
 * The first node. Its master key and settings are written before the database is touched, so a crash
 * never leaves a database whose key is nowhere; if the database refuses (already initialised,
 * unreachable), what this call wrote in the home is removed again.
 */
export async function initTeamStore(
  paths: HomePaths,
  store: StoreSettings,
  url: string,
  nodeName: string | undefined,
): Promise<TeamInit> {
  refuseExisting(paths);
  parsePgUrl(url); // refused before anything is written (a password in it never reaches a file)
  const node = nodeName === undefined ? defaultNodeName() : assertName('node', nodeName);
  await initSodium();
  const fresh = !existsSync(paths.home);
  const masterKey = new Uint8Array(randomBytes(MASTER_KEY_BYTES));
  await makeDirs(paths);
  const written = [paths.masterKey, paths.serverConfig, paths.nodeFile];
  try {
    await writeKey(paths.masterKey, masterKey);
    await writeServerConfig(paths, store, url);
    await writeNodeName(paths.nodeFile, node);
    const opened = await openStore({ paths, store: { ...store, url } }, masterKey, { mode: 'create' }).catch(
      (e: unknown) => {
        // A key made a moment ago opens nothing: a key-check record that refuses it is someone's vault.
        if (isAppError(e) && e.code === 'ERR_VAULT_SEALED')
          throw new AppError(
            'ERR_STORE_INITIALISED',
            'this database already holds an authsome vault (of another master key); nothing was written to it',
            'to add a node to it: authsome init --join URL --master-key FILE; to start a new team, use an empty database',
          );
        throw e;
      },
    );
    try {
      await claimNode(opened.pg!, node, 'join');
      const ca = await ensureStoreCa(opened.store, opened.pg!);
      await exportCaCert(paths.caCert, ca.certPem);
      return { node, location: opened.location, caCert: paths.caCert };
    } finally {
      await opened.close();
    }
  } catch (e) {
    if (fresh) await rm(paths.home, { recursive: true, force: true });
    else for (const f of written) await rm(f, { force: true });
    throw e;
  }
}

/**
 * A further node. The key file is read and checked against the database's key-check record first: a
 * wrong key is refused with nothing written, here or in the database.
 */
export async function joinTeamStore(
  paths: HomePaths,
  store: StoreSettings,
  url: string,
  masterKeyFile: string,
  nodeName: string | undefined,
): Promise<TeamInit> {
  refuseExisting(paths);
  parsePgUrl(url);
  const node = nodeName === undefined ? defaultNodeName() : assertName('node', nodeName);
  await initSodium();
  const masterKey = await loadMasterKey(masterKeyFile);
  if (masterKey.length !== MASTER_KEY_BYTES) throw new TypeError('master key length');
  let opened;
  try {
    opened = await openStore({ paths, store: { ...store, url } }, masterKey, { mode: 'open' });
  } catch (e) {
    if (isAppError(e) && e.code === 'ERR_VAULT_SEALED')
      throw new AppError(
        'ERR_VAULT_SEALED',
        `the master key in ${masterKeyFile} does not open the vault in this database; nothing was written (not here, not in the database)`,
        'copy server/master.key from the node that ran `authsome init --store` (or any node of this team)',
      );
    throw e;
  }
  let ca;
  let location: string;
  try {
    await claimNode(opened.pg!, node, 'join');
    ca = await ensureStoreCa(opened.store, opened.pg!);
    location = opened.location;
  } finally {
    await opened.close();
  }
  const fresh = !existsSync(paths.home);
  await makeDirs(paths);
  try {
    await writeKey(paths.masterKey, masterKey);
    await writeServerConfig(paths, store, url);
    await writeNodeName(paths.nodeFile, node);
    await exportCaCert(paths.caCert, ca.certPem);
  } catch (e) {
    if (fresh) await rm(paths.home, { recursive: true, force: true });
    throw e;
  }
  return { node, location, caCert: paths.caCert };
}
