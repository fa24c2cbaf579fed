export { createProxy } from './server.js';
export {
  canonicalise,
  canonicalHost,
  parseAuthority,
  parseAbsoluteHttp,
  parseOriginTarget,
  type Authority,
} from './destination.js';
export { isForbiddenAddress, type LookupFn } from './address-policy.js';
export { errorReply, toAppError } from './respond.js';
export type {
  ProxyDeps,
  ProxyHandle,
  ProxyStats,
  SessionInfo,
  SessionVerifier,
  CredentialSource,
  ResolvedCredential,
  ProviderMatcher,
} from './types.js';
