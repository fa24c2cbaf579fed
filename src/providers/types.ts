import type { Secret } from '../secret.js';

/** One host a provider covers: exact host or a single-level "*." wildcard, optional port (default 443), optional path prefix. */
export interface HostRule {
  host: string;
  port?: number;
  pathPrefix?: string;
}

export type InjectRule =
  | { type: 'header'; name: string; template: string }
  | { type: 'query'; name: string; template: string };

export interface OAuthConfig {
  authorizeUrl?: string;
  tokenUrl: string;
  deviceUrl?: string;
  revokeUrl?: string;
  scopes?: string[];
  pkce?: boolean;
  clientAuth?: 'client_secret_basic' | 'client_secret_post' | 'none';
}

export interface ProviderDef {
  name: string;
  displayName: string;
  docsUrl: string;
  hosts: HostRule[];
  /** Credential fields, e.g. ["api_key"] or ["username","password"]. */
  fields: string[];
  inject: InjectRule[];
  /** Env vars SDKs insist on; `run` sets each to a placeholder. */
  env?: string[];
  flows?: Array<'api-key' | 'device' | 'pkce'>;
  oauth?: OAuthConfig;
}

/** A request's destination as the proxy canonicalised it (lower-case host, no trailing dot). */
export interface Destination {
  host: string;
  port: number;
  path: string;
}

export type CredentialFields = Readonly<Record<string, Secret>>;
