// A simulated building fire-alarm controller with its user-information transmission device: detectors
// over floors and zones, a sprinkler installation with pipe pressure and a fire-water tank, reporting as
// GB/T 26875.3 frames. Two links: one frame per MQTT message on `devices/{panelId}/telemetry` (username =
// panel id, password = its secret, QoS 1; a DTU), or straight to the monitoring centre over TCP with the
// standard's send/confirm and heartbeats (startFirePanelTcp). Seeded: the same seed and clock give the
// same frames.
//
// FirePanelModel is the panel without a network (hooks return the frames to send); startFirePanel and
// startFirePanelTcp put it on a link with a report timer. Scenarios (a `fire` scenario: smoke, then the zone's alarm, then the
// sprinkler pressure dropping) are built on the hooks.
import mqtt, { type MqttClient } from 'mqtt';
import { createRng, type Rng } from '../rng.ts';
import { GbTcpLink, type GbTcpLinkStats } from '../transports/gb26875-tcp.ts';
import {
  GB_ANALOG,
  GB_ANALOG_RESOLUTION,
  GB_COMMAND,
  GB_STATE,
  analogData,
  componentStateData,
  deviceStateData,
  encodeGbFrame,
  kPaCount,
  systemStateData,
  type AnalogObject,
  type ComponentStateObject,
} from '../protocols/gb26875.ts';

/** System types and addresses of the simulated building (GB/T 26875.3 system type codes, protocols.md). */
export const PANEL_SYSTEMS = {
  fireAlarm: { systemType: 1, systemAddress: 1 },
  sprinkler: { systemType: 12, systemAddress: 2 },
  water: { systemType: 11, systemAddress: 3 },
} as const;

/** Component type codes used (public implementations of GB/T 26875.3; not verified against its text). */
export const PANEL_COMPONENT_TYPES = {
  smokeDetector: 42,
  heatDetector: 31,
  manualCallPoint: 23,
  waterFlowIndicator: 96,
  pressureSwitch: 99,
  sprinklerPump: 95,
  waterTank: 92,
} as const;

/**
 * Smoke obscuration has no analog type in the standard; the simulated panel sends it as vendor type 128
 * at 0.01 %/m per count, which the demo profile names (edge/profiles/fire-panel-gb26875.yaml).
 */
export const OBSCURATION_ANALOG_TYPE = 128;
/** Below this pipe pressure the pressure switch operates and the sprinkler pump starts. */
export const LOW_PRESSURE_MPA = 0.25;

export interface PanelComponent {
  /** Simulator id: `F3-Z2-D1` (detector), `F3-MCP`, `F3-FLOW`, `pressure-switch`, `sprinkler-pump`, `water-tank`. */
  id: string;
  systemType: number;
  systemAddress: number;
  componentType: number;
  componentAddress: number;
  floor?: number;
  zone?: string;
  /** GB 18030 description sent in state reports (at most 31 bytes). */
  description: string;
  /** Current state word. */
  state: number;
}

export interface FirePanelModelOptions {
  id: string;
  seed?: number | string;
  floors?: number;
  zonesPerFloor?: number;
  detectorsPerZone?: number;
  /** Panel clock offset from UTC in minutes (China: 480). */
  offsetMinutes?: number;
  /** Clock for time labels; default Date.now. */
  now?: () => number;
  /** The device's 6-byte source address as 12 hex digits in wire order; default derived from the id. */
  address?: string;
}

export interface PanelFrame {
  /** What the frame reports: `analog`, `component_state`, `system_state`, `device_state`. */
  kind: string;
  bytes: Uint8Array;
}

const MAX_OBJECTS = 60; // 60 × 16-byte analog objects stays under the 1024-byte data unit

export class FirePanelModel {
  readonly id: string;
  readonly components: PanelComponent[] = [];
  readonly zones: string[] = [];
  private readonly rng: Rng;
  private readonly offset: number;
  private readonly now: () => number;
  private readonly address: Uint8Array;
  private serial = 0;
  private systemWord: number = GB_STATE.normal;
  private readonly nominalMPa: number;
  private targetMPa: number;
  pressureMPa: number;
  tankLevelM: number;
  private readonly temperatures = new Map<string, number>();

