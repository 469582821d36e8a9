import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { families, familyNames, generateMessages, type SimMessage } from '../src/index.ts';
import { createRng } from '../src/rng.ts';

const MINUTE = 60_000;
const NOV_2026 = Date.UTC(2026, 10, 23);

function hasAtMostDecimals(value: number, decimals: number): boolean {
  return Number(value.toFixed(decimals)) === value;
}

/** Every metric present, a finite number in its plausible range, reported at the instrument's precision. */
function checkAgainstSpec(family: string, messages: readonly SimMessage[]): void {
  const spec = families[family]!.metrics;
  for (const m of messages) {
    expect(Object.keys(m.metrics).sort()).toEqual(Object.keys(spec).sort());
    for (const [name, value] of Object.entries(m.metrics)) {
      const s = spec[name]!;
      expect(Number.isFinite(value), `${family}.${name} finite`).toBe(true);
      expect(value, `${family}.${name} ≥ ${s.min}`).toBeGreaterThanOrEqual(s.min);
      expect(value, `${family}.${name} ≤ ${s.max}`).toBeLessThanOrEqual(s.max);
      expect(hasAtMostDecimals(value, s.decimals), `${family}.${name}=${value} has ≤ ${s.decimals} decimals`).toBe(true);
    }
  }
}

describe('rng', () => {
  it('is repeatable per seed and differs between seeds', () => {
    const a = createRng(1, 'x');
    const b = createRng(1, 'x');
    const c = createRng(2, 'x');
    const seqA = Array.from({ length: 20 }, () => a.next());
    expect(Array.from({ length: 20 }, () => b.next())).toEqual(seqA);
    expect(Array.from({ length: 20 }, () => c.next())).not.toEqual(seqA);
    for (const v of seqA) expect(v >= 0 && v < 1).toBe(true);
  });

  it('gives normals with about zero mean and unit spread', () => {
    const rng = createRng('normal-check');
    const xs = Array.from({ length: 20_000 }, () => rng.normal());
    const mean = xs.reduce((s, x) => s + x, 0) / xs.length;
    const sd = Math.sqrt(xs.reduce((s, x) => s + (x - mean) ** 2, 0) / xs.length);
    expect(Math.abs(mean)).toBeLessThan(0.05);
    expect(Math.abs(sd - 1)).toBeLessThan(0.05);
  });
});

