import pg from 'pg';
import type { TestProject } from 'vitest/node';

/**
 * Runs once per `vitest run`: is there a PostgreSQL to test against? Its answer reaches every test
 * file through inject('pgUrl') ('' when there is none). Without a server the PostgreSQL suites are
 * skipped with one line saying how to run them; under AUTHSOME_TEST_PG_REQUIRED=1 (CI) the run fails.
 */

declare module 'vitest' {
  export interface ProvidedContext {
    pgUrl: string;
  }
}

export const DEFAULT_TEST_PG_URL = 'postgres://postgres@127.0.0.1:5432/test';

/** The URL without anything after the host's user (a test URL should not hold a password anyway). */
function shown(url: string): string {
  return url.replace(/\/\/([^/@:]*):[^/@]*@/, '//$1:[redacted]@');
}

async function probe(url: string): Promise<string | undefined> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 3000 });
  client.on('error', () => undefined);
  try {
    await client.connect();
    await client.query('SELECT 1');
    return undefined;
  } catch (e) {
    return (e as Error).message || String(e);
  } finally {
    await client.end().catch(() => undefined);
  }
}

export default async function setup(project: TestProject): Promise<void> {
  const url = process.env['AUTHSOME_TEST_PG_URL'] || DEFAULT_TEST_PG_URL;
  const failure = await probe(url);
  if (failure !== undefined) {
    if (process.env['AUTHSOME_TEST_PG_REQUIRED'] === '1') {
      throw new Error(
        `PostgreSQL is required (AUTHSOME_TEST_PG_REQUIRED=1) but ${shown(url)} cannot be reached: ${failure}`,
      );
    }
    console.log(
      `PostgreSQL tests skipped: no server at ${shown(url)} (set AUTHSOME_TEST_PG_URL=postgres://user@host:port/db to run them)`,
    );
  }
  project.provide('pgUrl', failure === undefined ? url : '');
}
