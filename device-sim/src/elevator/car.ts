// A simulated elevator car: the state an elevator controller (or a GB/T 24476 IoT terminal) reports,
// moved by a seeded simulation so that runs repeat. Pure: no timers, no I/O; the OPC-UA server in
// transports/opcua-server.ts calls tick() and publishes what changed.
import { createRng, type Rng } from '../rng.ts';

/** Service modes as listed for GB/T 24476 items (/work/shared/protocols.md, "Elevators"). */
export const SERVICE_MODE = {
  outOfService: 0,
  normal: 1,
  inspection: 2,
  fireReturn: 3,
  firefighter: 4,
  emergencyPower: 5,
  earthquake: 6,
  unknown: 7,
} as const;
export type ServiceMode = (typeof SERVICE_MODE)[keyof typeof SERVICE_MODE];

/**
 * The simulator's fault codes. Real controllers number faults differently from city to city, so the
 * edge never hard-codes these: the device profile maps FaultCode values to events. 0 is "no fault".
 */
export const FAULT_CODE = {
  none: 0,
  entrapment: 1,
  doorOpenWhileMoving: 2,
  overspeed: 3,
  overrunTop: 4,
  overrunBottom: 5,
  powerLoss: 6,
  safetyCircuitOpen: 7,
} as const;
export type FaultCode = (typeof FAULT_CODE)[keyof typeof FAULT_CODE];

export const DIRECTION = { none: 0, up: 1, down: 2 } as const;
export type Direction = (typeof DIRECTION)[keyof typeof DIRECTION];

/** What the controller exposes for one car; the names are the OPC-UA variable names. */
export interface CarState {
  Floor: number;
  Direction: Direction;
  Running: boolean;
  DoorOpen: boolean;
  DoorZone: boolean;
  Load: number;
  ServiceMode: ServiceMode;
  FaultCode: number;
  PassengerPresent: boolean;
}
export type CarVariable = keyof CarState;
export const CAR_VARIABLES: readonly CarVariable[] = [
  'Floor',
  'Direction',
  'Running',
  'DoorOpen',
  'DoorZone',
  'Load',
  'ServiceMode',
  'FaultCode',
  'PassengerPresent',
];

export interface CarOptions {
  /** 1-based car number (Car1..CarN). */
  index: number;
  /** Floors served: 1..floors. */
  floors: number;
  seed: string | number;
  /** Travel speed in floors per second (≈ 0.5 for 1.5 m/s and 3 m floors). */
  floorsPerSecond?: number;
  /** How long doors stay open at a stop. */
  doorDwellMs?: number;
  /** Mean idle time before the next call. */
  meanIdleMs?: number;
  /** Rated load in kg. */
  ratedLoadKg?: number;
}

type Phase = 'idle' | 'doorsOpen' | 'moving' | 'halted';

// The car counts as in the unlocking zone within ±this many floors of a landing (≈ ±15 cm of 3 m).
const DOOR_ZONE = 0.05;
const FIRE_RECALL_FLOOR = 1;
const AVERAGE_PASSENGER_KG = 70;

export class ElevatorCar {
  readonly index: number;
  readonly floors: number;
  private readonly rng: Rng;
  private readonly speed: number;
  private readonly dwellMs: number;
  private readonly meanIdleMs: number;
  private readonly ratedLoadKg: number;
  /** Position in floors (1 = lowest landing); fractional between landings. */
  private position = 1;
  private target = 1;
  private phase: Phase = 'idle';
  private phaseLeftMs = 0;
  private passengers = 0;
  private readonly s: CarState;

  constructor(o: CarOptions) {
    this.index = o.index;
    this.floors = Math.max(2, Math.trunc(o.floors));
    this.rng = createRng(o.seed, `car${o.index}`, 'elevator');
    this.speed = o.floorsPerSecond ?? 0.5;
    this.dwellMs = o.doorDwellMs ?? 3000;
    this.meanIdleMs = o.meanIdleMs ?? 4000;
    this.ratedLoadKg = o.ratedLoadKg ?? 1000;
    this.position = this.rng.int(1, this.floors);
    this.s = {
      Floor: this.position,
      Direction: DIRECTION.none,
      Running: false,
      DoorOpen: false,
      DoorZone: true,
      Load: 0,
      ServiceMode: SERVICE_MODE.normal,
      FaultCode: FAULT_CODE.none,
      PassengerPresent: false,
    };
    this.phaseLeftMs = this.idleTime();
  }

  state(): Readonly<CarState> {
    return { ...this.s };
  }

  /** Advance the simulation by dtMs of simulated time. */
  tick(dtMs: number): void {
    if (this.phase === 'halted') return;
    if (this.phase === 'moving') return this.move(dtMs);
    this.phaseLeftMs -= dtMs;
    if (this.phaseLeftMs > 0) return;
    if (this.phase === 'doorsOpen') {
      this.s.DoorOpen = false;
      this.phase = 'idle';
      this.phaseLeftMs = this.idleTime();
      return;
    }
    // idle → next trip, but only in normal service: inspection, fire service, out of service and the
    // others keep the car where the mode put it.
    if (this.s.ServiceMode !== SERVICE_MODE.normal) return;
    let next = this.rng.int(1, this.floors - 1);
    if (next >= this.s.Floor) next++;
    this.startTrip(next);
  }

