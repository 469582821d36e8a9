// Devices that misbehave the ways field devices do, to exercise the edge's refusals and quality flags:
// HJ 212 frames with a bad CRC, a stuck analyser, values beyond any range, a logger clock far in the
// future or the past, a JSON device sending broken JSON or NaN-ish values, an NB-IoT board reporting
// a battery of 163 %. Each fault goes to the first device that can show it; the report counts what was sent.
import type { FaultKind } from './control.ts';
import type { Scenario, ScenarioStep } from './types.ts';

/** Fault, how many consecutive messages carry it, and at which reading (in steps) it starts. */
export const FAULT_PLAN: ReadonlyArray<{ kind: FaultKind; count: number; atStep: number }> = [
  { kind: 'bad-crc', count: 2, atStep: 2 },
  { kind: 'stuck', count: 5, atStep: 4 },
  { kind: 'out-of-range', count: 1, atStep: 10 },
  { kind: 'clock-skew-future', count: 1, atStep: 12 },
  { kind: 'clock-skew-past', count: 1, atStep: 14 },
  { kind: 'malformed-json', count: 2, atStep: 16 },
  { kind: 'nan', count: 1, atStep: 18 },
];

export const faultySensors: Scenario = {
  name: 'faulty-sensors',
  description: 'bad CRCs, stuck and out-of-range values, clock skew, malformed JSON, NaN-ish values',
  check: (ctx) => {
    const missing = FAULT_PLAN.filter((f) => !ctx.devices.some((d) => d.supports(f.kind))).map((f) => f.kind);
    return missing.length === 0
      ? undefined
      : `needs devices that can show ${missing.join(', ')}: run an HJ 212 station (--profiles hj212-air-station) and a JSON device (--families environment)`;
  },
  durationMs: (ctx) => (Math.max(...FAULT_PLAN.map((f) => f.atStep + f.count)) + 2) * ctx.stepMs,
  steps: (ctx) =>
    FAULT_PLAN.flatMap(({ kind, count, atStep }): ScenarioStep[] => {
      // Every device that can show the fault shows it: the edge must cope with each input's version.
      const targets = ctx.devices.filter((d) => d.supports(kind));
      return [
        {
          at: atStep * ctx.stepMs,
          name: `${kind} × ${count}`,
          do: (world) => {
            for (const d of targets) d.inject(kind, world.now, count);
            world.note(`on ${targets.map((d) => d.id).join(', ')}`);
          },
        },
      ];
    }),
};
