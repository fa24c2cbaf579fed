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
