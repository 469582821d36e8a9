// The binary encoder against the edge's decoder, for every NB-IoT profile's layout (read from the edge's
// profile files), and the simulated NB-IoT devices end to end over a throwaway broker.
import fc from 'fast-check';
import mqtt from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import { decodeBinary, type BinaryField, type BinaryLayout } from '@citysense/edge/binary';
import { encodeBinary, quantize, type LayoutValue } from '../src/protocols/binary-layout.ts';
import { createNbDevice } from '../src/nbiot/devices.ts';
import { loadNbProfile, NB_PROFILES } from '../src/nbiot/profiles.ts';
import { generateProfileDevices, runSim, runSucceeded } from '../src/sim.ts';
import { DeviceControl } from '../src/scenarios/control.ts';
import { startBroker, waitFor } from './helpers/broker.ts';

const START = Date.parse('2026-03-01T09:00:00+08:00');

/** Any value the field can carry, on its grid, as the decoder gives it back. */
function fieldValue(f: BinaryField): fc.Arbitrary<LayoutValue> {
  if (f.enum) return fc.constantFrom(...Object.values(f.enum));
  const ranges: Record<string, [number, number]> = { u8: [0, 255], i8: [-128, 127], u16: [0, 65535], i16: [-32768, 32767], u24: [0, 0xffffff], u32: [0, 0xffffffff], i32: [-0x80000000, 0x7fffffff] };
  const [lo, hi] = ranges[f.type]!;
  return fc.integer({ min: lo, max: hi }).map((raw) => quantize(f, raw * (f.scale ?? 1) + (f.add ?? 0))).filter((v) => (f.min === undefined || v >= f.min) && (f.max === undefined || v <= f.max));
}

function valuesArb(layout: BinaryLayout): fc.Arbitrary<Record<string, LayoutValue>> {
  const parts: Record<string, fc.Arbitrary<LayoutValue>> = {};
  for (const f of layout.fields) {
    if (f.type === 'bits') for (const b of f.bits ?? []) parts[b.name] = fc.boolean();
    else parts[f.name] = fieldValue(f);
  }
  return fc.record(parts);
}

let cleanup: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanup.reverse()) await c();
  cleanup = [];
});

describe('binary layout encoder', () => {
  for (const profile of NB_PROFILES) {
    const { layout } = loadNbProfile(profile);
    it(`${profile}: any values round-trip through the edge's decodeBinary (big and little endian)`, () => {
      const little: BinaryLayout = { ...layout, byteOrder: 'little' };
      for (const l of [layout, little]) {
        fc.assert(
          fc.property(valuesArb(l), (values) => {
            const bytes = encodeBinary(l, values);
            const decoded = decodeBinary(bytes, l);
            expect(decoded.refusals).toEqual([]);
            expect(decoded.values).toEqual(values);
            // And as hex text, which the edge also accepts.
            expect(decodeBinary(bytes.toString('hex'), l).values).toEqual(values);
          }),
          { seed: 212, numRuns: 300 },
        );
      }
    });
  }

  it('refuses what the layout cannot carry, unless asked to send nonsense on purpose', () => {
    const { layout } = loadNbProfile('nb-gas-detector');
    expect(() => encodeBinary(layout, { battery: 150 })).toThrow(/battery: 150 is outside 0..100/);
    expect(() => encodeBinary(layout, { state: 'exploded' })).toThrow(/not one of normal, preheat, alarm, fault/);
    const bytes = encodeBinary(layout, { battery: 150, rsrp: -90, gas_lel: 1.5, state: 'normal' }, { allowOutOfRange: true });
    expect(decodeBinary(bytes, layout).refusals.map((r) => r.code)).toEqual(['BINARY_OUT_OF_RANGE']);
    expect(() => encodeBinary(layout, { battery: 300 }, { allowOutOfRange: true })).toThrow(/does not fit a u8/);
  });

  it('covers every field type the edge knows (u24, u32, i32, f32, f64, hex, ascii, multi-byte bits, add)', () => {
    const layout: BinaryLayout = {
      byteOrder: 'little',
      fields: [
        { name: 'a', offset: 0, type: 'u24', scale: 0.5, add: -100 },
        { name: 'b', offset: 3, type: 'u32' },
        { name: 'c', offset: 7, type: 'i32', byteOrder: 'big' },
        { name: 'd', offset: 11, type: 'f32' },
        { name: 'e', offset: 15, type: 'f64' },
        { name: 'id', offset: 23, type: 'hex', length: 4 },
        { name: 'txt', offset: 27, type: 'ascii', length: 6 },
        { name: 'flags', offset: 33, type: 'bits', length: 2, bits: [{ name: 'lo', bit: 0 }, { name: 'hi', bit: 15 }] },
      ],
    };
    const values = { a: 1234.5, b: 4_000_000_000, c: -123456, d: Math.fround(3.14), e: Math.PI, id: 'deadbeef', txt: 'ok', lo: true, hi: true };
    const decoded = decodeBinary(encodeBinary(layout, values), layout);
    expect(decoded).toEqual({ values, refusals: [] });
  });
});

