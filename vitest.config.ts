import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/support/global-setup.ts'],
    pool: 'forks',
    maxWorkers: 3,
    testTimeout: 20_000,
    hookTimeout: 60_000,
    teardownTimeout: 20_000,
    reporters: process.env.VITEST_SUMMARY_FILE ? ['default', ['json', { outputFile: process.env.VITEST_SUMMARY_FILE }]] : ['default'],
  },
});
