// A parsed HJ 212 data frame → readings. A flagged value is kept and marked, never dropped
// (HJ 212-2017 data-flag table); a value that is not a number is refused alone, its neighbours go on.
import { HJ212_ERRORS, type Hj212ErrorCode } from './errors.ts';
import type { Hj212Frame } from './frame.ts';

export interface Hj212Reading {
  /** DataTime as epoch ms: the sampling instant for 2011, the interval's start for 2051/2061/2031. */
  ts: number;
  /** `pm25` (2011 Rtd) or `pm25.avg`, `pm25.min`, ... (interval data, lower-case suffix after a dot). */
  values: Record<string, number>;
  /** The worst data flag of the reading other than N (see FLAG_SEVERITY); absent when all are N. */
  quality?: string;
  /** Per-value data flag by metric base name (`pm25` → `T`), for a `pm25_flag` field downstream. */
  flags: Record<string, string>;
}

export interface Hj212ReadingRefusal {
  code: Hj212ErrorCode;
  message: string;
  /** The pollutant code whose values were refused (e.g. a34004); absent when the whole frame was. */
  item?: string;
}

export interface Hj212Readings {
  readings: Hj212Reading[];
  refusals: Hj212ReadingRefusal[];
}

export interface FrameToReadingsOptions {
  /** Pollutant code → our metric name, from the device's profile (a34004 → pm25). Unmapped codes keep their code. */
  metricNames?: Record<string, string>;
}

/** HJ 212-2017 command codes that carry measurements, and whether they are interval statistics. */
export const HJ212_DATA_CNS: Readonly<Record<string, { interval: boolean; what: string }>> = {
  '2011': { interval: false, what: 'real-time data' },
  '2051': { interval: true, what: 'minute data' },
  '2061': { interval: true, what: 'hourly data' },
  '2031': { interval: true, what: 'daily data' },
};

/**
 * Which flag wins when a reading's values carry different ones (first = worst). D/F/B mean the number
 * is not a measurement at all; C/M mean the instrument was being worked on, so the number describes a
 * calibration gas or a bench, not the air; T is a real measurement clipped at the instrument's range
 * (the truth is at least this); S is a real figure typed in by hand. Flags outside the standard's set
 * rank between B and C: we cannot tell what they mean, so they are treated as doubtful, not as fine.
 */
export const FLAG_SEVERITY: readonly string[] = ['D', 'F', 'B', 'C', 'M', 'T', 'S', 'N'];

// HJ 212-2017 suffixes whose values are numbers; Flag, EFlag, SampleTime, Info... are not.
const NUMERIC_SUFFIXES = new Set(['Rtd', 'Min', 'Avg', 'Max', 'Cou', 'ZsRtd', 'ZsMin', 'ZsAvg', 'ZsMax']);
// Plain decimal only: Number() would also take '', ' 1', '0x1f' and 'Infinity'.
const DECIMAL_RE = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;
const FLAG_RE = /^[A-Za-z]$/;

export function frameToReadings(frame: Hj212Frame, opts: FrameToReadingsOptions = {}): Hj212Readings {
  const kind = HJ212_DATA_CNS[frame.cn];
  if (!kind) {
    return { readings: [], refusals: [refusal('HJ212_UNSUPPORTED_CN', `CN=${frame.cn} from MN ${frame.mn}`)] };
  }
  if (frame.dataTimeMs === undefined) {
    return {
      readings: [],
      refusals: [refusal('HJ212_BAD_DATATIME', `CN=${frame.cn} (${kind.what}) from MN ${frame.mn} has no DataTime, so its values have no time`)],
    };
  }
  const refusals: Hj212ReadingRefusal[] = [];
  const values: Record<string, number> = {};
  const flags: Record<string, string> = {};
  let worst: string | undefined;

  for (const [code, suffixes] of Object.entries(frame.items)) {
    const base = nameOf(code, opts.metricNames);
    const numbers: Array<[string, number]> = [];
    let bad: string | undefined;
    for (const [suffix, text] of Object.entries(suffixes)) {
      if (!NUMERIC_SUFFIXES.has(suffix)) continue;
      const n = DECIMAL_RE.test(text) ? Number(text) : NaN;
      if (!Number.isFinite(n)) {
        bad = `${code}-${suffix}=${JSON.stringify(text.slice(0, 30))} is not a number`;
        break;
      }
      // 2011 Rtd is the metric itself; every other statistic gets its suffix (a34004.avg, a34004.zsrtd).
      numbers.push([!kind.interval && suffix === 'Rtd' ? base : `${base}.${suffix.toLowerCase()}`, n]);
    }
    const flag = suffixes['Flag'];
    if (bad === undefined && flag !== undefined && !FLAG_RE.test(flag)) {
      bad = `${code}-Flag=${JSON.stringify(flag.slice(0, 30))} is not a one-letter data flag`;
    }
    if (bad !== undefined) {
      // The whole item goes: one corrupt statistic makes its siblings from the same instrument suspect.
      refusals.push({ ...refusal('HJ212_BAD_VALUE', `${bad} (MN ${frame.mn}, CN=${frame.cn})`), item: code });
      continue;
    }
    if (numbers.length === 0) continue; // flag-only or SampleTime-only items carry no measurement
    for (const [name, n] of numbers) values[name] = n;
    if (flag !== undefined) {
      const f = flag.toUpperCase();
      flags[base] = f;
      if (worst === undefined || severity(f) < severity(worst)) worst = f;
    }
  }
  if (Object.keys(values).length === 0) return { readings: [], refusals };
  const reading: Hj212Reading = { ts: frame.dataTimeMs, values, flags };
  if (worst !== undefined && worst !== 'N') reading.quality = worst;
  return { readings: [reading], refusals };
}

function nameOf(code: string, names: Record<string, string> | undefined): string {
  // Own properties only: a code like "constructor" must not pick up Object.prototype's.
  return names && Object.hasOwn(names, code) && typeof names[code] === 'string' ? names[code] : code;
}

/** Lower is worse; an unknown flag sits between B and C. */
function severity(flag: string): number {
  const i = FLAG_SEVERITY.indexOf(flag);
  return i === -1 ? FLAG_SEVERITY.indexOf('B') + 0.5 : i;
}

function refusal(code: Hj212ErrorCode, detail: string): { code: Hj212ErrorCode; message: string } {
  return { code, message: `${HJ212_ERRORS[code]}: ${detail}` };
}
