// The simulated fire panel against a throwaway aedes broker: it connects with its credentials, publishes
// GB/T 26875.3 frames (QoS 1) that the edge's decoder turns into plausible readings, and its hooks give
// the state frames a `fire` scenario needs. Waits are on conditions with a deadline, never on time.
import { readFileSync } from 'node:fs';
import mqtt, { type MqttClient } from 'mqtt';
import { parse as parseYaml } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Gb26875Decoder, loadGb26875Profile, type Gb26875Event, type Gb26875Sample } from '../../edge/src/decoders/gb26875/index.ts';
import { FirePanelModel, startFirePanel, type FirePanel } from '../src/fire-panel/index.ts';
import { startBroker, waitFor, type TestBroker } from './helpers/broker.ts';

const yaml = parseYaml(readFileSync(new URL('../../edge/profiles/fire-panel-gb26875.yaml', import.meta.url), 'utf8')) as { gb26875: unknown };
const loaded = loadGb26875Profile(yaml.gb26875);
if (!loaded.ok) throw new Error(loaded.refusal.message);
const section = loaded.profile;

let broker: TestBroker;
let observer: MqttClient;
/** Raw payloads as the observer received them (the helper's record is text, frames are binary). */
const frames: Array<{ topic: string; bytes: Buffer }> = [];

beforeAll(async () => {
  broker = await startBroker();
  observer = mqtt.connect(broker.url, { clientId: 'observer', username: 'observer', password: 'observer-secret', protocolVersion: 4 });
  await new Promise<void>((resolve, reject) => {
    observer.once('connect', () => observer.subscribe('devices/+/telemetry', { qos: 1 }, (err) => (err ? reject(err) : resolve())));
    observer.once('error', reject);
  });
  observer.on('message', (topic, payload) => frames.push({ topic, bytes: Buffer.from(payload) }));
});

afterAll(async () => {
  await new Promise<void>((resolve) => observer.end(true, {}, () => resolve()));
  await broker.close();
});

/** Decodes what has arrived for a panel so far, in order, with one decoder (state transitions). */
function decodedOf(id: string): { samples: Gb26875Sample[]; events: Gb26875Event[]; refusals: string[] } {
  const dec = new Gb26875Decoder(section);
  const out = { samples: [] as Gb26875Sample[], events: [] as Gb26875Event[], refusals: [] as string[] };
  for (const f of frames.filter((x) => x.topic === `devices/${id}/telemetry`)) {
    const r = dec.decode(id, f.bytes);
    out.samples.push(...r.samples);
    out.events.push(...r.events);
    out.refusals.push(...r.refusals.map((x) => x.code));
  }
  return out;
}

describe('simulated fire panel over MQTT', () => {
  it('connects with its credentials and publishes frames that decode to plausible readings', async () => {
    const panel = await startFirePanel({ url: broker.url, id: 'sim-fire-0001', secret: 'sim-fire-0001-secret', seed: 7, reportIntervalMs: 20 });
    try {
      await waitFor(() => decodedOf('sim-fire-0001').samples.filter((s) => 'sprinkler_pressure' in s.values).length >= 5, 'five pressure reports');
      const d = decodedOf('sim-fire-0001');
      expect(d.refusals).toEqual([]);
      const values = (m: string) => d.samples.flatMap((s) => (m in s.values ? [s.values[m] as number] : []));
      const within = (m: string, lo: number, hi: number) => expect(values(m).filter((v) => v < lo || v > hi), m).toEqual([]);
      within('sprinkler_pressure', 0.3, 0.5);
      within('tank_level', 2.2, 3);
      within('temperature', 15, 30);
      expect(values('tank_level').length).toBeGreaterThan(0);
      expect(new Set(d.samples.filter((s) => 'temperature' in s.values).map((s) => s.tags['zone']))).toEqual(new Set(['F1-Z1', 'F1-Z2', 'F2-Z1', 'F2-Z2', 'F3-Z1', 'F3-Z2']));
      // Nothing is wrong in a quiet building.
      expect(d.events).toEqual([]);
      const mine = broker.received.filter((r) => r.clientId === 'sim-fire-0001');
      expect(mine.every((r) => r.topic === 'devices/sim-fire-0001/telemetry' && r.qos === 1)).toBe(true);
    } finally {
      await panel.stop();
    }
    expect(panel.stats.failed).toBe(0);
    expect(panel.stats.acked).toBe(panel.stats.published);
  });

  it('the hooks publish the state frames of a fire: smoke, the zone alarm, the pressure drop, the reset', async () => {
    const id = 'demo-fire-001';
    const panel: FirePanel = await startFirePanel({ url: broker.url, id, secret: `${id}-secret`, seed: 1, reportIntervalMs: 0 });
    const events = () => decodedOf(id).events.map((e) => `${e.type}:${e.priority}:${e.attrs['zone'] ?? e.attrs['system_type']}:${e.attrs['name'] ?? ''}`);
    try {
      await panel.smoke('F3-Z2-D1');
      await waitFor(() => events().some((e) => e.startsWith('fire_alarm:alarm:F3-Z2:')), 'the detector fire alarm');
      expect(decodedOf(id).samples.find((s) => 'smoke_obscuration' in s.values)?.tags['zone']).toBe('F3-Z2');

      await panel.fireAlarm('F3-Z2');
      await waitFor(() => events().includes('fire_alarm:alarm:F3-Z2:3F server room heat detector'), 'the rest of the zone');

      await panel.sprinklerPressureDrop(0.08);
      await waitFor(() => decodedOf(id).samples.some((s) => s.values['sprinkler_pressure'] === 0.08), 'the pressure drop');
      await waitFor(() => events().includes('started:routine:pump-room:sprinkler pump'), 'the pump start');

      await panel.fault('water-tank');
      await waitFor(() => events().includes('fault:warning:roof:roof fire-water tank'), 'the tank fault');

      await panel.reset();
      await waitFor(() => events().includes('reset:routine:fire_alarm_system:'), 'the reset');
      expect(events()).toEqual(
        expect.arrayContaining([
          'fire_alarm:alarm:fire_alarm_system:',
          'fire_alarm_cleared:routine:F3-Z2:3F server room smoke detector',
          'fire_alarm_cleared:routine:F3-Z2:3F server room heat detector',
          'fire_alarm_cleared:routine:fire_alarm_system:',
          'started_cleared:routine:pump-room:sprinkler pump',
          'fault_cleared:routine:roof:roof fire-water tank',
        ]),
      );
      // One fire alarm per detector and one for the system: never repeated while the bits stayed set.
      expect(events().filter((e) => e.startsWith('fire_alarm:'))).toHaveLength(3);
      expect(decodedOf(id).refusals).toEqual([]);
    } finally {
      await panel.stop();
    }
  });

  it('a wrong secret is refused by the broker and startFirePanel rejects', async () => {
    await expect(startFirePanel({ url: broker.url, id: 'sim-fire-0009', secret: 'wrong', reportIntervalMs: 0, connectTimeoutMs: 5000 })).rejects.toThrow(/refused/);
    expect(broker.refused).toContain('sim-fire-0009');
  });
});

