// GB/T 26875.3 fire-panel decoding: public device captures, a hand-written vector, frames from the
// simulator's independent encoder, every refusal code, and the state-transition events.
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { parse as parseYaml } from 'yaml';
import { describe, expect, it } from 'vitest';
import {
  GB26875_ERRORS,
  Gb26875Decoder,
  buildAnswer,
  decodeGb26875,
  encodeFrame,
  loadGb26875Profile,
  parseAppData,
  parseFrame,
  type Gb26875Decoded,
  type Gb26875Profile,
  type Gb26875ProfileInput,
} from '../src/decoders/gb26875/index.ts';
import { FirePanelModel } from '../../device-sim/src/fire-panel/panel.ts';
import { analogData, componentStateData, encodeGbFrame, systemStateData } from '../../device-sim/src/protocols/gb26875.ts';

const hex = (s: string) => Uint8Array.from(Buffer.from(s.replace(/\s+/g, ''), 'hex'));

function section(input: Gb26875ProfileInput = {}): Gb26875Profile {
  const r = loadGb26875Profile(input);
  if (!r.ok) throw new Error(r.refusal.message);
  return r.profile;
}

const sampleYaml = parseYaml(readFileSync(new URL('../profiles/fire-panel-gb26875.yaml', import.meta.url), 'utf8')) as Record<string, unknown>;
const demo = section(sampleYaml['gb26875'] as Gb26875ProfileInput);

const codes = (r: Gb26875Decoded) => r.refusals.map((x) => x.code);
const T0 = Date.UTC(2026, 10, 23, 0, 0, 0); // 2026-11-23 08:00 China time
const SRC = Uint8Array.of(1, 2, 3, 4, 5, 6);
const DST = new Uint8Array(6);

/** A frame of the simulator's encoder carrying `data`. */
function simFrame(data: Uint8Array, opts: { command?: number; time?: number } = {}): Uint8Array {
  return encodeGbFrame({ serial: 7, time: opts.time ?? T0, source: SRC, destination: DST, command: opts.command ?? 2, data });
}

const smokeRef = { systemType: 1, systemAddress: 1, componentType: 42, componentAddress: 65793 };
function smokeState(state: number, ts = T0): Uint8Array {
  return simFrame(componentStateData([{ ...smokeRef, state, description: '1层1区烟感1号', ts }]));
}

describe('GB/T 26875.3 frames from devices in the field', () => {
  it('decodes a photoelectric smoke detector fire alarm captured from a panel (GB 18030 description cut at its NUL)', () => {
    const frame = hex(`4040 1400 1000 0509091b0715 2c312c320000 784d07918e23 3000 02
      02 01 01 01 2a 01000100 0200 31bac5bdd3bfdab0e531bbd8c2b731bac500bac5d6f7bbfaf898cfa0000000 25110301060c 47 2323`);
    const r = decodeGb26875(frame, section());
    expect(r.refusals).toEqual([]);
    expect(r.frame).toMatchObject({ serial: 20, command: 2, source: '2c312c320000', type: 2, sentAt: Date.UTC(2021, 6, 27, 9, 9, 5) - 8 * 3600e3 });
    expect(r.events).toEqual([
      {
        ts: 1338491857000, // 2012-06-01 03:17:37 China time: the object's own time label, not the frame's
        type: 'fire_alarm',
        priority: 'alarm',
        attrs: { component: '65537', component_type: 'photoelectric_smoke_detector', system_type: 'fire_alarm_system', system_address: '1', description: '1号接口板1回路1号' },
      },
    ]);
  });

  it('decodes a second public capture (version 1.1, GB 18030 full-width text)', () => {
    const frame = hex(`4040 0000 0101 180d11160a14 000000000000 060504030201 3000 02
      02 01 01 03 00 d9000600 0200 a3c1c7f8a3b1b2e3dfc8b2b8d7dfc0c8000000000000000000000000000000 301213010814 68 2323`);
    const r = decodeGb26875(frame, section());
    expect(r.refusals).toEqual([]);
    expect(r.events).toHaveLength(1);
    expect(r.events[0]).toMatchObject({ ts: 1596280728000, type: 'fire_alarm', attrs: { component: String(0x0600d9), system_address: '3', description: 'Ａ区１层呷哺走廊' } });
  });

  it('decodes a hand-written analog vector: sprinkler pressure type 4 (0.1 MPa per count)', () => {
    const frame = hex('404001000100001e0a0f011801020304050600000000000012000203010c026301000000040400001e0a0f0118492323');
    const r = decodeGb26875(frame, section({ components: { '2:1': { floor: 'B1', zone: 'pump-room', name: 'pressure switch' } }, building: 'zhongyuan-tower' }));
    expect(r.refusals).toEqual([]);
    expect(r.samples).toEqual([
      {
        ts: 1705285800000, // 2024-01-15 10:30:00 China time
        values: { sprinkler_pressure: 0.4 },
        tags: { building: 'zhongyuan-tower', floor: 'B1', zone: 'pump-room', name: 'pressure switch', component: '1', component_type: 'sprinkler_pressure_switch', system_type: 'sprinkler' },
      },
    ]);
  });
});

