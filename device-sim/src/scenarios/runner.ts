// Plays a scenario against a run: steps fire in time order as soon as any device's simulated clock
// reaches them (before that device's reading is made), so effects keyed by simulated time
// (DeviceControl) are the same whatever the wall-clock interleaving of devices.
import { createRng } from '../rng.ts';
import { FAULT_KINDS, type DeviceControl, type DeviceKind } from './control.ts';
import type { ExecutedStep, Scenario, ScenarioContext, ScenarioParts, ScenarioReport, ScenarioStep, World } from './types.ts';

export class ScenarioError extends Error {}

export interface ScenarioRunOptions {
  seed: number | string;
  startTs: number;
  stepMs: number;
  devices: readonly DeviceControl[];
  parts?: ScenarioParts;
  /** Where step lines go (progress). */
  log?: (line: string) => void;
}

function formatOffset(ms: number): string {
  const s = Math.round(ms / 1000);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  return h > 0 ? `+${h}h${String(m).padStart(2, '0')}m` : m > 0 ? `+${m}m${String(sec).padStart(2, '0')}s` : `+${sec}s`;
}

export class ScenarioRun {
  readonly scenario: Scenario;
  readonly executed: ExecutedStep[] = [];
  private readonly steps: ScenarioStep[];
  private next = 0;
  private readonly options: ScenarioRunOptions;
  private readonly ctx: ScenarioContext;
  private readonly inflight: Array<Promise<void>> = [];
  private readonly log: (line: string) => void;

  /** Throws ScenarioError when the scenario's check refuses this run. */
  constructor(scenario: Scenario, options: ScenarioRunOptions) {
    this.scenario = scenario;
    this.options = options;
    this.log = options.log ?? (() => undefined);
    this.ctx = {
      rng: createRng('citysense-sim-scenario', options.seed, scenario.name),
      stepMs: options.stepMs,
      devices: options.devices,
      parts: options.parts ?? {},
    };
    const refusal = scenario.check?.(this.ctx);
    if (refusal !== undefined) throw new ScenarioError(`scenario "${scenario.name}" ${refusal}`);
    // Stable sort: steps at the same time keep their written order.
    this.steps = scenario.steps(this.ctx).map((s, i) => ({ s, i })).sort((a, b) => a.s.at - b.s.at || a.i - b.i).map((x) => x.s);
  }

  /** Simulated time the scenario needs (0 when it does not say). */
  get durationMs(): number {
    return this.scenario.durationMs?.(this.ctx) ?? (this.steps.at(-1)?.at ?? 0);
  }

  /** Runs every step due at or before simulated time `ts`. Called by a device before its reading at ts. */
  advance(ts: number): void {
    while (this.next < this.steps.length && this.options.startTs + this.steps[this.next]!.at <= ts) {
      const step = this.steps[this.next++]!;
      this.fire(step);
    }
  }

  private fire(step: ScenarioStep): void {
    const simTs = this.options.startTs + step.at;
    const record: ExecutedStep = { at: step.at, name: step.name, simTs, notes: [] };
    this.executed.push(record);
    const prefix = `[scenario ${this.scenario.name}] ${formatOffset(step.at)}`;
    this.log(`${prefix} ${step.name}`);
    const world: World = {
      now: simTs,
      startTs: this.options.startTs,
      stepMs: this.options.stepMs,
      rng: this.ctx.rng,
      parts: this.ctx.parts,
      devices: (filter) =>
        this.options.devices.filter((d) => {
          if (filter?.kind !== undefined) {
            const kinds: readonly DeviceKind[] = typeof filter.kind === 'string' ? [filter.kind] : filter.kind;
            if (!kinds.includes(d.kind)) return false;
          }
          if (filter?.profile !== undefined && d.profile !== filter.profile) return false;
          if (filter?.family !== undefined && d.family !== filter.family) return false;
          return true;
        }),
      note: (text) => {
        record.notes.push(text);
        this.log(`${prefix}   ${text}`);
      },
    };
    const fail = (err: unknown): void => {
      record.error = err instanceof Error ? err.message : String(err);
      this.log(`${prefix} step failed: ${record.error}`);
    };
    try {
      const r = step.do(world);
      if (r instanceof Promise) this.inflight.push(r.catch(fail));
    } catch (err) {
      fail(err);
    }
  }

  /** Waits for steps still running (hooks into other simulators are asynchronous). */
  async settle(): Promise<void> {
    await Promise.all(this.inflight);
  }

  report(): ScenarioReport {
    const faults: Record<string, number> = Object.fromEntries(FAULT_KINDS.map((k) => [k, 0]));
    for (const d of this.options.devices) for (const k of FAULT_KINDS) faults[k]! += d.emitted[k];
    return {
      name: this.scenario.name,
      executed: this.executed.map((e) => ({ ...e, notes: [...e.notes] })),
      pending: this.steps.slice(this.next).map((s) => ({ at: s.at, name: s.name })),
      faults,
    };
  }
}
