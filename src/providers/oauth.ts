/**
 * OAuth 2.0 client side: device authorization grant (RFC 8628), authorization code with PKCE
 * (RFC 7636) over a loopback redirect (RFC 8252), refresh (RFC 6749 §6) with single flight, and
 * revocation (RFC 7009). Pure functions with injectable fetch, clock and sleep; nothing here prints
 * or exits — the CLI and daemon do.
 */
export type {
  FetchInitLike,
  FetchLike,
  FetchResponseLike,
  OAuthClientOptions,
  OAuthFailCode,
  TokenSet,
} from './oauth/types.js';
export { OAuthError, cancelled } from './oauth/errors.js';
export { checkEndpoint, isLoopbackLiteral } from './oauth/endpoint.js';
export { applyClientAuth, clientAuthMethod, formEncode } from './oauth/client-auth.js';
export type { ClientAuthMethod } from './oauth/client-auth.js';
export { pollDeviceToken, startDeviceFlow } from './oauth/device.js';
export type {
  DeviceAuthorization,
  DeviceTick,
  PollDeviceOptions,
  Sleep,
  StartDeviceFlowOptions,
} from './oauth/device.js';
export {
  buildAuthorizeUrl,
  codeChallengeS256,
  createCodeVerifier,
  createState,
  exchangeCode,
} from './oauth/pkce.js';
export type { AuthorizeUrlInput, ExchangeCodeOptions } from './oauth/pkce.js';
export { startPkceFlow } from './oauth/loopback.js';
export type { PkceFlow, StartPkceOptions } from './oauth/loopback.js';
export { RefreshCoordinator, refreshTokens } from './oauth/refresh.js';
export type { RefreshTokensOptions } from './oauth/refresh.js';
export { revokeToken } from './oauth/revoke.js';
export type { RevokeTokenOptions } from './oauth/revoke.js';
export { browserCommand, openBrowser } from './oauth/browser.js';
export type { OpenBrowserDeps, SpawnLike } from './oauth/browser.js';