describe('FirePanelModel (no network)', () => {
  it('is repeatable: the same seed and clock give the same frames', () => {
    const run = () => {
      const p = new FirePanelModel({ id: 'p', seed: 42, now: () => 1_780_000_000_000 });
      return [...p.startup(), ...p.report(), ...p.report(), ...p.smoke('F1-Z1-D1'), ...p.reset()].map((f) => Buffer.from(f.bytes).toString('hex'));
    };
    expect(run()).toEqual(run());
  });

  it('refuses hooks on components and zones it does not have', () => {
    const p = new FirePanelModel({ id: 'p', floors: 1, zonesPerFloor: 1 });
    expect(() => p.smoke('F9-Z9-D9')).toThrow(/no component/);
    expect(() => p.fireAlarm('F9-Z9')).toThrow(/no zone/);
    expect(() => p.sprinklerPressureDrop(-1)).toThrow(RangeError);
  });

  it('keeps every frame within the standard (data unit ≤ 1024 bytes) for a large building', () => {
    const p = new FirePanelModel({ id: 'big', floors: 40, zonesPerFloor: 4, detectorsPerZone: 6 });
    for (const f of [...p.startup(), ...p.fireAlarm('F20-Z3'), ...p.reset()]) expect(f.bytes.length - 30).toBeLessThanOrEqual(1024);
  });
});

describe("the simulator's analog counts follow the standard's table (read from the bytes, not by the edge's decoder)", () => {
  it('sprinkler pressure is type 5 at 0.1 kPa per count, tank level type 2 at 0.01 m, temperature type 3 at 0.1 °C', () => {
    const model = new FirePanelModel({ id: 'sim-fire-table', seed: 3, floors: 1, zonesPerFloor: 1, detectorsPerZone: 2, now: () => Date.UTC(2026, 0, 1) });
    const [analog] = model.report();
    const b = analog!.bytes;
    // Data unit at byte 27: type 3, count, then 16-byte objects (10-byte body + 6-byte time label).
    expect(b[27]).toBe(3);
    const objects = Array.from({ length: b[28]! }, (_, i) => {
      const at = 29 + i * 16;
      return { componentType: b[at + 2]!, analogType: b[at + 7]!, raw: (b[at + 8]! | (b[at + 9]! << 8)) << 16 >> 16 };
    });
    const pressure = objects.find((o) => o.componentType === 99)!;
    expect(pressure.analogType).toBe(5);
    expect(pressure.raw).toBe(Math.round(model.pressureMPa * 10_000)); // 0.4 MPa = 400 kPa = 4000 counts
    expect(pressure.raw).toBeGreaterThanOrEqual(3000);
    expect(pressure.raw).toBeLessThanOrEqual(5000);
    const tank = objects.find((o) => o.componentType === 92)!;
    expect(tank).toMatchObject({ analogType: 2, raw: Math.round(model.tankLevelM * 100) });
    const heat = objects.find((o) => o.componentType === 31)!;
    expect(heat.analogType).toBe(3);
    expect(heat.raw).toBeGreaterThan(150); // 15–30 °C at 0.1 °C per count
    expect(heat.raw).toBeLessThan(300);
  });
});
