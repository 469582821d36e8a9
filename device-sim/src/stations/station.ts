// A simulated HJ 212-2017 air-quality and noise station: what its analysers read each real-time interval,
// in the units stations send (PM in µg/m³, SO2/NO2/O3/CO in mg/m³, hPa-free kPa pressure, dB(A)), with
// HJ 212 data flags. The air itself comes from the environment family's generator, so a station and a
// JSON air-quality sensor in the same place tell the same story; a station adds what a full site
// measures besides: pressure and wind.
import { clamp, dailyCycle, HOUR_MS, MINUTE_MS, ou, round, winterness } from '../families/common.ts';
import { getFamily } from '../families/index.ts';
import type { DataFlag } from '../protocols/hj212.ts';
import { createRng, type Rng } from '../rng.ts';
import type { DeviceControl } from '../scenarios/control.ts';

export interface StationParam {
  name: string;
  unit: string;
  /** The analyser's measuring range: a value above it is sent as the range end with flag T. */
  min: number;
  max: number;
  decimals: number;
}

/** HJ 212 parameter codes (protocols.md) → what they are, in the station's units. */
export const STATION_PARAMS: Readonly<Record<string, StationParam>> = {
  a34004: { name: 'PM2.5', unit: 'µg/m³', min: 0, max: 1000, decimals: 1 },
  a34002: { name: 'PM10', unit: 'µg/m³', min: 0, max: 2000, decimals: 1 },
  a21026: { name: 'SO2', unit: 'mg/m³', min: 0, max: 2, decimals: 3 },
  a21004: { name: 'NO2', unit: 'mg/m³', min: 0, max: 2, decimals: 3 },
  a05024: { name: 'O3', unit: 'mg/m³', min: 0, max: 2, decimals: 3 },
  a21005: { name: 'CO', unit: 'mg/m³', min: 0, max: 150, decimals: 3 },
  a01001: { name: 'temperature', unit: '°C', min: -50, max: 70, decimals: 1 },
  a01002: { name: 'humidity', unit: '%', min: 0, max: 100, decimals: 1 },
  a01006: { name: 'pressure', unit: 'kPa', min: 50, max: 110, decimals: 3 },
  a01007: { name: 'wind speed', unit: 'm/s', min: 0, max: 75, decimals: 1 },
  a01008: { name: 'wind direction', unit: '°', min: 0, max: 359, decimals: 0 },
  LA: { name: 'noise', unit: 'dB(A)', min: 20, max: 140, decimals: 1 },
};
export const STATION_CODES: readonly string[] = Object.keys(STATION_PARAMS);

/** The analysers whose values share a data flag when one is being calibrated or serviced. */
const ANALYSERS: ReadonlyArray<readonly string[]> = [
  ['a34004'],
  ['a34002'],
  ['a21026'],
  ['a21004'],
  ['a05024'],
  ['a21005'],
  ['a01001', 'a01002', 'a01006', 'a01007', 'a01008'],
  ['LA'],
];
/** Per reading and analyser: chance that a calibration or maintenance window starts (mostly N otherwise). */
const SERVICE_CHANCE = 0.0004;

/** Conditions a scenario may set on a station (DeviceControl.set). */
export const STATION_CONDITIONS = {
  /** µg/m³ added to PM2.5 (PM10 gets 1.6 times as much): a pollution episode. */
  pm25Add: 'pm25Add',
} as const;

export interface StationReading {
  /** The sampling instant, epoch ms. */
  ts: number;
  /** Parameter code → value in the station's unit, rounded as sent. */
  values: Record<string, number>;
  flags: Record<string, DataFlag>;
}

export interface StationOptions {
  seed: number | string;
  startTs: number;
  stepMs: number;
  phaseMs?: number;
}

interface Service {
  flag: DataFlag;
  left: number;
}

export interface StationGenerator {
  /** The next real-time reading. `control` applies a scenario's conditions (faults are the framer's). */
  next(control?: DeviceControl): StationReading;
}

