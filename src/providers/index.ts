export type {
  CredentialFields,
  Destination,
  HostRule,
  InjectRule,
  LoginFlow,
  OAuthConfig,
  ProviderDef,
} from './types.js';
export {
  PROVIDER_SCHEMA_PATH,
  checkProviderDef,
  headerNameProblem,
  parseProviderJson,
  validateProvider,
} from './schema.js';
export type { ProviderProblem } from './schema.js';
export {
  BUNDLED_PROVIDERS_DIR,
  ProviderRegistry,
  loadBundledProviders,
  readProviderFile,
} from './registry.js';
export type { CustomProvider, ProviderOrigin, RegistryInput } from './registry.js';
export { applyInjection, injectedHeaderNames, planInjection } from './inject.js';
export type { InjectionPlan } from './inject.js';
export { isPlainHostName } from './host.js';