  /** Force a fault scenario: the state a controller would report when it happens. */
  triggerFault(code: number): void {
    this.s.FaultCode = code;
    switch (code) {
      case FAULT_CODE.entrapment: {
        // Stopped between two landings, doors shut, somebody inside.
        const base = Math.min(Math.floor(this.position), this.floors - 1);
        this.position = base + 0.5;
        this.halt();
        this.s.DoorOpen = false;
        this.s.DoorZone = false;
        if (this.passengers === 0) this.passengers = 1;
        this.syncLoad();
        break;
      }
      case FAULT_CODE.doorOpenWhileMoving:
        this.s.DoorOpen = true;
        this.s.Running = true;
        break;
      case FAULT_CODE.overspeed:
      case FAULT_CODE.safetyCircuitOpen:
      case FAULT_CODE.powerLoss:
        // The safety chain stops the car wherever it is.
        this.halt();
        break;
      case FAULT_CODE.overrunTop:
        this.position = this.floors + 0.3;
        this.halt();
        break;
      case FAULT_CODE.overrunBottom:
        this.position = 0.7;
        this.halt();
        break;
      default:
        break;
    }
  }

  /** The fault is gone: the car levels to the nearest landing, opens its doors and resumes. */
  clearFault(): void {
    this.s.FaultCode = FAULT_CODE.none;
    this.position = Math.min(this.floors, Math.max(1, Math.round(this.position)));
    this.s.Floor = this.position;
    this.s.DoorZone = true;
    this.s.Running = false;
    this.s.Direction = DIRECTION.none;
    this.openDoors();
  }

  setServiceMode(mode: number): void {
    this.s.ServiceMode = mode as ServiceMode;
    if (this.s.FaultCode !== FAULT_CODE.none) return;
    if (mode === SERVICE_MODE.fireReturn) {
      // Fire recall: straight to the recall floor, doors open there, car parked.
      if (Math.round(this.position) === FIRE_RECALL_FLOOR && !this.s.Running) this.openDoors();
      else this.startTrip(FIRE_RECALL_FLOOR);
    } else if (this.phase === 'halted') {
      this.phase = 'idle';
      this.phaseLeftMs = this.idleTime();
    }
  }

  setPassenger(present: boolean): void {
    this.passengers = present ? Math.max(1, this.passengers) : 0;
    this.syncLoad();
  }

  private startTrip(floor: number): void {
    this.target = floor;
    this.s.DoorOpen = false;
    this.phase = 'moving';
    this.s.Running = true;
    this.s.Direction = floor > this.position ? DIRECTION.up : DIRECTION.down;
  }

  private move(dtMs: number): void {
    const step = (this.speed * dtMs) / 1000;
    const left = this.target - this.position;
    if (Math.abs(left) <= step) {
      this.position = this.target;
      this.s.Floor = this.target;
      this.s.DoorZone = true;
      this.s.Running = false;
      this.s.Direction = DIRECTION.none;
      this.openDoors();
      return;
    }
    this.position += Math.sign(left) * step;
    const nearest = Math.round(this.position);
    // The position indicator changes when the car passes the middle between landings.
    this.s.Floor = Math.min(this.floors, Math.max(1, nearest));
    this.s.DoorZone = Math.abs(this.position - nearest) <= DOOR_ZONE;
  }

  private openDoors(): void {
    this.s.DoorOpen = true;
    this.phase = 'doorsOpen';
    this.phaseLeftMs = this.dwellMs;
    // At a stop some people leave and some board.
    if (this.s.ServiceMode === SERVICE_MODE.normal && this.s.FaultCode === FAULT_CODE.none) {
      const leaving = this.rng.int(0, this.passengers);
      const boarding = this.rng.chance(0.6) ? this.rng.int(1, 6) : 0;
      this.passengers = Math.min(Math.floor(this.ratedLoadKg / AVERAGE_PASSENGER_KG), this.passengers - leaving + boarding);
    } else if (this.s.ServiceMode === SERVICE_MODE.fireReturn) {
      this.passengers = 0;
    }
    this.syncLoad();
  }

  private halt(): void {
    this.phase = 'halted';
    this.s.Running = false;
    this.s.Direction = DIRECTION.none;
    this.s.Floor = Math.min(this.floors, Math.max(1, Math.round(this.position)));
    this.s.DoorZone = Math.abs(this.position - Math.round(this.position)) <= DOOR_ZONE;
  }

  private syncLoad(): void {
    this.s.PassengerPresent = this.passengers > 0;
    // Whole kilograms with a little scatter, as a load-weighing device reports.
    this.s.Load = this.passengers === 0 ? 0 : Math.max(0, Math.round(this.passengers * AVERAGE_PASSENGER_KG + this.rng.normal() * 8));
  }

  private idleTime(): number {
    // Exponential waiting time between calls, floored so that a stop is visible.
    return 200 + -Math.log(1 - this.rng.next()) * this.meanIdleMs;
  }
}
