// Building fire-alarm systems end to end: a simulated panel publishing GB/T 26875.3 frames over MQTT →
// the edge's fire-panel profile → cloud → InfluxDB. A fire alarm is one event of alarm priority that says
// where (building, floor, zone); sprinkler pressure and tank level are readings tagged by component.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFirePanel, type FirePanel } from '../device-sim/src/fire-panel/index.ts';
import { startStack, type Stack } from './stack.ts';
import { waitFor } from './setup/influx.ts';

let stack: Stack;
let panel: FirePanel;
beforeAll(async () => {
  stack = await startStack('fire', [{ id: 'demo-fire-panel-001', family: 'fire', district: 'zhongyuan', secret: 'demo-fire-panel-001-secret', profile: 'fire-panel-gb26875' }]);
  panel = await startFirePanel({ url: stack.mqttUrl, id: 'demo-fire-panel-001', secret: 'demo-fire-panel-001-secret', seed: 7, floors: 3, zonesPerFloor: 2, detectorsPerZone: 2, reportIntervalMs: 0 });
  await panel.report();
});
afterAll(async () => {
  await panel?.stop();
  await stack?.close();
});

const q = (s: string) => stack.influx.query(s);

describe('fire panel (GB/T 26875.3 over MQTT) → edge → cloud → InfluxDB', () => {
  it('analog reports land as fire readings tagged by component, in the profile\'s units', async () => {
    await waitFor('sprinkler pressure', async () => (await q(`SELECT * FROM fire WHERE device_id = 'demo-fire-panel-001' AND sprinkler_pressure > 0`)).length > 0);
    const [r] = await q(`SELECT * FROM fire WHERE sprinkler_pressure > 0 LIMIT 1`);
    expect(r).toMatchObject({ district: 'zhongyuan', building: 'zhongyuan-tower' });
    expect(r!.sprinkler_pressure as number).toBeGreaterThan(0.2);
    expect(r!.sprinkler_pressure as number).toBeLessThan(0.7);
    expect(r!.component).toBeTruthy();
  });

  it('smoke, then the zone\'s fire alarm, then a sprinkler pressure drop: one fire_alarm of alarm priority with the zone', async () => {
    await panel.smoke(1);
    await panel.fireAlarm('F2-Z1');
    await panel.sprinklerPressureDrop(0.05);
    let alarms: Record<string, unknown>[] = [];
    await waitFor('the fire alarm event', async () => {
      alarms = await q(`SELECT * FROM events WHERE device_id = 'demo-fire-panel-001' AND type = 'fire_alarm'`);
      return alarms.some((a) => a.attr_zone === 'F2-Z1');
    });
    const zoneAlarm = alarms.find((a) => a.attr_zone === 'F2-Z1')!;
    expect(zoneAlarm).toMatchObject({ family: 'fire', priority: 'alarm', attr_building: 'zhongyuan-tower', attr_floor: '2' });
    await waitFor('the pressure drop', async () => (await q(`SELECT * FROM fire WHERE sprinkler_pressure < 0.1`)).length > 0);
    // Reported again while still set: no second event for the same component.
    await panel.fireAlarm('F2-Z1');
    await panel.report();
    const again = await q(`SELECT * FROM events WHERE device_id = 'demo-fire-panel-001' AND type = 'fire_alarm' AND attr_zone = 'F2-Z1'`);
    expect(again.length).toBe(alarms.filter((a) => a.attr_zone === 'F2-Z1').length);
  });
});