/**
 * A frame assembled by hand from GB/T 26875.3-2011's layout (§6.6/§8): '@@', serial, version, time,
 * source, destination, n, command, data, checksum = the sum of every byte from the serial to the end of
 * the data mod 256 (added up here, not by any encoder of ours), '##'.
 */
function handFrame(data: number[], o: { serial?: number; command?: number } = {}): Uint8Array {
  const serial = o.serial ?? 1;
  const body = [
    serial & 0xff, serial >> 8, 1, 0, // serial, version 1.0
    0, 30, 10, 15, 1, 24, // 2024-01-15 10:30:00
    1, 2, 3, 4, 5, 6, // source
    0, 0, 0, 0, 0, 0, // destination
    data.length & 0xff, data.length >> 8, o.command ?? 2, ...data,
  ];
  let sum = 0;
  for (const b of body) sum += b;
  return Uint8Array.from([0x40, 0x40, ...body, sum % 256, 0x23, 0x23]);
}
/** One analog object (type 3 data unit): system 12 at 2, component type 99 at 1, the analog type and its raw count (LE, signed). */
const analogUnit = (analogType: number, raw: number, systemType = 12, componentType = 99) => [
  3, 1, systemType, 2, componentType, 1, 0, 0, 0, analogType, raw & 0xff, (raw >> 8) & 0xff, 0, 30, 10, 15, 1, 24,
];

describe("analog values per the standard's table of analog types (§8.2.1.3)", () => {
  it('type 5 is 0.1 kPa per count: a healthy 0.4 MPa sprinkler pipe is a raw 4000, a dangerous 0.15 MPa a raw 1500', () => {
    const healthy = decodeGb26875(handFrame(analogUnit(5, 4000)), demo);
    expect(healthy.refusals).toEqual([]);
    expect(healthy.samples.map((x) => x.values)).toEqual([{ sprinkler_pressure: 0.4 }]);
    const low = decodeGb26875(handFrame(analogUnit(5, 1500)), demo);
    expect(low.samples.map((x) => x.values)).toEqual([{ sprinkler_pressure: 0.15 }]);
    // 3200 kPa is the top of the table's range; a count above it is refused, not scaled.
    expect(decodeGb26875(handFrame(analogUnit(5, 32000)), section()).samples.map((x) => x.values)).toEqual([{ sprinkler_pressure: 3.2 }]);
    expect(codes(decodeGb26875(handFrame(analogUnit(5, 32001)), section()))).toEqual(['GB26875_BAD_ANALOG']);
  });

  // [type, raw, metric, value]: unit and resolution from the table (metric names are ours).
  const table: [number, number, string, number][] = [
    [1, 17, 'event_count', 17], // events, 1 per count
    [2, 265, 'level', 2.65], // height, 0.01 m
    [3, -105, 'temperature', -10.5], // temperature, 0.1 °C (signed)
    [4, 4, 'pressure', 0.4], // pressure, 0.1 MPa per count
    [5, 4000, 'pressure', 0.4], // pressure, 0.1 kPa per count, delivered in MPa
    [6, 253, 'gas_lel', 25.3], // gas, 0.1 %LEL
    [7, 3600, 'duration', 3600], // time, 1 s
    [8, 2200, 'voltage', 220], // voltage, 0.1 V
    [9, 15, 'current', 1.5], // current, 0.1 A
    [10, 125, 'flow', 12.5], // flow, 0.1 L/s
    [11, 3000, 'air_volume', 300], // air volume, 0.1 m³/min
    [12, 7, 'wind_speed', 7], // wind speed, 1 m/s
  ];
  it.each(table)('type %i: raw %i is %s = %d', (type, raw, metric, value) => {
    // A general system (0) and component (0): no sprinkler/hydrant/tank naming rule applies.
    const r = decodeGb26875(handFrame(analogUnit(type, raw, 0, 0)), section());
    expect(r.refusals).toEqual([]);
    expect(r.samples.map((x) => x.values)).toEqual([{ [metric]: value }]);
  });

  it("values outside the table's valid range are refused (gas over 100 %LEL, wind over 20 m/s, negative pressure)", () => {
    for (const [type, raw] of [[6, 1001], [12, 21], [4, -1], [5, -1], [3, -2731], [2, 32001]] as const) {
      expect(codes(decodeGb26875(handFrame(analogUnit(type, raw, 0, 0)), section())), `type ${type} raw ${raw}`).toEqual(['GB26875_BAD_ANALOG']);
    }
  });
});