  constructor(o: FirePanelModelOptions) {
    this.id = o.id;
    this.rng = createRng(o.seed ?? 1, o.id, 'fire-panel');
    this.offset = o.offsetMinutes ?? 480;
    this.now = o.now ?? Date.now;
    // The device's 6-byte address, derived from its id so that every panel has its own.
    const h = createRng(o.id, 'address');
    this.address = o.address !== undefined ? Uint8Array.from(Buffer.from(o.address, 'hex')) : Uint8Array.from({ length: 6 }, () => h.int(0, 255));
    if (this.address.length !== 6) throw new RangeError(`panel ${o.id}: an address is 6 bytes (12 hex digits), got ${o.address}`);
    this.nominalMPa = round(this.rng.uniform(0.36, 0.44), 3);
    this.targetMPa = this.nominalMPa;
    this.pressureMPa = this.nominalMPa;
    this.tankLevelM = round(this.rng.uniform(2.4, 2.8), 2);
    const floors = o.floors ?? 3;
    const zonesPerFloor = o.zonesPerFloor ?? 2;
    const perZone = o.detectorsPerZone ?? 2;
    const fa = PANEL_SYSTEMS.fireAlarm;
    const T = PANEL_COMPONENT_TYPES;
    for (let f = 1; f <= floors; f++) {
      for (let z = 1; z <= zonesPerFloor; z++) {
        const zone = `F${f}-Z${z}`;
        this.zones.push(zone);
        for (let d = 1; d <= perZone; d++) {
          const smoke = d % 2 === 1;
          const id = `${zone}-D${d}`;
          // Address: loop (floor) in the high half, zone and detector number in the low (a vendor's packing).
          this.add({ id, ...fa, componentType: smoke ? T.smokeDetector : T.heatDetector, componentAddress: f * 65536 + z * 256 + d, floor: f, zone, description: `${f}层${z}区${smoke ? '烟感' : '温感'}${d}号` });
          if (!smoke) this.temperatures.set(id, round(this.rng.uniform(19, 25), 1));
        }
      }
      this.add({ id: `F${f}-MCP`, ...fa, componentType: T.manualCallPoint, componentAddress: f * 65536 + 240, floor: f, zone: `F${f}-Z1`, description: `${f}层手报` });
      this.add({ id: `F${f}-FLOW`, ...PANEL_SYSTEMS.sprinkler, componentType: T.waterFlowIndicator, componentAddress: 100 + f, floor: f, description: `${f}层水流指示器` });
    }
    this.add({ id: 'pressure-switch', ...PANEL_SYSTEMS.sprinkler, componentType: T.pressureSwitch, componentAddress: 1, description: '喷淋压力开关' });
    this.add({ id: 'sprinkler-pump', ...PANEL_SYSTEMS.sprinkler, componentType: T.sprinklerPump, componentAddress: 2, description: '喷淋泵' });
    this.add({ id: 'water-tank', ...PANEL_SYSTEMS.water, componentType: T.waterTank, componentAddress: 1, description: '消防水箱' });
  }

  private add(c: Omit<PanelComponent, 'state'>): void {
    this.components.push({ ...c, state: GB_STATE.normal });
  }

  component(idOrAddress: string | number): PanelComponent {
    const c = this.components.find((x) => x.id === idOrAddress || x.componentAddress === idOrAddress);
    if (!c) throw new Error(`panel ${this.id} has no component ${idOrAddress}`);
    return c;
  }

  detectorsOf(zone: string): PanelComponent[] {
    const ds = this.components.filter((c) => c.zone === zone && /-D\d+$/.test(c.id));
    if (ds.length === 0) throw new Error(`panel ${this.id} has no zone ${zone} (zones: ${this.zones.join(', ')})`);
    return ds;
  }

  private frame(kind: string, data: Uint8Array): PanelFrame {
    const serial = this.serial;
    this.serial = (this.serial + 1) & 0xffff;
    return { kind, bytes: encodeGbFrame({ serial, time: this.now(), offsetMinutes: this.offset, source: this.address, destination: new Uint8Array(6), command: GB_COMMAND.send, data }) };
  }

  private stateFrames(changed: readonly PanelComponent[]): PanelFrame[] {
    const ts = this.now();
    const out: PanelFrame[] = [];
    for (let i = 0; i < changed.length; i += 20) {
      const objs: ComponentStateObject[] = changed.slice(i, i + 20).map((c) => ({ ...c, ts }));
      out.push(this.frame('component_state', componentStateData(objs, this.offset)));
    }
    return out;
  }

  /** The system word follows its components: fire if any is in fire, fault if any is faulty. */
  private systemFrames(extra = 0): PanelFrame[] {
    let word: number = GB_STATE.normal;
    for (const c of this.components) {
      if (c.systemType !== PANEL_SYSTEMS.fireAlarm.systemType) continue;
      if (c.state & GB_STATE.fireAlarm) word |= GB_STATE.fireAlarm;
      if (c.state & GB_STATE.fault) word |= GB_STATE.fault;
    }
    if (word === this.systemWord && extra === 0) return [];
    this.systemWord = word;
    const ts = this.now();
    return [this.frame('system_state', systemStateData([{ ...PANEL_SYSTEMS.fireAlarm, state: word | extra, ts }], this.offset))];
  }

