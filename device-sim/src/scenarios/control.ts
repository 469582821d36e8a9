// What a scenario can do to one running simulated device: set conditions (PM added by an episode, a
// forced alarm) and order faults (bad CRC, stuck value...). Everything is keyed by *simulated* time: a
// condition set at t applies to the device's readings with ts ≥ t, whichever device's clock reached t
// first in wall time, so a seeded run with a scenario repeats exactly.

export const FAULT_KINDS = [
  'bad-crc',
  'stuck',
  'out-of-range',
  'clock-skew-future',
  'clock-skew-past',
  'malformed-json',
  'nan',
] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

/** How the simulated device reaches the edge, which decides the faults it can show. */
export type DeviceKind = 'json' | 'hj212-tcp' | 'hj212-dtu' | 'nbiot';

export const FAULTS_BY_KIND: Readonly<Record<DeviceKind, readonly FaultKind[]>> = {
  json: ['stuck', 'out-of-range', 'clock-skew-future', 'clock-skew-past', 'malformed-json', 'nan'],
  'hj212-tcp': ['bad-crc', 'stuck', 'out-of-range', 'clock-skew-future', 'clock-skew-past', 'nan'],
  'hj212-dtu': ['bad-crc', 'stuck', 'out-of-range', 'clock-skew-future', 'clock-skew-past', 'nan'],
  nbiot: ['stuck', 'out-of-range'],
};

/** How far a skewed clock is off: a logger whose RTC battery died, or one set a year ahead. */
export const CLOCK_SKEW_MS = 400 * 24 * 3_600_000;

interface FaultOrder {
  kind: FaultKind;
  fromTs: number;
  left: number;
}

export class DeviceControl {
  readonly id: string;
  readonly kind: DeviceKind;
  /** The device's profile (hj212-air-station, nb-smoke-detector...) or 'generic-json'. */
  readonly profile: string;
  readonly family: string;
  /** Faults actually sent, by kind: what a test or the summary counts. */
  readonly emitted: Record<FaultKind, number> = Object.fromEntries(FAULT_KINDS.map((k) => [k, 0])) as Record<FaultKind, number>;
  private readonly conditions = new Map<string, Array<{ fromTs: number; value: number }>>();
  private readonly faults: FaultOrder[] = [];

  constructor(id: string, kind: DeviceKind, profile: string, family: string) {
    this.id = id;
    this.kind = kind;
    this.profile = profile;
    this.family = family;
  }

  supports(kind: FaultKind): boolean {
    return FAULTS_BY_KIND[this.kind].includes(kind);
  }

  /** Sets condition `name` to `value` for readings from `fromTs` on (until set again). */
  set(name: string, value: number, fromTs: number): void {
    const list = this.conditions.get(name) ?? [];
    list.push({ fromTs, value });
    list.sort((a, b) => a.fromTs - b.fromTs);
    this.conditions.set(name, list);
  }

  /** The condition's value for a reading at `ts` (undefined when never set before ts). */
  get(name: string, ts: number): number | undefined {
    const list = this.conditions.get(name);
    if (!list) return undefined;
    let v: number | undefined;
    for (const c of list) if (c.fromTs <= ts) v = c.value;
    return v;
  }

  /** The next `count` messages from `fromTs` on carry this fault. */
  inject(kind: FaultKind, fromTs: number, count = 1): void {
    if (!this.supports(kind)) throw new Error(`${this.id} (${this.kind}) cannot show a ${kind} fault`);
    this.faults.push({ kind, fromTs, left: count });
  }

  /**
   * The faults that apply to the device's message at `ts`, each used up by one. The driver calls this
   * once per message and reports back with `sent` when it actually sent the faulty message.
   */
  take(ts: number): Set<FaultKind> {
    const out = new Set<FaultKind>();
    for (const f of this.faults) {
      if (f.left > 0 && f.fromTs <= ts && !out.has(f.kind)) {
        f.left -= 1;
        out.add(f.kind);
      }
    }
    return out;
  }

  sent(kinds: Iterable<FaultKind>): void {
    for (const k of kinds) this.emitted[k] += 1;
  }
}
