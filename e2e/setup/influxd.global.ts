// Vitest global set-up: one private influxd per test run (free port, temporary folder). Each test file
// makes its own database (see testInflux in ./influx.ts), so files never see each other's points.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { startInfluxd, type Influxd } from '../../scripts/influxd.ts';

let influxd: Influxd | undefined;

export default async function setup(project: TestProject) {
  let url = process.env.CITYSENSE_TEST_INFLUX_URL;
  if (!url) {
    const dir = mkdtempSync(join(tmpdir(), 'citysense-test-influxd-'));
    influxd = await startInfluxd({ dir, removeOnStop: true });
    url = influxd.url;
  }
  project.provide('influxUrl', url);
  return async () => {
    await influxd?.stop();
  };
}

declare module 'vitest' {
  export interface ProvidedContext {
    influxUrl: string;
  }
}