  /** The device's source address, 12 hex digits in wire order (what the registry's gb26875.address names). */
  get addressHex(): string {
    return Buffer.from(this.address).toString('hex');
  }

  /** A heartbeat: a send-data frame without application data (GB/T 26875.3's link check, every 20–30 s). */
  heartbeat(): PanelFrame {
    return this.frame('heartbeat', new Uint8Array(0));
  }

  /** What a panel says when it comes up: the device and the fire-alarm system are normal. */
  startup(): PanelFrame[] {
    const ts = this.now();
    return [
      this.frame('device_state', deviceStateData(0x01, ts, this.offset)),
      this.frame('system_state', systemStateData([{ ...PANEL_SYSTEMS.fireAlarm, state: this.systemWord, ts }], this.offset)),
      ...this.report(),
    ];
  }

  /** One periodic report: pipe pressure, tank level, heat-detector temperatures (one step of slow noise). */
  report(): PanelFrame[] {
    const r = this.rng;
    this.pressureMPa = clamp(round(this.pressureMPa + 0.2 * (this.targetMPa - this.pressureMPa) + 0.004 * r.normal(), 3), 0, 1.6);
    if (this.targetMPa === this.nominalMPa) this.pressureMPa = clamp(this.pressureMPa, 0.3, 0.5);
    this.tankLevelM = clamp(round(this.tankLevelM + 0.003 * r.normal(), 2), 2.2, 3.0);
    for (const [id, t] of this.temperatures) this.temperatures.set(id, clamp(round(t + 0.1 * r.normal(), 1), 15, 30));
    return this.analogFrames();
  }

  private analogFrames(): PanelFrame[] {
    const ts = this.now();
    const objs: AnalogObject[] = [
      // Pipe pressure as type 5 (kPa, 0.1 kPa per count): type 4's 0.1 MPa is too coarse for 0.3–0.5 MPa.
      { ...this.component('pressure-switch'), analogType: GB_ANALOG.pressureKPa, raw: kPaCount(this.pressureMPa), ts },
      { ...this.component('water-tank'), analogType: GB_ANALOG.height, raw: Math.round(this.tankLevelM / GB_ANALOG_RESOLUTION.height), ts },
      ...[...this.temperatures].map(([id, t]) => ({ ...this.component(id), analogType: GB_ANALOG.temperature, raw: Math.round(t / GB_ANALOG_RESOLUTION.temperature), ts })),
    ];
    const out: PanelFrame[] = [];
    for (let i = 0; i < objs.length; i += MAX_OBJECTS) out.push(this.frame('analog', analogData(objs.slice(i, i + MAX_OBJECTS), this.offset)));
    return out;
  }

  /** A detector sees smoke: its obscuration reading (if a smoke detector) and its fire alarm. */
  smoke(detector: string | number, obscurationPctPerM = 4): PanelFrame[] {
    const c = this.component(detector);
    const out: PanelFrame[] = [];
    if (c.componentType === PANEL_COMPONENT_TYPES.smokeDetector) {
      out.push(this.frame('analog', analogData([{ ...c, analogType: OBSCURATION_ANALOG_TYPE, raw: Math.round(obscurationPctPerM * 100), ts: this.now() }], this.offset)));
    }
    c.state |= GB_STATE.fireAlarm;
    return [...out, ...this.stateFrames([c]), ...this.systemFrames()];
  }

  /** A zone's fire alarm: every detector of the zone in fire, and the system's fire bit. */
  fireAlarm(zone: string): PanelFrame[] {
    const ds = this.detectorsOf(zone).filter((c) => !(c.state & GB_STATE.fireAlarm));
    for (const c of ds) c.state |= GB_STATE.fireAlarm;
    return [...this.stateFrames(ds), ...this.systemFrames()];
  }

  /** Sprinkler pipe pressure falls to `toMPa` (heads open, a leak); low enough, the pump starts. */
  sprinklerPressureDrop(toMPa: number): PanelFrame[] {
    if (!(toMPa >= 0 && toMPa <= 1.6)) throw new RangeError(`pressure ${toMPa} MPa is outside 0–1.6`);
    this.targetMPa = toMPa;
    this.pressureMPa = round(toMPa, 3);
    const out = this.analogFrames();
    if (toMPa < LOW_PRESSURE_MPA) {
      const changed = [this.component('pressure-switch'), this.component('sprinkler-pump')].filter((c) => !(c.state & GB_STATE.started));
      for (const c of changed) c.state |= GB_STATE.started;
      out.push(...this.stateFrames(changed));
    }
    return out;
  }

