import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    projects: [
      {
        test: { name: 'unit', include: ['test/unit/**/*.test.ts'], env: { TZ: 'UTC' }, testTimeout: 30_000 },
      },
      {
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          globalSetup: ['test/support/global-setup.ts'],
          env: { TESTCONTAINERS_RYUK_DISABLED: 'true' },
          testTimeout: 180_000,
          hookTimeout: 180_000,
          // 2 cores: two files at a time keeps containers from starving each other.
          maxWorkers: 2,
        },
      },
    ],
  },
});