describe('frames from the simulator (its encoder is written apart from this decoder)', () => {
  it('a periodic report decodes to plausible readings with the zone from the profile', () => {
    const panel = new FirePanelModel({ id: 'demo-fire-001', seed: 3, now: () => T0 });
    const samples = panel.startup().flatMap((f) => {
      const r = decodeGb26875(f.bytes, demo);
      expect(r.refusals).toEqual([]);
      return r.samples;
    });
    const by = (m: string) => samples.filter((s) => m in s.values);
    expect(by('sprinkler_pressure')).toHaveLength(1);
    expect(by('sprinkler_pressure')[0]!.values['sprinkler_pressure']).toBeCloseTo(panel.pressureMPa, 3);
    expect(by('sprinkler_pressure')[0]!.tags).toMatchObject({ building: 'zhongyuan-tower', zone: 'pump-room', component_type: 'sprinkler_pressure_switch' });
    expect(by('tank_level')[0]!.values['tank_level']).toBeCloseTo(panel.tankLevelM, 2);
    expect(by('temperature')).toHaveLength(6); // one heat detector per zone, 3 floors × 2 zones
    for (const s of by('temperature')) {
      expect(s.ts).toBe(T0);
      expect(s.tags['zone']).toMatch(/^F\d-Z\d$/);
    }
  });

  it('the hooks give the right events: smoke, the zone alarm, the pressure drop, a fault, the reset', () => {
    const panel = new FirePanelModel({ id: 'demo-fire-001', seed: 3, now: () => T0 });
    const dec = new Gb26875Decoder(demo);
    const run = (frames: { bytes: Uint8Array }[]) =>
      frames.map((f) => dec.decode('demo-fire-001', f.bytes)).reduce(
        (acc, r) => {
          expect(r.refusals).toEqual([]);
          return { events: [...acc.events, ...r.events], samples: [...acc.samples, ...r.samples] };
        },
        { events: [] as Gb26875Decoded['events'], samples: [] as Gb26875Decoded['samples'] },
      );
    run(panel.startup());

    const smoke = run(panel.smoke('F2-Z1-D1', 3.5));
    expect(smoke.samples).toEqual([expect.objectContaining({ values: { smoke_obscuration: 3.5 } })]);
    expect(smoke.events.map((e) => [e.type, e.priority, e.attrs['zone'], e.attrs['component_type'] ?? e.attrs['system_type']])).toEqual([
      ['fire_alarm', 'alarm', 'F2-Z1', 'photoelectric_smoke_detector'],
      ['fire_alarm', 'alarm', undefined, 'fire_alarm_system'],
    ]);
    expect(smoke.events[0]!.attrs).toMatchObject({ building: 'zhongyuan-tower', floor: '2', name: '2F office smoke detector', description: '2层1区烟感1号' });

    // The zone's other detector joins; the one already in alarm and the system do not fire again.
    const zone = run(panel.fireAlarm('F2-Z1'));
    expect(zone.events.map((e) => [e.type, e.attrs['name']])).toEqual([['fire_alarm', '2F office heat detector']]);

    const drop = run(panel.sprinklerPressureDrop(0.12));
    expect(drop.samples.find((s) => 'sprinkler_pressure' in s.values)!.values['sprinkler_pressure']).toBe(0.12);
    expect(drop.events.map((e) => [e.type, e.priority, e.attrs['name']])).toEqual([
      ['started', 'routine', 'sprinkler pressure switch'],
      ['started', 'routine', 'sprinkler pump'],
    ]);

    const fault = run(panel.fault('F1-Z2-D2'));
    expect(fault.events.map((e) => [e.type, e.priority])).toEqual([
      ['fault', 'warning'],
      ['fault', 'warning'], // the system's fault bit
    ]);

    const reset = run(panel.reset());
    const types = reset.events.map((e) => `${e.type}:${e.attrs['name'] ?? e.attrs['system_type']}`);
    expect(types).toEqual(
      expect.arrayContaining([
        'fire_alarm_cleared:2F office smoke detector',
        'fire_alarm_cleared:2F office heat detector',
        'started_cleared:sprinkler pump',
        'fault_cleared:1F east corridor heat detector',
        'fire_alarm_cleared:fire_alarm_system',
        'fault_cleared:fire_alarm_system',
        'reset:fire_alarm_system',
      ]),
    );
    expect(reset.events.every((e) => e.priority === 'routine')).toBe(true);

    // After the reset the same detector in smoke again is a new fire alarm.
    expect(run(panel.smoke('F2-Z1-D1')).events.filter((e) => e.type === 'fire_alarm')).toHaveLength(2);
  });

  it('component states, system states and analog values survive encode → decode for any field values', () => {
    const time = fc.date({ min: new Date('2000-01-01T00:00:00+08:00'), max: new Date('2255-12-31T23:59:59+08:00'), noInvalidDate: true }).map((d) => Math.floor(d.getTime() / 1000) * 1000);
    const ref = fc.record({ systemType: fc.nat(255), systemAddress: fc.nat(255), componentType: fc.nat(255), componentAddress: fc.nat(0xffffffff) });
    fc.assert(
      fc.property(fc.array(fc.record({ ref, state: fc.nat(0xffff), text: fc.constantFrom('', 'smoke 1', '3层2区烟感1号', '消防水箱液位'), ts: time }), { minLength: 1, maxLength: 20 }), (objs) => {
        const data = componentStateData(objs.map((o) => ({ ...o.ref, state: o.state, description: o.text, ts: o.ts })));
        const f = parseFrame(simFrame(data));
        expect(f.ok).toBe(true);
        if (!f.ok) return;
        const u = parseAppData(f.frame.appData);
        expect(u.refusals).toEqual([]);
        expect(u.objects.map((o) => (o.kind === 'component_state' ? { ...o.time, addr: o.componentAddress, state: o.state, text: o.description, st: o.systemType } : undefined))).toEqual(
          objs.map((o) => {
            const local = new Date(o.ts + 8 * 3600e3);
            return {
              second: local.getUTCSeconds(),
              minute: local.getUTCMinutes(),
              hour: local.getUTCHours(),
              day: local.getUTCDate(),
              month: local.getUTCMonth() + 1,
              year: local.getUTCFullYear(),
              addr: o.ref.componentAddress,
              state: o.state,
              text: o.text,
              st: o.ref.systemType,
            };
          }),
        );
      }),
      { seed: 26875, numRuns: 300 },
    );
    fc.assert(
      fc.property(fc.integer({ min: -32768, max: 32767 }), time, (raw, ts) => {
        const r = decodeGb26875(simFrame(analogData([{ systemType: 1, systemAddress: 1, componentType: 31, componentAddress: 9, analogType: 3, raw, ts }])), section());
        // The table's valid range for temperature: −273 to +3200 °C.
        if (raw < -2730 || raw > 32000) expect(codes(r)).toEqual(['GB26875_BAD_ANALOG']);
        else expect(r.samples).toEqual([{ ts, values: { temperature: Number((raw * 0.1).toFixed(1)) || 0 }, tags: expect.any(Object) }]);
      }),
      { seed: 26875, numRuns: 300 },
    );
  });
});