  /** A component reports a fault. */
  fault(component: string | number): PanelFrame[] {
    const c = this.component(component);
    if (c.state & GB_STATE.fault) return [];
    c.state |= GB_STATE.fault;
    return [...this.stateFrames([c]), ...this.systemFrames()];
  }

  /** The panel is reset: every component back to normal (reported first), pressure restored, then the system with its reset bit. */
  reset(): PanelFrame[] {
    const changed = this.components.filter((c) => c.state !== GB_STATE.normal);
    for (const c of changed) c.state = GB_STATE.normal;
    this.targetMPa = this.nominalMPa;
    this.pressureMPa = this.nominalMPa;
    return [...this.stateFrames(changed), ...this.analogFrames(), ...this.systemFrames(GB_STATE.reset)];
  }
}

export interface FirePanelOptions extends FirePanelModelOptions {
  url: string;
  secret: string;
  /** Period of analog reports; 0 = only on hooks and `report()`. Default 10 000. */
  reportIntervalMs?: number;
  qos?: 0 | 1;
  connectTimeoutMs?: number;
  /** Called with every frame as it is handed to MQTT (tests, logs). */
  onFrame?: (frame: PanelFrame) => void;
}

export interface FirePanelStats {
  published: number;
  acked: number;
  failed: number;
  /** Frames by kind (analog, component_state, system_state, device_state). */
  frames: Record<string, number>;
  lastError?: string;
}

export interface FirePanel {
  readonly id: string;
  readonly model: FirePanelModel;
  readonly stats: FirePanelStats;
  /** Each hook resolves once its frames are acknowledged (QoS 1). */
  smoke(detector: string | number, obscurationPctPerM?: number): Promise<void>;
  fireAlarm(zone: string): Promise<void>;
  sprinklerPressureDrop(toMPa: number): Promise<void>;
  detectors(): string[];
  zones(): string[];
  fault(component: string | number): Promise<void>;
  reset(): Promise<void>;
  report(): Promise<void>;
  /** One heartbeat frame (a send-data frame without data). */
  heartbeat(): Promise<void>;
  stop(): Promise<void>;
}

/** Connect a simulated panel and start it: startup frames, then a report every reportIntervalMs. Rejects if it cannot connect. */
export async function startFirePanel(o: FirePanelOptions): Promise<FirePanel> {
  const model = new FirePanelModel(o);
  const stats: FirePanelStats = { published: 0, acked: 0, failed: 0, frames: {} };
  const topic = `devices/${o.id}/telemetry`;
  const client: MqttClient = mqtt.connect(o.url, {
    clientId: o.id,
    username: o.id,
    password: o.secret,
    protocolVersion: 4,
    clean: true,
    reconnectPeriod: 1000,
    connectTimeout: o.connectTimeoutMs ?? 10_000,
  });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => fail(new Error(`panel ${o.id}: no CONNACK within ${o.connectTimeoutMs ?? 10_000} ms`)), o.connectTimeoutMs ?? 10_000);
    const fail = (err: Error) => {
      clearTimeout(timer);
      client.end(true);
      reject(err);
    };
    client.once('connect', () => {
      clearTimeout(timer);
      resolve();
    });
    client.on('error', (err) => {
      stats.lastError = err.message;
      // A CONNACK refusal (numeric code) will not get better by retrying.
      if (typeof (err as { code?: unknown }).code === 'number') fail(new Error(`panel ${o.id}: connection refused: ${err.message}`));
    });
  });

  const send = async (frames: PanelFrame[]): Promise<void> => {
    // In order, one at a time: the far end must see a component's states in the order they happened.
    for (const f of frames) {
      stats.published += 1;
      stats.frames[f.kind] = (stats.frames[f.kind] ?? 0) + 1;
      o.onFrame?.(f);
      try {
        await new Promise<void>((resolve, reject) => client.publish(topic, Buffer.from(f.bytes), { qos: o.qos ?? 1 }, (err) => (err ? reject(err) : resolve())));
        stats.acked += 1;
      } catch (err) {
        stats.failed += 1;
        stats.lastError = (err as Error).message;
        throw err;
      }
    }
  };
  return panelHandle(o.id, model, stats, send, o.reportIntervalMs ?? 10_000, [], async () => {
    await new Promise<void>((resolve) => client.end(false, {}, () => resolve()));
  });
}

