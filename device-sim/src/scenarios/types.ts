// A scenario: a named, seeded, time-ordered script of steps against the running simulated devices.
// Step times are simulated milliseconds after the run's start ts, so a scenario covering hours runs in
// seconds with a large --sim-step-ms, and repeats exactly with the same seed.
import type { Rng } from '../rng.ts';
import type { DeviceControl, DeviceKind } from './control.ts';

/**
 * What the fire-panel simulator (GB 26875, device-sim/src/fire-panel/) offers a scenario. Each call
 * makes the panel report as a real one would (the hook returns once the panel has taken it, not once
 * the edge has it). `detectors`/`zones` list what the panel has, so a scenario can pick real ones.
 */
export interface FirePanelHooks {
  /** A smoke detector sees smoke (component state: fire alarm from that detector). */
  smoke(detector: string): void | Promise<void>;
  /** A zone goes into fire alarm (fire alarm system state). */
  fireAlarm(zone: string): void | Promise<void>;
  /** The sprinkler main's pressure falls to this (MPa), as when a head opens or a pipe breaks. */
  sprinklerPressureDrop(toMPa: number): void | Promise<void>;
  detectors?(): readonly string[];
  zones?(): readonly string[];
}

/**
 * What the OPC-UA elevator server (device-sim/src/transports/opcua-server.ts, elevator/) offers: its
 * `ElevatorServer.car(n)` handles already have these, so the adapter is
 * `{ triggerFault: (car, code) => server.car(car).triggerFault(code), setPassenger: (car, p) => server.car(car).setPassenger(p) }`.
 */
export interface ElevatorHooks {
  /** The controller reports fault `code` on car `car` (elevator/car.ts FAULT_CODE: 1 = entrapment). */
  triggerFault(car: number, code: number): void | Promise<void>;
  setPassenger(car: number, present: boolean): void | Promise<void>;
  /** Car numbers the server has. */
  cars?(): readonly number[];
}

/** Parts outside the MQTT/HJ 212 devices a scenario may drive. Plugged in through SimOptions.parts. */
export interface ScenarioParts {
  firePanel?: FirePanelHooks;
  /** NB-IoT smoke detectors reporting through an operator platform's push (CTWing): they see smoke too. */
  pushSmokeDetectors?: { smoke(obscuration: number): void | Promise<void> };
  elevators?: ElevatorHooks;
}

export interface World {
  /** Simulated time of the step being run, epoch ms. */
  readonly now: number;
  readonly startTs: number;
  /** Simulated time between two readings of a device. */
  readonly stepMs: number;
  /** The scenario's own seeded stream (independent of the devices' values). */
  readonly rng: Rng;
  readonly parts: ScenarioParts;
  /** The running devices a scenario can act on, optionally only those of one kind or profile. */
  devices(filter?: { kind?: DeviceKind | readonly DeviceKind[]; profile?: string; family?: string }): DeviceControl[];
  /** Record what the step did (shown in progress and kept in the report). */
  note(text: string): void;
}

export interface ScenarioStep {
  /** Simulated ms after the run's start ts. */
  at: number;
  /** What happens, in a few words (printed when the step runs). */
  name: string;
  do(world: World): void | Promise<void>;
}

export interface ScenarioContext {
  rng: Rng;
  stepMs: number;
  devices: readonly DeviceControl[];
  parts: ScenarioParts;
}

export interface Scenario {
  name: string;
  description: string;
  /**
   * Refuses to start, with a message saying what is missing ("needs a fire panel: ..."), when the run
   * lacks a part or a device the scenario drives. Undefined = fine.
   */
  check?(ctx: ScenarioContext): string | undefined;
  /** The steps, built once at the start of a run. */
  steps(ctx: ScenarioContext): ScenarioStep[];
  /** Simulated time the scenario needs to play out; a run without --count/--duration lasts this long. */
  durationMs?(ctx: ScenarioContext): number;
}

export interface ExecutedStep {
  at: number;
  name: string;
  /** Simulated time it ran at (epoch ms). */
  simTs: number;
  notes: string[];
  error?: string;
}

/** What a scenario did: for the summary and for tests. */
export interface ScenarioReport {
  name: string;
  executed: ExecutedStep[];
  /** Steps whose time the run never reached. */
  pending: Array<{ at: number; name: string }>;
  /** Faults actually sent, summed over devices, by kind. */
  faults: Record<string, number>;
}