describe('refusals', () => {
  const good = smokeState(0b11);

  it('refuses a whole frame that is not one, with its code', () => {
    const cases: Array<[string, Uint8Array, string]> = [
      ['empty', new Uint8Array(), 'GB26875_BAD_START'],
      ['JSON', Buffer.from('{"ts":1,"metrics":{}}'), 'GB26875_BAD_START'],
      ['cut after the header', good.slice(0, 29), 'GB26875_TRUNCATED'],
      ['cut in the data', good.slice(0, 40), 'GB26875_TRUNCATED'],
      ['a byte too many', Uint8Array.from([...good, 0x23]), 'GB26875_BAD_LENGTH'],
      ['length over 1024', (() => { const b = simFrame(new Uint8Array(0)); b[24] = 0x01; b[25] = 0x04; return b; })(), 'GB26875_BAD_LENGTH'],
      ['no end marker', (() => { const b = good.slice(); b[b.length - 1] = 0x24; return b; })(), 'GB26875_BAD_END'],
      ['one data byte changed', (() => { const b = good.slice(); b[40] = b[40]! ^ 0x01; return b; })(), 'GB26875_BAD_CHECKSUM'],
      ['checksum off by one', (() => { const b = good.slice(); b[b.length - 3] = (b[b.length - 3]! + 1) & 0xff; return b; })(), 'GB26875_BAD_CHECKSUM'],
    ];
    for (const [what, bytes, code] of cases) {
      const r = decodeGb26875(bytes, section());
      expect(codes(r), what).toEqual([code]);
      expect(r.events, what).toEqual([]);
      expect(r.frame, what).toBeUndefined();
    }
    expect(codes(decodeGb26875('4040' as unknown as Uint8Array, section()))).toEqual(['GB26875_BAD_PAYLOAD']);
  });

  it('refuses commands a panel does not send, accepts answers silently', () => {
    expect(codes(decodeGb26875(simFrame(new Uint8Array(), { command: 4 }), section()))).toEqual(['GB26875_UNSUPPORTED_COMMAND']);
    expect(codes(decodeGb26875(simFrame(new Uint8Array(), { command: 9 }), section()))).toEqual(['GB26875_UNSUPPORTED_COMMAND']);
    for (const command of [3, 6]) expect(decodeGb26875(simFrame(new Uint8Array(), { command }), section())).toMatchObject({ refusals: [], events: [], samples: [] });
  });

  it('refuses a data type it does not decode, and a unit too short to have one', () => {
    const r = decodeGb26875(simFrame(Uint8Array.of(8, 1, 0, 0, 0, 1, 1, 24)), section());
    expect(codes(r)).toEqual(['GB26875_UNSUPPORTED_TYPE']);
    expect(r.refusals[0]!.message).toContain('system time');
    expect(codes(decodeGb26875(simFrame(Uint8Array.of(2)), section()))).toEqual(['GB26875_BAD_OBJECT_COUNT']);
  });

  it('one bad object among good ones: refused alone, the others go on', () => {
    const ts = T0;
    const base = { systemType: 12, systemAddress: 2, componentType: 99, componentAddress: 1, ts };
    const data = analogData([
      { ...base, analogType: 5, raw: 4120 }, // 412.0 kPa at 0.1 kPa per count
      { ...base, componentType: 40, componentAddress: 7, analogType: 200, raw: 5 }, // no such analog type
      { ...base, componentType: 92, componentAddress: 3, analogType: 2, raw: 265 },
      { ...base, analogType: 6, raw: 1500 }, // 150 %LEL: impossible
    ]);
    const r = decodeGb26875(simFrame(data), section());
    expect(r.refusals.map((x) => [x.code, x.object])).toEqual([
      ['GB26875_UNKNOWN_ANALOG_TYPE', 1],
      ['GB26875_BAD_ANALOG', 3],
    ]);
    expect(r.samples.map((s) => s.values)).toEqual([{ sprinkler_pressure: 0.412 }, { tank_level: 2.65 }]);
  });

  it('a count that does not fit the data: the complete objects go on', () => {
    const data = componentStateData([{ ...smokeRef, state: 0b11, description: 'a', ts: T0 }, { ...smokeRef, componentAddress: 2, state: 0b11, description: 'b', ts: T0 }]);
    const cut = data.slice(0, data.length - 10);
    const r = decodeGb26875(simFrame(cut), section());
    expect(codes(r)).toEqual(['GB26875_BAD_OBJECT_COUNT']);
    expect(r.events.map((e) => e.attrs['description'])).toEqual(['a']);
    const more = Uint8Array.from([...data.slice(0, 1), 1, ...data.slice(2)]); // says 1, carries 2
    expect(decodeGb26875(simFrame(more), section()).events).toHaveLength(1);
  });

  it('objects without time labels are accepted and take the frame time', () => {
    const body = Uint8Array.of(1, 1, 1, 1, 0x03, 0x00); // type 1, one object: system 1 at 1, normal + fire, no time
    const r = decodeGb26875(simFrame(body), section());
    expect(r.refusals).toEqual([]);
    expect(r.events).toEqual([expect.objectContaining({ type: 'fire_alarm', ts: T0, attrs: { system_type: 'fire_alarm_system', system_address: '1' } })]);
  });

  it('a fire alarm with an impossible time still gets through, stamped with the frame time', () => {
    const f = smokeState(0b11);
    const timeAt = 27 + 2 + 40; // the object's time label
    f.set([0, 0, 0, 0, 0, 0], timeAt); // an unset clock: day 0, month 0
    let sum = 0;
    for (let i = 2; i < f.length - 3; i++) sum += f[i]!;
    f[f.length - 3] = sum & 0xff;
    const r = decodeGb26875(f, section());
    expect(codes(r)).toEqual(['GB26875_BAD_TIME']);
    expect(r.refusals[0]!.object).toBe(0);
    expect(r.events).toEqual([expect.objectContaining({ type: 'fire_alarm', ts: T0 })]);
    // And a frame whose own clock is unset: the event goes on with the edge's receive time.
    const g = encodeFrame({ serial: 1, time: { second: 0, minute: 0, hour: 0, day: 0, month: 0, year: 2000 }, source: '000000000000', destination: '000000000000', command: 2, appData: Uint8Array.of(1, 1, 1, 1, 3, 0) });
    const rg = decodeGb26875(g, section());
    expect(codes(rg)).toEqual(['GB26875_BAD_TIME']);
    expect(rg.events).toEqual([expect.objectContaining({ type: 'fire_alarm', ts: undefined })]);
  });

  it('every code has an actionable message and is documented', () => {
    const doc = readFileSync(new URL('../../docs/protocols/fire-gb26875.md', import.meta.url), 'utf8');
    for (const [code, message] of Object.entries(GB26875_ERRORS)) {
      expect(message.length).toBeGreaterThan(20);
      expect(doc, code).toContain(`\`${code}\``);
    }
  });
});

