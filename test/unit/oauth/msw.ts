import { inspect } from 'node:util';
import { afterAll, afterEach, beforeAll } from 'vitest';
import { setupServer } from 'msw/node';
import { http, HttpResponse } from 'msw';
import type { FetchLike } from '../../../src/providers/oauth.js';
import type { OAuthConfig } from '../../../src/providers/types.js';

/** msw patches globalThis.fetch (not undici's), so unit tests inject this lazily-bound fetch. */
export const mswFetch: FetchLike = (url, init) => globalThis.fetch(url, init);

export const ISSUER = 'https://auth.example.test';
export const oauth = (over: Partial<OAuthConfig> = {}): OAuthConfig => ({
  authorizeUrl: `${ISSUER}/authorize`,
  tokenUrl: `${ISSUER}/token`,
  deviceUrl: `${ISSUER}/device`,
  revokeUrl: `${ISSUER}/revoke`,
  scopes: ['repo', 'read:org'],
  clientAuth: 'client_secret_basic',
  ...over,
});

export interface Seen {
  url: string;
  headers: Headers;
  form: URLSearchParams;
}

export type Answer = { status?: number; body?: unknown; form?: boolean };

/** Serves `answers` in order at `path` (the last one repeats) and records each request. */
export function serve(server: ReturnType<typeof setupServer>, path: string, answers: Answer[]): Seen[] {
  const seen: Seen[] = [];
  let i = 0;
  server.use(
    http.post(`${ISSUER}${path}`, async ({ request }) => {
      seen.push({
        url: request.url,
        headers: request.headers,
        form: new URLSearchParams(await request.text()),
      });
      const a = answers[Math.min(i++, answers.length - 1)] ?? {};
      if (a.form === true) {
        const text = new URLSearchParams(a.body as Record<string, string>).toString();
        return new HttpResponse(text, {
          status: a.status ?? 200,
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
        });
      }
      if (typeof a.body === 'string') return new HttpResponse(a.body, { status: a.status ?? 200 });
      return HttpResponse.json(a.body ?? {}, { status: a.status ?? 200 });
    }),
  );
  return seen;
}

export function useMsw(): ReturnType<typeof setupServer> {
  const server = setupServer();
  beforeAll(() => server.listen({ onUnhandledRequest: 'error' }));
  afterEach(() => server.resetHandlers());
  afterAll(() => server.close());
  return server;
}

/** Everything an error exposes to a user or a log. */
export function errorText(e: unknown): string {
  const err = e as Error & { hint?: string };
  return [
    err.message,
    err.hint ?? '',
    JSON.stringify(err),
    String(err.stack),
    inspect(err, { depth: 5 }),
  ].join('\n');
}

export async function caught(
  p: Promise<unknown>,
): Promise<Error & { code?: string; hint?: string; oauthError?: string; transport?: boolean }> {
  try {
    await p;
  } catch (e) {
    return e as Error & { code?: string };
  }
  throw new Error('expected a rejection');
}
