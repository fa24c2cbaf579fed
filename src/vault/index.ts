export type { BatchOp, KvStore, ProfileScope, RecordValue } from './types.js';
export type { ParsedKey } from './keys.js';
export {
  KEYCHECK_KEY,
  connectionKey,
  defaultKey,
  oauthClientKey,
  parseKey,
  prefixRange,
  profilePrefix,
  providerKey,
  registryKey,
  sessionKey,
} from './keys.js';
export { MASTER_KEY_BYTES, SEAL_VERSION, initSodium, open, seal } from './seal.js';
export { createMasterKey, loadMasterKey } from './master-key.js';
export { openVault } from './store.js';
export type { OpenVaultOptions } from './store.js';
export { profileScope } from './scope.js';
export { memoryStore } from './memory-store.js';
export { openStore } from './open-store.js';
export type { OpenedStore, OpenStoreOptions } from './open-store.js';
export type { PgOpenMode } from './pg-open.js';
export type { PgHandle } from './pg-store.js';
export { FeedCache } from './change-feed.js';
export type { ChangeFeed, ChangeListener, StatusListener } from './change-feed.js';
export { SCHEMA_VERSION } from './pg-schema.js';