describe('state transitions', () => {
  it('fire_alarm once while the bit stays set, fire_alarm_cleared when it falls', () => {
    const dec = new Gb26875Decoder(section());
    const types = (state: number) => dec.decode('p1', smokeState(state)).events.map((e) => `${e.type}/${e.priority}`);
    expect(types(0b01)).toEqual([]); // first report, normal
    expect(types(0b11)).toEqual(['fire_alarm/alarm']);
    expect(types(0b11)).toEqual([]);
    expect(types(0b111)).toEqual(['fault/warning']);
    expect(types(0b01)).toEqual(['fire_alarm_cleared/routine', 'fault_cleared/routine']);
    expect(types(0b01)).toEqual([]);
    // Panels are independent.
    expect(dec.decode('p2', smokeState(0b11)).events.map((e) => e.type)).toEqual(['fire_alarm']);
  });

  it('a fire alarm in the very first report of a component is an alarm', () => {
    expect(decodeGb26875(smokeState(0b10), section()).events.map((e) => e.type)).toEqual(['fire_alarm']);
  });

  it('events are ordered alarm first', () => {
    const data = componentStateData([
      { ...smokeRef, componentAddress: 1, state: 0b100, description: '', ts: T0 },
      { ...smokeRef, componentAddress: 2, state: 1 << 5, description: '', ts: T0 },
      { ...smokeRef, componentAddress: 3, state: 0b10, description: '', ts: T0 },
    ]);
    expect(decodeGb26875(simFrame(data), section()).events.map((e) => e.priority)).toEqual(['alarm', 'warning', 'routine']);
  });

  it('a system reset forgets its components, so the next alarm is new even if no normal report came', () => {
    const dec = new Gb26875Decoder(section());
    expect(dec.decode('p', smokeState(0b11)).events).toHaveLength(1);
    const sys = (state: number) => simFrame(systemStateData([{ systemType: 1, systemAddress: 1, state, ts: T0 }]));
    dec.decode('p', sys(0b11));
    expect(dec.decode('p', sys(0b01 | (1 << 13))).events.map((e) => e.type)).toEqual(['fire_alarm_cleared', 'reset']);
    expect(dec.decode('p', smokeState(0b11)).events.map((e) => e.type)).toEqual(['fire_alarm']);
  });

  it('the profile renames and turns off bits', () => {
    const s = section({ stateEvents: { component: { '2': { type: 'detector_fault', priority: 'routine', cleared: false }, '1': false } } });
    const dec = new Gb26875Decoder(s);
    expect(dec.decode('p', smokeState(0b111)).events.map((e) => e.type)).toEqual(['detector_fault']);
    expect(dec.decode('p', smokeState(0b001)).events).toEqual([]);
  });

  it('the state memory is bounded per panel', () => {
    const dec = new Gb26875Decoder(section({ maxTrackedStates: 16 }));
    for (let a = 0; a < 100; a++) dec.decode('p', simFrame(componentStateData([{ ...smokeRef, componentAddress: a, state: 1, description: '', ts: T0 }])));
    expect(dec.stateOf('p')!.size).toBe(16);
  });
});

