// Named scenarios of device-sim, played against a real stack: `fire` drives the GB/T 26875.3 panel
// simulator and an NB-IoT smoke detector; the resulting alarms land as events of alarm priority.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runSim, startFirePanel, type FirePanel } from '@citysense/device-sim';
import { startStack, type Stack } from './stack.ts';
import { waitFor } from './setup/influx.ts';

let stack: Stack;
let panel: FirePanel;
beforeAll(async () => {
  stack = await startStack('scenarios', [
    { id: 'sc-panel-1', family: 'fire', district: 'zhongyuan', secret: 'sc-panel-1-secret', profile: 'fire-panel-gb26875' },
    { id: 'sc-smoke-1', family: 'nbiot', district: 'zhongyuan', secret: 'sc-smoke-1-secret', profile: 'nb-smoke-detector' },
  ]);
  panel = await startFirePanel({ url: stack.mqttUrl, id: 'sc-panel-1', secret: 'sc-panel-1-secret', seed: 3, reportIntervalMs: 0 });
});
afterAll(async () => {
  await panel?.stop();
  await stack?.close();
});

describe('device-sim scenarios against the stack', () => {
  it('fire: smoke at a detector, the zone in fire alarm, the sprinkler pressure drop — all arrive', async () => {
    const stats = await runSim({
      url: stack.mqttUrl,
      devices: [{ id: 'sc-smoke-1', secret: 'sc-smoke-1-secret', family: 'nbiot', profile: 'nb-smoke-detector' } as never],
      scenario: 'fire',
      parts: { firePanel: panel },
      intervalMs: 50,
      simStepMs: 5_000,
      seed: 9,
      progress: false,
      log: () => undefined,
    });
    expect(stats.scenario?.executed.map((s) => s.name)).toEqual(['smoke at a detector', 'fire alarm in the zone', 'sprinkler pressure drops to 0.08 MPa']);
    expect(stats.scenario?.executed.filter((s) => s.error)).toEqual([]);
    await waitFor('the panel\'s fire alarm', async () => (await stack.influx.query(`SELECT * FROM events WHERE device_id = 'sc-panel-1' AND type = 'fire_alarm' AND priority = 'alarm'`)).length > 0);
    await waitFor('the NB-IoT detector\'s smoke alarm', async () => (await stack.influx.query(`SELECT * FROM events WHERE device_id = 'sc-smoke-1' AND type = 'smoke_alarm'`)).length === 1);
    await waitFor('the pressure drop', async () => (await stack.influx.query(`SELECT * FROM fire WHERE device_id = 'sc-panel-1' AND sprinkler_pressure < 0.1`)).length > 0);
  });
});
