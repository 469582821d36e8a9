// Device profiles end to end: NB-IoT binary frames decoded by the built-in layouts, value-based events
// (an alarm bit → smoke_alarm of alarm priority), and new sensor models added by a profile file alone.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStack, type Stack } from './stack.ts';
import { waitFor } from './setup/influx.ts';

// Two sensor models the edge has never heard of, each defined by one file and no code.
const profilesDir = mkdtempSync(join(tmpdir(), 'citysense-profiles-'));
writeFileSync(
  join(profilesDir, 'wm-nb3.yaml'),
  `id: wm-nb3
description: NB-IoT water meter, little-endian, cumulative volume in litres
family: nbiot
input: mqtt
format: binary
binary:
  byteOrder: little
  fields:
    - { name: volume_m3, offset: 0, type: u32, scale: 0.001 }
    - { name: battery_pct, offset: 4, type: u8, min: 0, max: 100 }
    - { name: status, offset: 5, type: bits, bits: [ { name: leak, bit: 0 }, { name: reverse_flow, bit: 1 } ] }
metrics:
  volume_m3: { unit: m³ }
events:
  - { type: water_leak, priority: alarm, when: { metric: leak, equals: true } }
`,
);
writeFileSync(
  join(profilesDir, 'noise-ws2.json'),
  JSON.stringify({
    id: 'noise-ws2',
    description: 'A noise meter that sends {"time": <seconds>, "data": {"LAeq": ...}}',
    family: 'environment',
    input: 'mqtt',
    format: 'json',
    json: { metricsKey: 'data', tsKey: 'time', tsUnit: 's' },
    unknownMetrics: 'refuse',
    metrics: { noise: { source: 'LAeq', unit: 'dB(A)', min: 20, max: 140 }, noise_peak: { source: 'LAmax', unit: 'dB(A)', min: 20, max: 140 } },
    events: [{ type: 'noise_exceedance', priority: 'warning', when: { metric: 'noise', above: 70 }, clearType: 'noise_normal' }],
  }),
);

let stack: Stack;
beforeAll(async () => {
  stack = await startStack(
    'profiles',
    [
      { id: 'nb-smoke-01', family: 'nbiot', secret: 'nb-smoke-01-secret', district: 'guancheng', profile: 'nb-smoke-detector' },
      { id: 'nb-cover-01', family: 'nbiot', secret: 'nb-cover-01-secret', district: 'erqi', profile: 'nb-manhole-cover' },
      { id: 'nb-gas-01', family: 'nbiot', secret: 'nb-gas-01-secret', district: 'huiji', profile: 'nb-gas-detector' },
      { id: 'wm-01', family: 'nbiot', secret: 'wm-01-secret', district: 'huiji', profile: 'wm-nb3' },
      { id: 'noise-01', family: 'environment', secret: 'noise-01-secret', district: 'jinshui', profile: 'noise-ws2' },
    ],
    { profiles: { dirs: [profilesDir] } },
  );
});
afterAll(async () => {
  await stack?.close();
});

async function publish(id: string, payload: Buffer | string): Promise<void> {
  const c = await mqtt.connectAsync(stack.mqttUrl, { username: id, password: `${id}-secret`, clientId: id, reconnectPeriod: 0 });
  await c.publishAsync(`devices/${id}/telemetry`, payload, { qos: 1 });
  await c.endAsync();
}
const q = (s: string) => stack.influx.query(s);

