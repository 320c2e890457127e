import { defineConfig } from 'vitest/config';

/** Only for `npm run record-histories`: regenerates the replay fixtures. */
export default defineConfig({
  test: {
    include: ['test/replay/record.rec.ts'],
    globalSetup: ['test/support/global-setup.ts'],
    testTimeout: 300_000,
    pool: 'forks',
  },
});