describe('profile section', () => {
  it('the demo profile file parses, and its section with gb26875ProfileSchema', () => {
    expect(sampleYaml).toMatchObject({ id: 'fire-panel-gb26875', family: 'fire', input: 'mqtt', format: 'gb26875' });
    expect(demo.timezoneOffsetMinutes).toBe(480);
    expect(demo.components['1:131329']).toEqual({ floor: '2', zone: 'F2-Z1', name: '2F office smoke detector' });
    const metrics = sampleYaml['metrics'] as Record<string, { unit: string }>;
    expect(metrics['sprinkler_pressure']).toMatchObject({ unit: 'MPa', min: 0, max: 2 });
    expect(metrics['tank_level']).toMatchObject({ unit: 'm', min: 0, max: 20 });
  });

  it('every component of the simulated panel is named in the demo profile', () => {
    const panel = new FirePanelModel({ id: 'demo-fire-001', seed: 1 });
    for (const c of panel.components) expect(demo.components[`${c.systemAddress}:${c.componentAddress}`], c.id).toBeDefined();
  });

  it('refuses mistakes with their path', () => {
    const r = loadGb26875Profile({ timezoneOffsetMinutes: 480.5, components: { 'x:1': {}, '1:2': { zoen: 'A' } }, stateEvents: { component: { '16': false } }, analogTypes: { '300': { metric: 'x', unit: '', scale: 1 }, '128': { metric: 'x', unit: '', scale: 0 } } });
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.refusal.code).toBe('GB26875_BAD_PROFILE');
    const paths = r.issues.map((i) => i.path);
    expect(paths).toEqual(expect.arrayContaining(['timezoneOffsetMinutes', 'components.1:2.zoen', 'analogTypes.300', 'analogTypes.128.scale']));
    expect(paths.some((p) => p.startsWith('components'))).toBe(true);
    expect(paths.some((p) => p.startsWith('stateEvents.component'))).toBe(true);
  });
});

describe('answers', () => {
  it('builds a confirm with the same serial and the addresses swapped', () => {
    const f = parseFrame(smokeState(0b11));
    expect(f.ok).toBe(true);
    if (!f.ok) return;
    const a = parseFrame(buildAnswer(f.frame, 3, T0));
    expect(a.ok).toBe(true);
    if (!a.ok) return;
    expect(a.frame).toMatchObject({ serial: 7, command: 3, source: f.frame.destination, destination: f.frame.source, sentAt: T0 });
    expect(a.frame.appData).toHaveLength(0);
    expect(decodeGb26875(buildAnswer(f.frame, 6, T0), section()).refusals).toEqual([]);
  });
});
