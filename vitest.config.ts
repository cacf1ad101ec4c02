import { defineConfig } from 'vitest/config';

export default defineConfig({
  resolve: {
    // graphql 16 has no "exports": Node loads its CommonJS build for our dependencies, while Vite
    // would pick the ESM one for our code, and two copies of graphql refuse to work together.
    alias: { graphql: 'graphql/index.js' },
  },
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/helpers/global-setup.ts'],
    setupFiles: ['test/helpers/leftovers.ts'],
    testTimeout: 20_000,
    hookTimeout: 60_000,
    // Two cores: files run in parallel, each on its own database copy or PostgreSQL schema.
    fileParallelism: true,
    env: { NODE_ENV: 'test' },
  },
});
