// Seeded NB-IoT devices: smoke detectors, manhole-cover sensors and gas detectors sending the binary
// frames of their profile. Like real ones they report rarely: a heartbeat every `heartbeatMs` of
// simulated time, plus a report at once when an alarm or fault bit changes. Battery drains a little per
// uplink (more at poor coverage, where the radio repeats) and by self-discharge; RSRP and SNR wander
// around a site-dependent mean (typical NB-IoT cells: −120 … −80 dBm).
import type { BinaryField } from '@citysense/edge/binary';
import { clamp, DAY_MS, HOUR_MS, MINUTE_MS, ou } from '../families/common.ts';
import { encodeBinary, quantize, type LayoutValue } from '../protocols/binary-layout.ts';
import { createRng, type Rng } from '../rng.ts';
import type { DeviceControl, FaultKind } from '../scenarios/control.ts';
import { loadNbProfile, type NbProfile, type NbProfileInfo } from './profiles.ts';

/** Conditions a scenario may set (DeviceControl.set): force the sensor's own reading. */
export const NB_CONDITIONS = {
  /** Smoke obscuration %/m for a smoke detector. */
  smoke: 'smoke',
  /** %LEL for a gas detector. */
  gas: 'gasLel',
  /** 1 = the manhole cover is lifted. */
  coverOpen: 'coverOpen',
  /** Water level in mm for a manhole sensor. */
  water: 'waterLevel',
} as const;

export interface NbFrame {
  ts: number;
  reason: 'heartbeat' | 'alarm';
  /** The values encoded (after quantising to the layout's steps): what the edge will decode. */
  values: Record<string, LayoutValue>;
  bytes: Buffer;
  faults: FaultKind[];
}

export interface NbOptions {
  seed: number | string;
  startTs: number;
  stepMs: number;
  phaseMs?: number;
  /** Simulated time between heartbeats; default one per step. */
  heartbeatMs?: number;
  profilesDir?: string;
}

export interface NbDevice {
  readonly profile: NbProfileInfo;
  /** Advances one step; returns the frame sent at this step, if any. */
  step(control?: DeviceControl): NbFrame | undefined;
}

interface Radio {
  battery: number;
  rsrpMean: number;
  rsrp: number;
}

/** Sensor part of a model: its own values and which bits make it report at once. */
interface Model {
  alarmBits: readonly string[];
  init(rng: Rng): Record<string, number>;
  step(rng: Rng, s: Record<string, number>, dt: number, ts: number, control: DeviceControl | undefined): Record<string, LayoutValue>;
}

const SMOKE_ALARM = 3; // %/m, photoelectric detectors alarm at about 2–4
const GAS_ALARM = 25; // %LEL, GB 15322 low alarm
const GAS_HIGH = 50;

