import { Secret } from '../../../src/secret.js';
import type { CredentialFields, ProviderDef } from '../../../src/providers/index.js';

/** A minimal valid definition; tests override one part at a time. */
export function def(over: Partial<ProviderDef> & Record<string, unknown> = {}): ProviderDef {
  return {
    name: 'example',
    displayName: 'Example',
    docsUrl: 'https://docs.example.com/auth',
    hosts: [{ host: 'api.example.com' }],
    fields: ['api_key'],
    inject: [{ type: 'header', name: 'Authorization', template: 'Bearer {{api_key}}' }],
    ...over,
  } as ProviderDef;
}

export function fields(values: Record<string, string>): CredentialFields {
  return Object.fromEntries(Object.entries(values).map(([k, v]) => [k, new Secret(v)]));
}