describe('NB-IoT devices', () => {
  it('heartbeat at the interval, report at once when an alarm bit changes; battery only drains', () => {
    const dev = createNbDevice('nb-1', 'nb-smoke-detector', { seed: 3, startTs: START, stepMs: 60_000, heartbeatMs: 3_600_000 });
    const control = new DeviceControl('nb-1', 'nbiot', 'nb-smoke-detector', 'nbiot');
    control.set('smoke', 5, START + 90 * 60_000);
    control.set('smoke', 0.05, START + 100 * 60_000);
    const frames = [];
    for (let i = 0; i < 24 * 60; i++) {
      const f = dev.step(control);
      if (f) frames.push(f);
    }
    const alarms = frames.filter((f) => f.reason === 'alarm');
    expect(alarms.map((f) => [f.ts - START, f.values['alarm']])).toEqual(expect.arrayContaining([[90 * 60_000, true], [100 * 60_000, false]]));
    const heartbeats = frames.filter((f) => f.reason === 'heartbeat');
    expect(heartbeats.length).toBeGreaterThanOrEqual(24);
    expect(heartbeats.length).toBeLessThanOrEqual(25);
    const battery = frames.map((f) => f.values['battery'] as number);
    for (let i = 1; i < battery.length; i++) expect(battery[i]!).toBeLessThanOrEqual(battery[i - 1]!);
    for (const f of frames) {
      expect(f.values['rsrp']).toBeGreaterThanOrEqual(-125);
      expect(f.values['rsrp']).toBeLessThanOrEqual(-70);
      expect(decodeBinary(f.bytes, dev.profile.layout)).toEqual({ values: f.values, refusals: [] });
    }
  });

  it('every model publishes frames that the edge decodes to what the device says it sent (raw bytes and hex text)', async () => {
    const broker = await startBroker();
    cleanup.push(() => broker.close());
    // The helper broker keeps payloads as UTF-8 text; a subscriber sees the raw bytes.
    const sub = await mqtt.connectAsync(broker.url, { username: 'observer', password: 'observer-secret', clientId: 'observer' });
    cleanup.push(() => sub.endAsync());
    const got: Array<{ topic: string; payload: Buffer }> = [];
    sub.on('message', (topic, payload) => got.push({ topic, payload }));
    await sub.subscribeAsync('devices/#', { qos: 1 });

    const devices = generateProfileDevices({ profiles: [...NB_PROFILES], perProfile: 2, seed: 11 });
    for (const nbHex of [false, true]) {
      got.length = 0;
      const stats = await runSim({ url: broker.url, devices, count: 40, intervalMs: 5, simStepMs: 300_000, seed: 11, startTs: START, nbHex, log: () => undefined });
      expect(runSucceeded(stats)).toBe(true);
      expect(stats.acked).toBe(devices.length * 40);
      await waitFor(() => got.length === stats.acked, 'every frame at the subscriber');
      for (const d of devices) {
        const { layout } = loadNbProfile(d.profile as (typeof NB_PROFILES)[number]);
        const mine = got.filter((g) => g.topic === `devices/${d.id}/telemetry`);
        expect(mine).toHaveLength(40);
        const sums: Record<string, number> = {};
        for (const m of mine) {
          const payload = nbHex ? m.payload.toString('utf8') : m.payload;
          if (nbHex) expect(payload).toMatch(/^[0-9A-F]+$/);
          const decoded = decodeBinary(payload, layout);
          expect(decoded.refusals).toEqual([]);
          for (const [k, v] of Object.entries(decoded.values)) if (typeof v === 'number') sums[k] = (sums[k] ?? 0) + v;
        }
        for (const [k, v] of Object.entries(sums)) expect(stats.perDevice[d.id]!.sums[k]).toBeCloseTo(v, 6);
      }
    }
  });
});