const MODELS: Record<NbProfile, Model> = {
  'nb-smoke-detector': {
    alarmBits: ['alarm', 'tamper', 'fault'],
    init: (rng) => ({ clean: rng.uniform(0.01, 0.08), smoke: 0, episodeLeft: 0, episodeLen: 0, peak: 0, fault: 0, tamper: 0 }),
    step(rng, s, dt, ts, control) {
      if (s['episodeLeft']! <= 0 && rng.chance(0.002)) {
        s['episodeLen'] = rng.int(3, 10);
        s['episodeLeft'] = s['episodeLen']!;
        s['peak'] = rng.chance(0.3) ? rng.uniform(SMOKE_ALARM, 10) : rng.uniform(0.3, 2.2);
      }
      let smoke: number;
      if (s['episodeLeft']! > 0) {
        const i = s['episodeLen']! - s['episodeLeft']! + 1;
        smoke = s['clean']! + s['peak']! * Math.sin((Math.PI * i) / (s['episodeLen']! + 1));
        s['episodeLeft']! -= 1;
      } else smoke = ou(rng, s['smoke']!, s['clean']!, 0.01, 10 * MINUTE_MS, dt);
      s['smoke'] = clamp(smoke, 0, 100);
      const forced = control?.get(NB_CONDITIONS.smoke, ts);
      const reading = forced ?? s['smoke']!;
      if (rng.chance(0.0003)) s['fault'] = s['fault'] ? 0 : 1;
      if (rng.chance(0.0002)) s['tamper'] = s['tamper'] ? 0 : 1;
      return { smoke_obscuration: reading, alarm: reading >= SMOKE_ALARM, tamper: s['tamper'] === 1, fault: s['fault'] === 1 };
    },
  },
  'nb-manhole-cover': {
    alarmBits: ['cover_open', 'water_alarm', 'tilt_alarm'],
    init: (rng) => ({ tiltRest: rng.uniform(-1.5, 1.5), tilt: 0, waterMean: rng.uniform(200, 1200), water: 0, openLeft: 0, openTilt: 0, rainLeft: 0 }),
    step(rng, s, dt, ts, control) {
      s['water'] ||= s['waterMean']!;
      if (s['openLeft']! <= 0 && rng.chance(0.0005)) {
        s['openLeft'] = rng.int(2, 8);
        s['openTilt'] = rng.uniform(25, 85) * (rng.chance(0.5) ? 1 : -1);
      }
      if (s['rainLeft']! <= 0 && rng.chance(0.001)) s['rainLeft'] = rng.int(5, 30);
      const open = (control?.get(NB_CONDITIONS.coverOpen, ts) ?? (s['openLeft']! > 0 ? 1 : 0)) >= 1;
      if (s['openLeft']! > 0) s['openLeft']! -= 1;
      s['tilt'] = ou(rng, s['tilt']!, s['tiltRest']!, 0.3, HOUR_MS, dt);
      const tilt = open ? (s['openTilt'] || 45) + rng.normal() : s['tilt']!;
      // Rain fills the shaft in a few readings and it drains slowly afterwards.
      const target = s['rainLeft']! > 0 ? s['waterMean']! + 2500 : s['waterMean']!;
      if (s['rainLeft']! > 0) s['rainLeft']! -= 1;
      s['water'] = clamp(s['water']! + (target - s['water']!) * 0.3 + 20 * rng.normal(), 0, 10_000);
      const water = control?.get(NB_CONDITIONS.water, ts) ?? s['water']!;
      return { tilt, water_level: water, cover_open: open, water_alarm: water >= 2500, tilt_alarm: Math.abs(tilt) >= 15 };
    },
  },
  'nb-gas-detector': {
    alarmBits: ['alarm', 'high_alarm', 'sensor_fault'],
    init: (rng) => ({ base: rng.uniform(0, 1.5), lel: 0, leakLeft: 0, leakLen: 0, peak: 0, fault: 0, age: 0 }),
    step(rng, s, dt, ts, control) {
      s['age']! += 1;
      if (s['leakLeft']! <= 0 && rng.chance(0.001)) {
        s['leakLen'] = rng.int(3, 12);
        s['leakLeft'] = s['leakLen']!;
        s['peak'] = rng.chance(0.4) ? rng.uniform(GAS_ALARM, 70) : rng.uniform(3, 15);
      }
      let lel: number;
      if (s['leakLeft']! > 0) {
        const i = s['leakLen']! - s['leakLeft']! + 1;
        lel = s['base']! + s['peak']! * Math.sin((Math.PI * i) / (s['leakLen']! + 1));
        s['leakLeft']! -= 1;
      } else lel = ou(rng, s['lel']!, s['base']!, 0.3, 30 * MINUTE_MS, dt);
      s['lel'] = clamp(lel, 0, 100);
      const reading = clamp(control?.get(NB_CONDITIONS.gas, ts) ?? s['lel']!, 0, 100);
      if (rng.chance(0.0003)) s['fault'] = s['fault'] ? 0 : 1;
      const fault = s['fault'] === 1;
      // The catalytic sensor needs a warm-up after power-on: the first report says preheat.
      const state = fault ? 'fault' : s['age'] === 1 ? 'preheat' : reading >= GAS_ALARM ? 'alarm' : 'normal';
      return { gas_lel: reading, alarm: reading >= GAS_ALARM, high_alarm: reading >= GAS_HIGH, sensor_fault: fault, state };
    },
  },
};