describe('NB-IoT binary frames through the built-in profiles', () => {
  it('a smoke detector frame becomes a reading, and its alarm bit one smoke_alarm event of alarm priority', async () => {
    // type 0x01, battery 87 %, RSRP -95 dBm, SNR 12 dB, obscuration 2.50 %/m, status: alarm.
    await publish('nb-smoke-01', Buffer.from([0x01, 87, 0xff, 0xa1, 12, 0x00, 0xfa, 0x01]));
    // The same alarm still set in the next report: no second event. Hex text works as well as bytes.
    await publish('nb-smoke-01', '01 56 FF A1 0C 01 2C 01');
    await waitFor('two readings', async () => (await q(`SELECT * FROM nbiot WHERE device_id = 'nb-smoke-01'`)).length === 2);
    const [first] = await q(`SELECT * FROM nbiot WHERE device_id = 'nb-smoke-01' ORDER BY time ASC LIMIT 1`);
    expect(first).toMatchObject({ battery: 87, rsrp: -95, snr: 12, smoke_obscuration: 2.5, alarm: true, tamper: false, model: 'SD-NB1', district: 'guancheng' });
    const events = await q(`SELECT * FROM events WHERE device_id = 'nb-smoke-01'`);
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ type: 'smoke_alarm', priority: 'alarm', family: 'nbiot', attr_smoke_obscuration: '2.5' });
  });

  it('a manhole cover and a gas detector decode with their own layouts; a short frame is refused and counted', async () => {
    // cover: type 0x02, battery 64, RSRP -101, tilt 12.5°, water 340 mm, cover open.
    await publish('nb-cover-01', Buffer.from([0x02, 64, 0xff, 0x9b, 0x00, 0x7d, 0x01, 0x54, 0x01]));
    await publish('nb-cover-01', Buffer.from([0x02, 64, 0xff]));
    // gas: type 0x03, battery 90, RSRP -88, 31.0 %LEL, alarm bit, state 2 (alarm).
    await publish('nb-gas-01', Buffer.from([0x03, 90, 0xff, 0xa8, 0x01, 0x36, 0x01, 0x02]));
    await waitFor('cover and gas readings', async () => (await q(`SELECT * FROM nbiot WHERE device_id =~ /nb-(cover|gas)-01/`)).length === 2);
    const [cover] = await q(`SELECT * FROM nbiot WHERE device_id = 'nb-cover-01'`);
    expect(cover).toMatchObject({ tilt: 12.5, water_level: 340, cover_open: true });
    const [gas] = await q(`SELECT * FROM nbiot WHERE device_id = 'nb-gas-01'`);
    expect(gas).toMatchObject({ gas_lel: 31, alarm: true, state: 'alarm' });
    const types = (await q(`SELECT * FROM events WHERE device_id =~ /nb-(cover|gas)-01/`)).map((e) => e.type).sort();
    expect(types).toEqual(['cover_open', 'gas_alarm']);
    expect(await stack.edge.metrics.getSingleMetricAsString('citysense_edge_messages_rejected_total')).toMatch(/device="nb-cover-01",reason="BINARY_TOO_SHORT"\} 1/);
  });
});

describe('a new sensor model by a profile file alone', () => {
  it('binary: a little-endian water meter', async () => {
    await publish('wm-01', Buffer.from([0x39, 0x30, 0x00, 0x00, 77, 0x01]));
    await waitFor('the meter reading', async () => (await q(`SELECT * FROM nbiot WHERE device_id = 'wm-01'`)).length === 1);
    const [r] = await q(`SELECT * FROM nbiot WHERE device_id = 'wm-01'`);
    expect(r).toMatchObject({ volume_m3: 12.345, battery_pct: 77, leak: true, reverse_flow: false });
    expect((await q(`SELECT * FROM events WHERE device_id = 'wm-01'`))[0]).toMatchObject({ type: 'water_leak', priority: 'alarm' });
  });

  it('JSON: other keys, seconds, renamed metrics, strict names and ranges, an edge-triggered event that clears', async () => {
    const t = Math.floor(Date.now() / 1000) - 60;
    await publish('noise-01', JSON.stringify({ time: t, data: { LAeq: 72.4, LAmax: 88.1, junk: 1 } }));
    await publish('noise-01', JSON.stringify({ time: t + 1, data: { LAeq: 75, LAmax: 300 } }));
    await publish('noise-01', JSON.stringify({ time: t + 2, data: { LAeq: 61.2 } }));
    await waitFor('three noise readings', async () => (await q(`SELECT * FROM environment WHERE device_id = 'noise-01'`)).length === 3);
    const rows = await q(`SELECT * FROM environment WHERE device_id = 'noise-01' ORDER BY time ASC`);
    expect(rows.map((r) => r.time)).toEqual([t * 1000, (t + 1) * 1000, (t + 2) * 1000]);
    expect(rows[0]).toMatchObject({ noise: 72.4, noise_peak: 88.1 });
    expect(rows[0]!.junk).toBeUndefined();
    // 300 dB(A) is outside the meter's range: that value is refused, its neighbour kept.
    expect(rows[1]).toMatchObject({ noise: 75, noise_peak: null });
    const events = await q(`SELECT * FROM events WHERE device_id = 'noise-01' ORDER BY time ASC`);
    expect(events.map((e) => e.type)).toEqual(['noise_exceedance', 'noise_normal']);
    const rejected = await stack.edge.metrics.getSingleMetricAsString('citysense_edge_values_rejected_total');
    expect(rejected).toMatch(/device="noise-01",reason="unknown_metric"\} 1/);
    expect(rejected).toMatch(/device="noise-01",reason="out_of_range"\} 1/);
  });
});
