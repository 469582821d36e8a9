// Turns a station's readings into the HJ 212 frames its data logger sends: a real-time frame (CN 2011)
// for every reading, a minute frame (2051) when a simulated minute is complete and an hour frame (2061)
// when an hour is. Scenario faults are applied here, to the frames, as a broken logger would.
import { HOUR_MS, MINUTE_MS } from '../families/common.ts';
import {
  buildDataFrame,
  CN_HOUR,
  CN_MINUTE,
  CN_REALTIME,
  type BuiltFrame,
  type DataFlag,
  type ParamValues,
} from '../protocols/hj212.ts';
import { CLOCK_SKEW_MS, type DeviceControl, type FaultKind } from '../scenarios/control.ts';
import { IntervalAggregator, type IntervalStats, type StationReading } from './station.ts';

export interface StationIdentity {
  mn: string;
  password: string;
}

export interface StationFrame extends BuiltFrame {
  /** The reading's (simulated) time. */
  ts: number;
  /** Real-time values as sent (2011 only; empty for interval data), for the run's sums. */
  values: Record<string, number>;
  /** Faults this frame carries. */
  faults: FaultKind[];
}

export interface FramerOptions {
  /** Send minute data (2051); default true. */
  minuteData?: boolean;
  /** Send hour data (2061); default true. */
  hourData?: boolean;
  /** Ask for 9014 answers (Flag=5); default true. */
  ackWanted?: boolean;
}

/** A value a broken analyser sends far beyond any instrument's range (PM2.5 profile max is 1000). */
const OUT_OF_RANGE_PM25 = 5432.1;

export class StationFramer {
  private readonly id: StationIdentity;
  private readonly options: Required<FramerOptions>;
  private readonly minutes = new IntervalAggregator(MINUTE_MS);
  private readonly hours = new IntervalAggregator(HOUR_MS);
  private stuck: number | undefined;

  constructor(identity: StationIdentity, options: FramerOptions = {}) {
    this.id = identity;
    this.options = { minuteData: true, hourData: true, ackWanted: true, ...options };
  }

  frames(reading: StationReading, control?: DeviceControl): StationFrame[] {
    const faults = control?.take(reading.ts) ?? new Set<FaultKind>();
    const values = { ...reading.values };
    const flags: Record<string, DataFlag> = { ...reading.flags };
    const text: Record<string, string> = {};
    // A stuck PM2.5 analyser repeats its last good value; the value in the frame is the stuck one.
    if (faults.has('stuck')) {
      this.stuck ??= values['a34004'];
      values['a34004'] = this.stuck!;
    } else this.stuck = undefined;
    if (faults.has('out-of-range')) {
      values['a34004'] = OUT_OF_RANGE_PM25;
      flags['a34004'] = 'N';
    }
    if (faults.has('nan')) text['a21004'] = 'NaN';
    let dataTimeMs = reading.ts;
    if (faults.has('clock-skew-future')) dataTimeMs += CLOCK_SKEW_MS;
    if (faults.has('clock-skew-past')) dataTimeMs -= CLOCK_SKEW_MS;

    const params: Record<string, ParamValues> = {};
    for (const [code, v] of Object.entries(values)) {
      params[code] = { rtd: v, flag: flags[code] ?? 'N', ...(text[code] !== undefined ? { text: text[code] } : {}) };
    }
    const sentValues = Object.fromEntries(Object.entries(values).filter(([code]) => text[code] === undefined));
    const out: StationFrame[] = [
      {
        ...buildDataFrame({
          cn: CN_REALTIME,
          sentMs: reading.ts,
          dataTimeMs,
          mn: this.id.mn,
          password: this.id.password,
          ackWanted: this.options.ackWanted,
          params,
          badCrc: faults.has('bad-crc'),
        }),
        ts: reading.ts,
        values: sentValues,
        faults: [...faults],
      },
    ];
    // Interval statistics are over the clean readings: the faults above are the logger's line, not the air.
    const minute = this.minutes.add(reading);
    if (minute && this.options.minuteData) out.push(this.intervalFrame(CN_MINUTE, minute, reading.ts + 1));
    const hour = this.hours.add(reading);
    if (hour && this.options.hourData) out.push(this.intervalFrame(CN_HOUR, hour, reading.ts + 2));
    return out;
  }

  private intervalFrame(cn: typeof CN_MINUTE | typeof CN_HOUR, stats: IntervalStats, sentMs: number): StationFrame {
    const params: Record<string, ParamValues> = {};
    for (const [code, v] of Object.entries(stats.values)) params[code] = { ...v, flag: stats.flags[code] ?? 'N' };
    return {
      ...buildDataFrame({
        cn,
        // QN differs from the real-time frame's by a millisecond or two, so answers cannot be confused.
        sentMs,
        dataTimeMs: stats.startTs,
        mn: this.id.mn,
        password: this.id.password,
        ackWanted: this.options.ackWanted,
        params,
      }),
      ts: stats.startTs,
      values: {},
      faults: [],
    };
  }
}

/** A 24-hex-digit MN (HJ 212-2017 EPC-96 form) drawn from the seed and the device id. */
export function generateMn(rng: { int(lo: number, hi: number): number }): string {
  let mn = '';
  for (let i = 0; i < 24; i++) mn += rng.int(0, 15).toString(16).toUpperCase();
  return mn;
}
