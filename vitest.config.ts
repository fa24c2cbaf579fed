import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    exclude: ['dist/**', 'node_modules/**'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: 'forks',
    // Finds the test PostgreSQL once per run (or prints the one line saying its suites are skipped).
    globalSetup: ['test/helpers/pg-global-setup.ts'],
  },
});
