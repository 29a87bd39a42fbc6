import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/support/global-setup.ts'],
    pool: 'forks',
    maxWorkers: 3,
    // Many tests start processes (tsx, redis-server, Chromium); on a loaded 2-core machine one
    // took over 20 s where it takes 5 alone. A timeout is not an assertion: it only stops a hang.
    testTimeout: 60_000,
    hookTimeout: 60_000,
    teardownTimeout: 20_000,
    reporters: process.env.VITEST_SUMMARY_FILE ? ['default', ['json', { outputFile: process.env.VITEST_SUMMARY_FILE }]] : ['default'],
  },
});
