export {
  generateIdentity,
  parsePublicJwk,
  publicJwkOf,
  readIdentityKey,
  writeIdentityKey,
  type Ed25519PublicJwk,
  type GeneratedIdentity,
} from './keys.js';
export {
  bodyHash,
  POP_TYP,
  PopError,
  PopVerifier,
  signPop,
  type PopRejectReason,
  type PopRequest,
  type PopVerifierOptions,
  type SignPopInput,
} from './pop.js';
export { ProfileRegistry, type ProfileRecord } from './registry.js';
export {
  SessionStore,
  narrowAllow,
  type MintInput,
  type SessionAllow,
  type SessionMeta,
} from './sessions.js';
