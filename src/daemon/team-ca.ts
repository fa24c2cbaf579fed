import { chmod, mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { AppError } from '../errors.js';
import { caFromPem, generateCaPem, type LocalCa } from '../ca/index.js';
import type { KvStore } from '../vault/types.js';
import type { PgHandle } from '../vault/pg-store.js';

/**
 * Team mode (SPEC section 10): the one CA of every node, sealed in the store under meta/ca (cert and
 * key). `init --store` creates it; every node loads it, so one CA bundle trusts the leaves any node
 * mints. Only its public certificate is written to the node's home (server/ca/ca.pem, for the CLI's
 * trust bundle); the key exists nowhere else. LevelDB homes keep their files in server/ca/.
 */
export const CA_RECORD_KEY = 'meta/ca';
/** Advisory-lock space of our own ("autj"), next to the schema lock ("auth") of pg-open.ts. */
const CA_LOCK_CLASS = 1635087466;
const HINT = 'restore the database from a backup; its CA record (meta/ca) is damaged';

async function fromRecord(store: KvStore): Promise<LocalCa | undefined> {
  const rec = await store.get(CA_RECORD_KEY);
  if (rec === undefined) return undefined;
  const { certPem, keyPem } = rec;
  if (typeof certPem !== 'string' || typeof keyPem !== 'string')
    throw new AppError('ERR_CA_UNAVAILABLE', 'the CA record in the database is malformed', HINT);
  return caFromPem(certPem, keyPem, 'in the database', HINT);
}

/**
 * The team's CA, created once if the database has none yet (under an advisory lock, so two nodes
 * starting on a database whose `init --store` was cut short agree on one).
 */
export async function ensureStoreCa(store: KvStore, pg: PgHandle): Promise<LocalCa> {
  const found = await fromRecord(store);
  if (found) return found;
  await pg.transaction(async (c) => {
    await c.query('SELECT pg_advisory_xact_lock($1, hashtext($2))', [CA_LOCK_CLASS, pg.schema]);
    if ((await store.get(CA_RECORD_KEY)) !== undefined) return;
    await store.put(CA_RECORD_KEY, await generateCaPem());
  });
  const made = await fromRecord(store);
  if (!made) throw new AppError('ERR_CA_UNAVAILABLE', 'the CA could not be stored in the database', HINT);
  return made;
}

/** server/ca/ca.pem: the public certificate only, rewritten when it differs (0644, atomic). */
export async function exportCaCert(path: string, certPem: string): Promise<void> {
  if ((await readFile(path, 'utf8').catch(() => undefined)) === certPem) return;
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, certPem, { mode: 0o644 });
  await chmod(tmp, 0o644);
  await rename(tmp, path);
}