describe('family generators', () => {
  it('every family stays in range at instrument precision, for any seed and start time', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 2 ** 31 - 1 }),
        fc.integer({ min: Date.UTC(2024, 0, 1), max: Date.UTC(2030, 0, 1) }),
        fc.constantFrom(1_000, 10 * MINUTE),
        (seed, startTs, stepMs) => {
          for (const family of familyNames) {
            // 300 readings: five minutes at 1 s, or about two days at 10 min (through the daily cycle).
            const messages = generateMessages({ id: `dev-${family}`, family }, { seed, startTs, stepMs }, 300);
            checkAgainstSpec(family, messages);
          }
        },
      ),
      { numRuns: 25 },
    );
  });

  it('environment: PM10 is never below PM2.5, and levels look like a Chinese city', () => {
    const messages = generateMessages(
      { id: 'env', family: 'environment' },
      { seed: 11, startTs: NOV_2026, stepMs: 10 * MINUTE },
      6 * 24 * 30,
    );
    for (const { metrics } of messages) expect(metrics.pm10!).toBeGreaterThanOrEqual(metrics.pm25!);
    const mean = (name: string): number => messages.reduce((s, m) => s + m.metrics[name]!, 0) / messages.length;
    // Late-November Zhengzhou: PM2.5 tens of µg/m³, CO around 1 mg/m³, a few degrees to mid-teens.
    expect(mean('pm25')).toBeGreaterThan(15);
    expect(mean('pm25')).toBeLessThan(150);
    expect(mean('co')).toBeGreaterThan(0.3);
    expect(mean('co')).toBeLessThan(3);
    expect(mean('temperature')).toBeGreaterThan(-5);
    expect(mean('temperature')).toBeLessThan(20);
    expect(mean('noise')).toBeGreaterThan(40);
    expect(mean('noise')).toBeLessThan(80);
  });

  it('environment: afternoons are warmer than nights (daily cycle in China time)', () => {
    const messages = generateMessages(
      { id: 'env-cycle', family: 'environment' },
      { seed: 5, startTs: NOV_2026, stepMs: 30 * MINUTE },
      48 * 20,
    );
    const hourOf = (ts: number): number => new Date(ts + 8 * 3_600_000).getUTCHours();
    const avg = (hours: number[]): number => {
      const sel = messages.filter((m) => hours.includes(hourOf(m.ts)));
      return sel.reduce((s, m) => s + m.metrics.temperature!, 0) / sel.length;
    };
    expect(avg([14, 15, 16])).toBeGreaterThan(avg([3, 4, 5]) + 4);
  });

  it('environment: particulates and gases move together (shared pollution factor)', () => {
    const messages = generateMessages(
      { id: 'env-corr', family: 'environment' },
      { seed: 3, startTs: NOV_2026, stepMs: 30 * MINUTE },
      2000,
    );
    const xs = messages.map((m) => Math.log(m.metrics.pm25!));
    const ys = messages.map((m) => Math.log(m.metrics.co!));
    const mx = xs.reduce((s, x) => s + x, 0) / xs.length;
    const my = ys.reduce((s, y) => s + y, 0) / ys.length;
    let sxy = 0;
    let sxx = 0;
    let syy = 0;
    xs.forEach((x, i) => {
      const y = ys[i]!;
      sxy += (x - mx) * (y - my);
      sxx += (x - mx) ** 2;
      syy += (y - my) ** 2;
    });
    expect(sxy / Math.sqrt(sxx * syy)).toBeGreaterThan(0.5);
  });

  it('fire: smoke near zero most of the time, sprinkler pressure around 0.3–0.5 MPa, alarms as events', () => {
    const messages = generateMessages({ id: 'fire', family: 'fire' }, { seed: 9, startTs: NOV_2026, stepMs: MINUTE }, 20_000);
    const quiet = messages.filter((m) => m.metrics.smoke_obscuration! < 0.3).length;
    expect(quiet / messages.length).toBeGreaterThan(0.95);
    for (const m of messages) {
      expect(m.metrics.sprinkler_pressure!).toBeGreaterThan(0.25);
      expect(m.metrics.sprinkler_pressure!).toBeLessThan(0.55);
    }
    const alarms = messages.flatMap((m) => m.events.filter((e) => e.type === 'fire_alarm').map((e) => ({ m, e })));
    expect(alarms.length).toBeGreaterThan(0);
    for (const { m, e } of alarms) {
      expect(m.metrics.smoke_obscuration!).toBeGreaterThanOrEqual(3);
      expect(typeof e.attrs.zone).toBe('string');
    }
  });

  it('nbiot: battery only drains, radio figures in NB-IoT ranges', () => {
    const messages = generateMessages({ id: 'nb', family: 'nbiot' }, { seed: 4, startTs: NOV_2026, stepMs: 4 * 3_600_000 }, 2000);
    for (let i = 1; i < messages.length; i++) {
      expect(messages[i]!.metrics.battery_pct!).toBeLessThanOrEqual(messages[i - 1]!.metrics.battery_pct!);
    }
    expect(messages.at(-1)!.metrics.battery_pct!).toBeLessThan(messages[0]!.metrics.battery_pct!);
    for (const { metrics } of messages) {
      expect(metrics.rsrp!).toBeGreaterThanOrEqual(-120);
      expect(metrics.rsrp!).toBeLessThanOrEqual(-70);
      expect(Number.isInteger(metrics.battery_pct!)).toBe(true);
    }
  });

  it('a device stream depends on seed, id and start time only', () => {
    const opts = { seed: 42, startTs: NOV_2026, stepMs: 1000 };
    const a = generateMessages({ id: 'sim-fire-0001', family: 'fire' }, opts, 50);
    expect(generateMessages({ id: 'sim-fire-0001', family: 'fire' }, opts, 50)).toEqual(a);
    expect(generateMessages({ id: 'sim-fire-0001', family: 'fire' }, { ...opts, seed: 43 }, 50)).not.toEqual(a);
    expect(generateMessages({ id: 'sim-fire-0002', family: 'fire' }, opts, 50)).not.toEqual(a);
    expect(a.map((m) => m.ts)).toEqual(a.map((_, i) => NOV_2026 + i * 1000));
  });
});