const DRAIN_PER_UPLINK = 0.004; // % per uplink at good coverage
const SELF_DISCHARGE_PER_DAY = 2 / 365;
/** A battery a faulty board reports: beyond the 0–100 % a layout allows. */
const OUT_OF_RANGE_BATTERY = 163;

export function createNbDevice(id: string, profileName: NbProfile, options: NbOptions): NbDevice {
  const profile = loadNbProfile(profileName, options.profilesDir);
  const model = MODELS[profileName];
  const rng = createRng('citysense-sim-nbiot', options.seed, id);
  const fields = new Map<string, BinaryField>(profile.layout.fields.map((f) => [f.name, f]));
  const firstTs = options.startTs + (options.phaseMs ?? 0);
  const heartbeatMs = options.heartbeatMs ?? options.stepMs;
  const radio: Radio = { battery: rng.uniform(55, 100), rsrpMean: rng.uniform(-112, -84), rsrp: 0 };
  radio.rsrp = radio.rsrpMean;
  const state = model.init(rng);
  let seq = 0;
  let lastTs = firstTs;
  let lastSent: number | undefined;
  let lastBits = '';
  let stuck: Record<string, LayoutValue> | undefined;

  /** A numeric value as the layout will carry it: inside its range, on its grid. */
  const fit = (name: string, v: number): number => {
    const f = fields.get(name)!;
    return quantize(f, clamp(v, f.min ?? -Infinity, f.max ?? Infinity));
  };

  return {
    profile,
    step(control?: DeviceControl): NbFrame | undefined {
      const ts = firstTs + seq * options.stepMs;
      seq += 1;
      const dt = ts - lastTs;
      lastTs = ts;
      radio.rsrp = ou(rng, radio.rsrp, radio.rsrpMean, 4, 2 * HOUR_MS, dt);
      const rsrp = Math.round(radio.rsrp + 1.5 * rng.normal());
      const snr = Math.round((rsrp + 118) / 2.2 - 2 + 2.5 * rng.normal());
      radio.battery = Math.max(0, radio.battery - (SELF_DISCHARGE_PER_DAY * Math.max(0, dt)) / DAY_MS);
      const sensor = model.step(rng, state, dt, ts, control);

      const bits = model.alarmBits.map((b) => (sensor[b] === true ? '1' : '0')).join('');
      const alarmChanged = lastSent !== undefined && bits !== lastBits;
      const heartbeatDue = lastSent === undefined || ts - lastSent >= heartbeatMs;
      if (!alarmChanged && !heartbeatDue) return undefined;
      lastSent = ts;
      lastBits = bits;
      // Coverage enhancement repeats an uplink up to many times at the cell edge: weak RSRP costs battery.
      radio.battery = Math.max(0, radio.battery - DRAIN_PER_UPLINK * (1 + clamp((-95 - rsrp) / 5, 0, 8)));

      const values: Record<string, LayoutValue> = {};
      const common: Record<string, number> = { battery: Math.floor(radio.battery), rsrp, snr };
      for (const f of profile.layout.fields) {
        if (f.type === 'bits') {
          for (const b of f.bits ?? []) values[b.name] = sensor[b.name] === true;
          continue;
        }
        const v = f.name in sensor ? sensor[f.name] : common[f.name];
        if (typeof v === 'number') values[f.name] = fit(f.name, v);
        else if (v !== undefined) values[f.name] = v;
      }
      const faults = control?.take(ts) ?? new Set<FaultKind>();
      const sensorField = profile.layout.fields.find((f) => !['battery', 'rsrp', 'snr'].includes(f.name) && f.type !== 'bits' && f.enum === undefined);
      if (faults.has('stuck') && sensorField) {
        stuck ??= { [sensorField.name]: values[sensorField.name]! };
        values[sensorField.name] = stuck[sensorField.name]!;
      } else stuck = undefined;
      if (faults.has('out-of-range')) values['battery'] = OUT_OF_RANGE_BATTERY;
      const bytes = encodeBinary(profile.layout, values, { allowOutOfRange: faults.has('out-of-range') });
      return { ts, reason: alarmChanged ? 'alarm' : 'heartbeat', values, bytes, faults: [...faults] };
    },
  };
}
