import type { Secret } from '../secret.js';

/**
 * One host a provider covers: an exact lower-case DNS name or a single-level "*." wildcard
 * ("*.example.com" covers "a.example.com" only), optional port (default 443), optional path prefix
 * ("/api" covers "/api" and "/api/…", never "/apix").
 */
export interface HostRule {
  host: string;
  port?: number;
  pathPrefix?: string;
}

/**
 * Where and how one credential value goes. `template` uses the grammar documented in
 * config/schema/provider.schema.json: literal text plus `{{field}}` and
 * `{{base64(field, ':', field)}}` (concatenation of fields and quoted literals, base64-encoded).
 */
export type InjectRule =
  { type: 'header'; name: string; template: string } | { type: 'query'; name: string; template: string };

export interface OAuthConfig {
  authorizeUrl?: string;
  tokenUrl: string;
  deviceUrl?: string;
  revokeUrl?: string;
  scopes?: string[];
  pkce?: boolean;
  clientAuth?: 'client_secret_basic' | 'client_secret_post' | 'none';
}

export type LoginFlow = 'api-key' | 'device' | 'pkce';

export interface ProviderDef {
  name: string;
  displayName: string;
  docsUrl: string;
  hosts: HostRule[];
  /**
   * Credential fields a connection must hold, e.g. ["api_key"] or ["username","password"].
   * Providers with OAuth flows inject `access_token`; the OAuth code may store a refresh token
   * next to it, which is never injected and so is not listed here.
   */
  fields: string[];
  inject: InjectRule[];
  /** Env vars SDKs insist on; `run` sets each to a placeholder. */
  env?: string[];
  flows?: LoginFlow[];
  oauth?: OAuthConfig;
  /** Free text for `provider show` (e.g. which headers stay the caller's business). */
  notes?: string;
}

/** A request's destination as the proxy canonicalised it (lower-case host, no trailing dot). */
export interface Destination {
  host: string;
  port: number;
  path: string;
}

export type CredentialFields = Readonly<Record<string, Secret>>;