export function createStation(id: string, options: StationOptions): StationGenerator {
  const env = getFamily('environment');
  const rng = createRng('citysense-sim-readings', options.seed, id);
  const extra: Rng = createRng('citysense-sim-station', options.seed, id);
  const firstTs = options.startTs + (options.phaseMs ?? 0);
  let envState = env.init(rng, { id, family: 'environment' }, firstTs);
  // Zhengzhou is ~110 m above sea level: about 100 kPa, higher under the winter anticyclone.
  let pressureAnomaly = 0.4 * extra.normal();
  let windLog = Math.log(2) + 0.4 * extra.normal();
  let windDir = extra.uniform(0, 360);
  const service = new Map<number, Service>();
  let seq = 0;
  let lastTs = firstTs;

  return {
    next(control?: DeviceControl): StationReading {
      const ts = firstTs + seq * options.stepMs;
      seq += 1;
      const dt = ts - lastTs;
      lastTs = ts;
      const stepped = env.step(rng, envState, ts);
      envState = stepped.state;
      const m = stepped.metrics;

      pressureAnomaly = ou(extra, pressureAnomaly, 0, 0.6, 12 * HOUR_MS, dt);
      const pressure = 100.2 + 1.2 * winterness(ts) - 0.1 * dailyCycle(ts, 16) + pressureAnomaly;
      // Wind is lognormal around ~2 m/s, stronger in the afternoon when the boundary layer mixes.
      windLog = ou(extra, windLog, Math.log(2) + 0.25 * dailyCycle(ts, 15), 0.45, 2 * HOUR_MS, dt);
      windDir = (((windDir + ou(extra, 0, 0, 25, 30 * MINUTE_MS, dt)) % 360) + 360) % 360;

      const add = control?.get(STATION_CONDITIONS.pm25Add, ts) ?? 0;
      const values: Record<string, number> = {
        a34004: (m['pm25'] ?? 0) + add,
        a34002: (m['pm10'] ?? 0) + 1.6 * add,
        // The JSON family reports gases in µg/m³; stations send mg/m³.
        a21026: (m['so2'] ?? 0) / 1000,
        a21004: (m['no2'] ?? 0) / 1000,
        a05024: (m['o3'] ?? 0) / 1000,
        a21005: m['co'] ?? 0,
        a01001: m['temperature'] ?? 0,
        a01002: m['humidity'] ?? 0,
        a01006: pressure,
        a01007: Math.exp(windLog),
        a01008: windDir,
        LA: m['noise'] ?? 0,
      };
      const flags: Record<string, DataFlag> = {};
      for (const [code, p] of Object.entries(STATION_PARAMS)) {
        flags[code] = 'N';
        let v = values[code]!;
        if (v > p.max) {
          // Above the analyser's range: it reports the range end, flagged T (HJ 212-2017 data flags).
          v = p.max;
          flags[code] = 'T';
        }
        values[code] = round(clamp(v, p.min, p.max), p.decimals);
      }
      ANALYSERS.forEach((codes, i) => {
        let s = service.get(i);
        if (!s && extra.chance(SERVICE_CHANCE)) {
          s = { flag: extra.chance(0.6) ? 'C' : 'M', left: extra.int(3, 12) };
          service.set(i, s);
        }
        if (!s) return;
        for (const c of codes) flags[c] = s.flag;
        s.left -= 1;
        if (s.left <= 0) service.delete(i);
      });
      return { ts, values, flags };
    },
  };
}

/** Min/avg/max of the real-time readings of one interval (a minute or an hour). */
export interface IntervalStats {
  /** The interval's start (DataTime of 2051/2061), epoch ms. */
  startTs: number;
  values: Record<string, { min: number; avg: number; max: number }>;
  flags: Record<string, DataFlag>;
}

/**
 * Collects real-time readings into fixed intervals (aligned to the epoch, which is aligned to China
 * minutes and hours as UTC+8 is a whole number of hours) and hands back each interval when a reading
 * of the next one arrives.
 */
export class IntervalAggregator {
  private readonly lengthMs: number;
  private start: number | undefined;
  private readonly acc = new Map<string, { min: number; max: number; sum: number; n: number; decimals: number }>();
  private readonly flags = new Map<string, DataFlag>();

  constructor(lengthMs: number) {
    this.lengthMs = lengthMs;
  }

  add(reading: StationReading): IntervalStats | undefined {
    const start = Math.floor(reading.ts / this.lengthMs) * this.lengthMs;
    let done: IntervalStats | undefined;
    if (this.start !== undefined && start !== this.start) done = this.flush();
    this.start = start;
    for (const [code, v] of Object.entries(reading.values)) {
      const a = this.acc.get(code) ?? { min: v, max: v, sum: 0, n: 0, decimals: STATION_PARAMS[code]?.decimals ?? 2 };
      a.min = Math.min(a.min, v);
      a.max = Math.max(a.max, v);
      a.sum += v;
      a.n += 1;
      this.acc.set(code, a);
      const f = reading.flags[code] ?? 'N';
      // The interval keeps the first flag other than N: a statistic over a calibration is not clean air.
      if (!this.flags.has(code) || this.flags.get(code) === 'N') this.flags.set(code, f);
    }
    return done;
  }

  private flush(): IntervalStats {
    const values: IntervalStats['values'] = {};
    for (const [code, a] of this.acc) values[code] = { min: a.min, avg: round(a.sum / a.n, a.decimals), max: a.max };
    const out: IntervalStats = { startTs: this.start!, values, flags: Object.fromEntries(this.flags) };
    this.acc.clear();
    this.flags.clear();
    return out;
  }
}