/**
 * The hooks of a running panel over a link: `send` delivers frames in order (resolving on their
 * acknowledgement). Hooks, reports and heartbeats are serialised, so a timer report never overtakes a
 * hook's frames. Sends the startup frames first.
 */
async function panelHandle(
  id: string,
  model: FirePanelModel,
  stats: FirePanelStats,
  send: (frames: PanelFrame[]) => Promise<void>,
  reportIntervalMs: number,
  extraTimers: { everyMs: number; make: () => PanelFrame[] }[],
  close: () => Promise<void>,
): Promise<FirePanel> {
  let chain: Promise<void> = Promise.resolve();
  const run = (make: () => PanelFrame[]): Promise<void> => {
    const next = chain.then(() => send(make()));
    chain = next.catch(() => undefined);
    return next;
  };

  await run(() => model.startup());
  const timers: NodeJS.Timeout[] = [];
  if (reportIntervalMs > 0) timers.push(setInterval(() => void run(() => model.report()).catch(() => undefined), reportIntervalMs));
  for (const t of extraTimers) if (t.everyMs > 0) timers.push(setInterval(() => void run(t.make).catch(() => undefined), t.everyMs));
  let stopped = false;

  return {
    id,
    model,
    stats,
    smoke: (d, ob) => run(() => model.smoke(d, ob)),
    fireAlarm: (z) => run(() => model.fireAlarm(z)),
    sprinklerPressureDrop: (p) => run(() => model.sprinklerPressureDrop(p)),
    // What scenarios pick from (FirePanelHooks): smoke detectors by id, zones by name.
    detectors: () => model.components.filter((c) => /-D\d+$/.test(c.id) && c.componentType === PANEL_COMPONENT_TYPES.smokeDetector).map((c) => c.id),
    zones: () => [...model.zones],
    fault: (c) => run(() => model.fault(c)),
    reset: () => run(() => model.reset()),
    report: () => run(() => model.report()),
    heartbeat: () => run(() => [model.heartbeat()]),
    stop: async () => {
      if (stopped) return;
      stopped = true;
      for (const t of timers) clearInterval(t);
      await chain;
      await close();
    },
  };
}

export interface FirePanelTcpOptions extends FirePanelModelOptions {
  /** The monitoring centre (the edge's GB/T 26875.3 listener). */
  host: string;
  port: number;
  /** Period of analog reports; 0 = only on hooks and `report()`. Default 10 000. */
  reportIntervalMs?: number;
  /** Heartbeat period (the standard's notes: 20–30 s); 0 = none. Default 25 000. */
  heartbeatMs?: number;
  /** Waiting for a confirm before resending (≤ 10 s). Default 10 000. */
  answerTimeoutMs?: number;
  /** Resends of an unconfirmed frame (3). */
  retries?: number;
  connectTimeoutMs?: number;
  onFrame?: (frame: PanelFrame) => void;
}

/**
 * A transmission device on its own TCP link to the monitoring centre: every frame confirmed (command 3)
 * or resent (timeout, deny) up to `retries` times, heartbeats every `heartbeatMs`. Rejects if it cannot
 * connect or its startup frames are not confirmed.
 */
export async function startFirePanelTcp(o: FirePanelTcpOptions): Promise<FirePanel & { link: GbTcpLinkStats }> {
  const model = new FirePanelModel(o);
  const stats: FirePanelStats = { published: 0, acked: 0, failed: 0, frames: {} };
  const link = new GbTcpLink({ host: o.host, port: o.port, answerTimeoutMs: o.answerTimeoutMs, retries: o.retries, connectTimeoutMs: o.connectTimeoutMs });
  await link.open();
  const send = async (frames: PanelFrame[]): Promise<void> => {
    for (const f of frames) {
      stats.published += 1;
      stats.frames[f.kind] = (stats.frames[f.kind] ?? 0) + 1;
      o.onFrame?.(f);
      try {
        await link.send(f.bytes);
        stats.acked += 1;
      } catch (err) {
        stats.failed += 1;
        stats.lastError = (err as Error).message;
        throw err;
      }
    }
  };
  try {
    const handle = await panelHandle(o.id, model, stats, send, o.reportIntervalMs ?? 10_000, [{ everyMs: o.heartbeatMs ?? 25_000, make: () => [model.heartbeat()] }], async () => link.close());
    return Object.assign(handle, { link: link.stats });
  } catch (err) {
    link.close();
    throw err;
  }
}

function round(x: number, decimals: number): number {
  const p = 10 ** decimals;
  return Math.round(x * p) / p;
}

function clamp(x: number, lo: number, hi: number): number {
  return Math.min(hi, Math.max(lo, x));
}
