/**
 * Tests that disturb what every other test shares (they restart the Docker engine), so they run
 * on their own, after the main suite: `npx vitest run --config vitest.exclusive.config.ts`.
 */
import { defineConfig } from 'vitest/config';
import base from './vitest.config.js';

export default defineConfig({
  test: {
    ...base.test,
    include: ['test/exclusive/**/*.test.ts'],
    exclude: ['**/node_modules/**'],
    maxWorkers: 1,
  },
});
