import { AppError } from '../errors.js';
import { assertName, isValidName } from '../names.js';
import { registryKey } from '../vault/keys.js';
import type { KvStore, RecordValue } from '../vault/types.js';
import { parsePublicJwk, type Ed25519PublicJwk } from './keys.js';

/** The daemon's profile registry: handle -> public key (SPEC section 2), under `registry/<handle>`. */

export interface ProfileRecord {
  readonly handle: string;
  readonly publicJwk: Ed25519PublicJwk;
  readonly owner: boolean;
  readonly createdAt: number;
}

const REGISTRY_PREFIX = 'registry/';

function corrupt(key: string): AppError {
  return new AppError(
    'ERR_VAULT_CORRUPT',
    `registry record ${key} is malformed`,
    'restore the store from a backup',
  );
}

/** A stored record is re-validated on every read: a bad one fails closed instead of granting anything. */
function parseRecord(key: string, v: RecordValue): ProfileRecord {
  const { handle, publicJwk, owner, createdAt } = v;
  if (
    !isValidName(handle) ||
    `${REGISTRY_PREFIX}${handle}` !== key ||
    typeof owner !== 'boolean' ||
    typeof createdAt !== 'number'
  ) {
    throw corrupt(key);
  }
  try {
    return { handle, publicJwk: parsePublicJwk(publicJwk), owner, createdAt };
  } catch {
    throw corrupt(key);
  }
}

export class ProfileRegistry {
  readonly #store: KvStore;
  readonly #clock: () => number;
  /**
   * Check-then-put is not atomic in the KV store, so changes run one at a time. The daemon is the
   * only process that opens the store (SPEC section 3), so an in-process queue is enough.
   */
  #queue: Promise<unknown> = Promise.resolve();

  constructor(store: KvStore, opts: { clock?: () => number } = {}) {
    this.#store = store;
    this.#clock = opts.clock ?? Date.now;
  }

  #serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(fn, fn);
    this.#queue = run.catch(() => undefined);
    return run;
  }

  async get(handle: string): Promise<ProfileRecord | undefined> {
    if (!isValidName(handle)) return undefined;
    const key = registryKey(handle);
    const v = await this.#store.get(key);
    return v === undefined ? undefined : parseRecord(key, v);
  }

  async list(): Promise<ProfileRecord[]> {
    const rows = await this.#store.list(REGISTRY_PREFIX);
    return rows.map((r) => parseRecord(r.key, r.value));
  }

  /** For PopVerifier: the one key trusted for `handle`. */
  async lookupKey(handle: string): Promise<Ed25519PublicJwk | undefined> {
    return (await this.get(handle))?.publicJwk;
  }

  /**
   * `authsome init`: the first profile becomes the owner. Once any profile exists this is refused
   * with one answer, whatever the handle, so an unauthenticated caller learns no handle names.
   */
  async bootstrapOwner(handle: string, jwk: unknown): Promise<ProfileRecord> {
    assertName('profile', handle);
    const publicJwk = parsePublicJwk(jwk);
    return this.#serial(async () => {
      if ((await this.#store.keys(REGISTRY_PREFIX)).length > 0) {
        throw new AppError(
          'ERR_AUTH_FORBIDDEN',
          'this daemon already has an owner profile',
          'ask the owner to register your profile with `authsome profile create`',
        );
      }
      return this.#put({ handle, publicJwk, owner: true, createdAt: this.#clock() });
    });
  }

  /** Only the owner registers other profiles (SPEC section 4). They are never owners. */
  /**
   * `clearLeftovers` runs after the checks, before the entry is written: whatever an earlier profile
   * of this name left behind (records or sessions written while it was being deleted) must not pass
   * to the new one.
   */
  async register(
    actor: string,
    handle: string,
    jwk: unknown,
    clearLeftovers?: () => Promise<unknown>,
  ): Promise<ProfileRecord> {
    assertName('profile', handle);
    const publicJwk = parsePublicJwk(jwk);
    return this.#serial(async () => {
      await this.#requireOwner(actor);
      if ((await this.#store.get(registryKey(handle))) !== undefined) {
        throw new AppError(
          'ERR_PROFILE_EXISTS',
          `profile ${handle} already exists`,
          'choose another name, or remove the old profile first',
        );
      }
      await clearLeftovers?.();
      return this.#put({ handle, publicJwk, owner: false, createdAt: this.#clock() });
    });
  }

  /**
   * `destroyData` (the profile's sessions and records: a session does not consult the registry on
   * every proxied request) runs after the checks and before the entry goes: if it fails part-way,
   * the profile is still there to delete again, instead of a name that no one can clean up.
   */
  async remove(
    actor: string,
    handle: string,
    destroyData: () => Promise<unknown> = async () => undefined,
  ): Promise<ProfileRecord> {
    return this.#serial(async () => {
      const owner = await this.#requireOwner(actor);
      if (handle === owner.handle) {
        throw new AppError(
          'ERR_AUTH_FORBIDDEN',
          'the owner profile cannot be removed',
          'the owner holds the daemon; remove the whole home to start over',
        );
      }
      const rec = await this.get(handle);
      if (rec === undefined) {
        throw new AppError(
          'ERR_PROFILE_NOT_FOUND',
          `no profile ${JSON.stringify(handle.slice(0, 64))}`,
          'list profiles with `authsome profile list`',
        );
      }
      await destroyData();
      await this.#store.del(registryKey(handle));
      return rec;
    });
  }

  async #requireOwner(actor: string): Promise<ProfileRecord> {
    const rec = await this.get(actor);
    if (rec === undefined || !rec.owner) {
      throw new AppError(
        'ERR_AUTH_NOT_OWNER',
        'only the owner profile can register or remove profiles',
        'run this as the owner profile (the one made by `authsome init`)',
      );
    }
    return rec;
  }

  async #put(rec: ProfileRecord): Promise<ProfileRecord> {
    await this.#store.put(registryKey(rec.handle), { ...rec, publicJwk: { ...rec.publicJwk } });
    return rec;
  }
}
