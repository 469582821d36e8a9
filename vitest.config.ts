import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['{proto,edge,cloud,device-sim}/test/**/*.test.ts', 'e2e/**/*.test.ts'],
    globalSetup: ['e2e/setup/influxd.global.ts', 'e2e/setup/opcua-pki.global.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: 'forks',
  },
});
