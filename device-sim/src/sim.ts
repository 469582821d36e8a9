// The runner: connects every device (a bounded number of attempts at a time), then lets each one publish
// on its own timer until the run's stop condition, waits for outstanding acknowledgements, and reports
// what the far end acknowledged.
import { setImmediate as yieldToLoop, setTimeout as sleep } from 'node:timers/promises';
import YAML from 'yaml';
import { loadProfiles } from '@citysense/edge/profiles';
import { getFamily } from './families/index.ts';
import type { Metrics } from './families/types.ts';
import { createNbDevice } from './nbiot/devices.ts';
import { isNbProfile, loadNbProfile } from './nbiot/profiles.ts';
import { startProgress, type ProgressOptions, type ProgressSnapshot } from './progress.ts';
import { defaultSecret, drawDistrict, generateDevices, parseRegistry, type LoadedRegistry, type SimDevice } from './registry.ts';
import { createRng } from './rng.ts';
import { CLOCK_SKEW_MS, DeviceControl, type DeviceKind, type FaultKind } from './scenarios/control.ts';
import { getScenario, ScenarioRun, type Scenario, type ScenarioParts, type ScenarioReport } from './scenarios/index.ts';
import { createStation, STATION_CONDITIONS } from './stations/station.ts';
import { generateMn, StationFramer } from './stations/framer.ts';
import { createDeviceStream } from './stream.ts';
import {
  DEFAULT_ANSWER_TIMEOUT_MS,
  DEFAULT_HJ212_HOST,
  DEFAULT_HJ212_PORT,
  DEFAULT_RETRIES,
  Hj212DtuLink,
  Hj212TcpClient,
  publishRaw,
  type Hj212Counts,
  type Hj212Link,
} from './transports/hj212-tcp.ts';
import { MqttDevice, telemetryPayload, telemetryTopic, type ConnectOutcome, type Qos } from './transports/mqtt.ts';

export const DEFAULT_URL = 'mqtt://127.0.0.1:1883';
/** What a run does when given no stop condition at all: a short, bounded run, never an endless one. */
export const DEFAULT_COUNT = 10;

/**
 * A device as a registry entry names it: without `profile` (or with 'generic-json') it publishes its
 * family's generic JSON; with one of SIM_PROFILES it is simulated as that model.
 */
export interface ProfiledDevice extends SimDevice {
  profile?: string;
  /** HJ 212 stations: MN (24 hex digits) and access password (PW). */
  hj212?: { mn: string; password: string };
}

/** The device models (edge/profiles/<id>.yaml) this simulator can play, and how each reaches the edge. */
export const SIM_PROFILES: Readonly<Record<string, { kind: DeviceKind; family: string }>> = {
  'generic-json': { kind: 'json', family: '' },
  'hj212-air-station': { kind: 'hj212-tcp', family: 'environment' },
  'hj212-air-station-dtu': { kind: 'hj212-dtu', family: 'environment' },
  'nb-smoke-detector': { kind: 'nbiot', family: 'nbiot' },
  'nb-manhole-cover': { kind: 'nbiot', family: 'nbiot' },
  'nb-gas-detector': { kind: 'nbiot', family: 'nbiot' },
};
export const SIM_PROFILE_NAMES: readonly string[] = Object.keys(SIM_PROFILES).filter((p) => p !== 'generic-json');
/** HJ 212 station password written to generated registries (the demo's, and many stations' factory default). */
export const DEFAULT_HJ212_PASSWORD = '123456';

export function deviceKind(d: ProfiledDevice): DeviceKind {
  const p = SIM_PROFILES[d.profile ?? 'generic-json'];
  if (!p) throw new Error(`device "${d.id}": no simulator for profile "${d.profile}" (known: ${Object.keys(SIM_PROFILES).join(', ')})`);
  return p.kind;
}

export interface SimOptions {
  url?: string;
  /** The devices to run. When absent, `devicesPerFamily` devices are generated for each of `families` and `profiles`. */
  devices?: ProfiledDevice[];
  families?: string[];
  /** Device models to generate devices for (SIM_PROFILE_NAMES), `devicesPerFamily` of each. */
  profiles?: string[];
  devicesPerFamily?: number;
  idPrefix?: string;
  /** Wall-clock period of each device. Give this or `rate`; default 1000. */
  intervalMs?: number;
  /** Total telemetry messages per second over all devices; sets `intervalMs`. */
  rate?: number;
  /** Telemetry messages per device. */
  count?: number;
  /** Wall-clock length of the run from its start (connecting included). */
  durationMs?: number;
  /** Run until `signal` aborts; `count` and `durationMs` still apply if given. */
  forever?: boolean;
  seed?: number | string;
  /** Timestamp of the first reading; default: the time the run starts. */
  startTs?: number;
  /** Simulated time between two readings of a device; default `intervalMs` (real time). */
  simStepMs?: number;
  qos?: Qos;
  /** MQTT protocol level of every MQTT device: 4 (3.1.1, default) or 5. */
  mqttVersion?: 4 | 5;
  /** Also publish the families' events (fire alarms, faults, low battery...) to `devices/{id}/events`. */
  events?: boolean;
  connectConcurrency?: number;
  /** Minimum gap between starting two connection attempts. */
  connectIntervalMs?: number;
  connectTimeoutMs?: number;
  reconnectPeriodMs?: number;
  /** Unacknowledged messages a device may have outstanding before it waits; bounds memory and bursts. */
  maxInflight?: number;
  /** How long to wait at the end for outstanding acknowledgements before counting them as failed. */
  drainTimeoutMs?: number;
  progress?: boolean | ProgressOptions;
  signal?: AbortSignal;
  /** Where notices (refusals, give-ups) go; default stderr. */
  log?: (line: string) => void;
  /** The edge's HJ 212 TCP listener, for hj212-air-station devices. Default 127.0.0.1:6212. */
  hj212?: { host?: string; port?: number };
  /** HJ 212 answer timeout (default 10 s) and retries (default 3), HJ 212-2017's defaults. */
  hj212AnswerTimeoutMs?: number;
  hj212Retries?: number;
  /** NB-IoT devices send their frames as hex text instead of raw bytes. */
  nbHex?: boolean;
  /** Simulated time between NB-IoT heartbeats; default every step. Alarms are reported at once regardless. */
  nbHeartbeatMs?: number;
  /** Folder of the edge profiles the NB-IoT layouts are read from; default the edge's built-in ones. */
  profilesDir?: string;
  /** Scenario to play (a name from scenarios/index.ts, or a Scenario). Default: none ('normal'). */
  scenario?: string | Scenario;
  /** Simulators a scenario drives besides the devices (fire panel, elevators). */
  parts?: ScenarioParts;
}

export interface DeviceStats {
  family: string;
  status: 'connected' | 'refused' | 'unreachable' | 'not-started';
  published: number;
  acked: number;
  failed: number;
  /** Per-metric sums over acknowledged telemetry only: what the far end must have stored. */
  sums: Record<string, number>;
  events: { published: number; acked: number; failed: number };
  /** Times an established connection dropped (mqtt.js reconnects and resends what was unacknowledged). */
  disconnects: number;
  error?: string;
  /** The device's profile when it is not generic JSON. */
  profile?: string;
  /** HJ 212 stations: frames sent, answered (9014), retried, failed, refused (9011). */
  hj212?: Hj212Counts;
  /** Faults a scenario made this device send, by kind (only kinds that occurred). */
  faults?: Partial<Record<FaultKind, number>>;
  /** Messages carrying an injected fault that the far end refused or never acknowledged (not counted as failed). */
  faultyUnacked?: number;
}

export interface SimError {
  deviceId: string;
  kind: 'refused' | 'unreachable' | 'publish';
  message: string;
}

export interface SimStats {
  /** Telemetry messages handed to the connection. */
  published: number;
  /** Telemetry messages acknowledged (PUBACK at QoS 1; written to the socket at QoS 0). */
  acked: number;
  /** Telemetry messages that errored or were still unacknowledged when the run ended. */
  failed: number;
  connected: number;
  /** Devices the broker refused (CONNACK return code ≠ 0). */
  refused: number;
  /** Devices that got no answer before the connect timeout. */
  unreachable: number;
  events: { published: number; acked: number; failed: number };
  perDevice: Record<string, DeviceStats>;
  /** The first problems met, at most MAX_ERRORS of them. */
  errors: SimError[];
  seed: number | string;
  startTs: number;
  intervalMs: number;
  simStepMs: number;
  elapsedMs: number;
  /** What the scenario did, when one was played. */
  scenario?: ScenarioReport;
}

const MAX_ERRORS = 100;
const MAX_LOGGED_ERRORS = 20;
/** Messages a device sends back to back when catching up before it lets other devices run. */
const BURST = 64;

class Semaphore {
  private free: number;
  private readonly waiting: Array<() => void> = [];
  constructor(slots: number) {
    this.free = slots;
  }
  async acquire(): Promise<void> {
    if (this.free > 0) {
      this.free -= 1;
      return;
    }
    await new Promise<void>((resolve) => this.waiting.push(resolve));
  }
  release(): void {
    const next = this.waiting.shift();
    if (next) next();
    else this.free += 1;
  }
}

function positive(name: string, value: number | undefined): void {
  if (value !== undefined && !(Number.isFinite(value) && value > 0)) {
    throw new Error(`${name} must be a positive number, got ${value}`);
  }
}

export interface ResolvedTiming {
  intervalMs: number;
  simStepMs: number;
  count: number | undefined;
}

export function resolveTiming(options: SimOptions, deviceCount: number): ResolvedTiming {
  if (options.intervalMs !== undefined && options.rate !== undefined) {
    throw new Error('give either an interval per device or a total rate, not both');
  }
  positive('intervalMs', options.intervalMs);
  positive('rate', options.rate);
  positive('durationMs', options.durationMs);
  positive('simStepMs', options.simStepMs);
  if (options.count !== undefined && !(Number.isInteger(options.count) && options.count > 0)) {
    throw new Error(`count must be a positive integer, got ${options.count}`);
  }
  const intervalMs =
    options.rate !== undefined ? (Math.max(1, deviceCount) * 1000) / options.rate : (options.intervalMs ?? 1000);
  const simStepMs = options.simStepMs ?? Math.max(1, Math.round(intervalMs));
  if (!Number.isInteger(simStepMs)) throw new Error(`simStepMs must be whole milliseconds, got ${simStepMs}`);
  const unbounded = options.forever === true || options.durationMs !== undefined;
  const count = options.count ?? (unbounded ? undefined : DEFAULT_COUNT);
  return { intervalMs, simStepMs, count };
}

export function resolveDevices(options: SimOptions, seed: number | string): ProfiledDevice[] {
  const devices: ProfiledDevice[] = options.devices ?? [
    ...(options.families !== undefined || options.profiles === undefined
      ? generateDevices({
          families: options.families ?? ['environment', 'fire', 'nbiot'],
          perFamily: options.devicesPerFamily ?? 1,
          seed,
          ...(options.idPrefix !== undefined ? { idPrefix: options.idPrefix } : {}),
        })
      : []),
    ...generateProfileDevices({
      profiles: options.profiles ?? [],
      perProfile: options.devicesPerFamily ?? 1,
      seed,
      ...(options.idPrefix !== undefined ? { idPrefix: options.idPrefix } : {}),
      ...(options.profilesDir !== undefined ? { profilesDir: options.profilesDir } : {}),
    }),
  ];
  const ids = new Set<string>();
  for (const d of devices) {
    if (ids.has(d.id)) throw new Error(`device "${d.id}" is listed twice`);
    ids.add(d.id);
    const kind = deviceKind(d);
    if (kind === 'json') {
      const family = getFamily(d.family);
      if (family.transport !== 'mqtt') {
        throw new Error(`device "${d.id}": family "${d.family}" is simulated over ${family.transport}, which this runner does not have yet`);
      }
    }
    if ((kind === 'hj212-tcp' || kind === 'hj212-dtu') && (!d.hj212 || !/^[0-9A-Za-z]{1,24}$/.test(d.hj212.mn))) {
      throw new Error(`device "${d.id}": an HJ 212 station needs hj212.mn (1-24 letters and digits) and hj212.password`);
    }
    if (kind !== 'hj212-tcp' && !d.secret) throw new Error(`device "${d.id}": an MQTT device needs a secret`);
  }
  return devices;
}

export interface GenerateProfileOptions {
  profiles: readonly string[];
  perProfile: number;
  seed: number | string;
  idPrefix?: string;
  profilesDir?: string;
}

/**
 * `perProfile` devices of each profile, ids `<prefix><profile>-0001`…, with a seeded district and, for
 * HJ 212 stations, a seeded 24-hex-digit MN and password 123456. TCP stations have no MQTT secret.
 */
export function generateProfileDevices(options: GenerateProfileOptions): ProfiledDevice[] {
  const prefix = options.idPrefix ?? 'sim-';
  const width = Math.max(4, String(options.perProfile).length);
  const out: ProfiledDevice[] = [];
  for (const profile of options.profiles) {
    const spec = SIM_PROFILES[profile];
    if (!spec || profile === 'generic-json') {
      throw new Error(`unknown device profile "${profile}" (known: ${SIM_PROFILE_NAMES.join(', ')})`);
    }
    const model = isNbProfile(profile) ? loadNbProfile(profile, options.profilesDir).model : 'HJ212-AQMS';
    for (let n = 1; n <= options.perProfile; n++) {
      const id = `${prefix}${profile}-${String(n).padStart(width, '0')}`;
      const d: ProfiledDevice = {
        id,
        family: spec.family,
        secret: spec.kind === 'hj212-tcp' ? '' : defaultSecret(id),
        district: drawDistrict(options.seed, id),
        tags: { model },
        profile,
      };
      if (spec.kind === 'hj212-tcp' || spec.kind === 'hj212-dtu') {
        d.hj212 = { mn: generateMn(createRng('citysense-sim-mn', options.seed, id)), password: DEFAULT_HJ212_PASSWORD };
      }
      out.push(d);
    }
  }
  return out;
}

/** Edge profiles whose devices speak the generic JSON payload of contracts.md: simulated as generic devices. */
const EDGE_PROFILES = loadProfiles([]);
const CONTRACT_JSON_PROFILES = new Set(
  EDGE_PROFILES.ids()
    .filter((id) => {
      const p = EDGE_PROFILES.get(id)!.profile;
      return p.input === 'mqtt' && p.format === 'json' && (p.json === undefined || (p.json.metricsKey === 'metrics' && p.json.tsKey === 'ts' && p.json.tsUnit === 'ms'));
    }),
);
/** Profiles another part of the simulator plays. */
const PLAYED_ELSEWHERE: Record<string, string> = {
  'fire-panel-gb26875': 'a GB/T 26875.3 fire panel: run it with --fire-panel id:secret',
  'fire-panel-gb26875-tcp': 'a GB/T 26875.3 transmission device over TCP: run it with --fire-panel-tcp id:address@host:port',
  'elevator-opcua': 'read over OPC-UA from a controller: run one with --elevator-port',
};

/**
 * Reads an edge registry keeping each entry's model: entries with a profile this simulator plays
 * (SIM_PROFILES) become profiled devices (HJ 212 TCP stations need `hj212: {mn, password}`, no secret);
 * the rest go through parseRegistry as generic JSON devices, or are skipped with the reason.
 */
export function parseProfiledRegistry(text: string, source = 'registry'): { devices: ProfiledDevice[]; skipped: LoadedRegistry['skipped'] } {
  const doc: unknown = YAML.parse(text);
  const list: unknown = Array.isArray(doc) ? doc : typeof doc === 'object' && doc !== null ? (doc as { devices?: unknown }).devices : undefined;
  if (!Array.isArray(list)) throw new Error(`${source}: expected a list of devices, or a mapping with a "devices" list`);
  const profiled: ProfiledDevice[] = [];
  const skipped: LoadedRegistry['skipped'] = [];
  const generic: unknown[] = [];
  list.forEach((entry: unknown, index) => {
    const e = (typeof entry === 'object' && entry !== null ? entry : {}) as Record<string, unknown>;
    const profile = typeof e.profile === 'string' ? e.profile : undefined;
    if (profile === undefined || profile === 'generic-json' || CONTRACT_JSON_PROFILES.has(profile)) {
      const { profile: _jsonProfile, ...plain } = e;
      generic.push(plain);
      return;
    }
    const id = typeof e.id === 'string' ? e.id : `entry ${index + 1}`;
    const spec = SIM_PROFILES[profile];
    if (!spec) {
      const playedBy = PLAYED_ELSEWHERE[profile];
      skipped.push({ id, reason: playedBy ?? `profile "${profile}" has no simulator (known: ${SIM_PROFILE_NAMES.join(', ')})` });
      return;
    }
    const family = typeof e.family === 'string' ? e.family : spec.family;
    const secret = typeof e.secret === 'string' ? e.secret : '';
    const h = (typeof e.hj212 === 'object' && e.hj212 !== null ? e.hj212 : {}) as Record<string, unknown>;
    const isStation = spec.kind === 'hj212-tcp' || spec.kind === 'hj212-dtu';
    if (isStation && (typeof h.mn !== 'string' || (typeof h.password !== 'string' && typeof h.password !== 'number'))) {
      skipped.push({ id, reason: `profile ${profile} needs hj212.mn and a plain hj212.password` });
      return;
    }
    if (spec.kind !== 'hj212-tcp' && secret === '') {
      skipped.push({ id, reason: e.secretSha256 !== undefined || e.secretHash !== undefined ? 'only a hash of the secret is stored' : 'no secret' });
      return;
    }
    const d: ProfiledDevice = { id, family, secret, profile };
    if (typeof e.district === 'string') d.district = e.district;
    if (typeof e.tags === 'object' && e.tags !== null) {
      d.tags = Object.fromEntries(Object.entries(e.tags as Record<string, unknown>).filter(([, v]) => typeof v === 'string')) as Record<string, string>;
    }
    if (isStation) d.hj212 = { mn: h.mn as string, password: String(h.password) };
    profiled.push(d);
  });
  const rest = generic.length > 0 ? parseRegistry(YAML.stringify(generic), source) : { devices: [], skipped: [] };
  const ids = new Set<string>();
  for (const d of [...rest.devices, ...profiled]) {
    if (ids.has(d.id)) throw new Error(`${source}: duplicate id "${d.id}"`);
    ids.add(d.id);
  }
  // Keep the file's order so --devices n takes the first n of each family as before.
  const order = new Map(list.map((e: unknown, i) => [(e as { id?: unknown })?.id, i]));
  const devices = [...rest.devices, ...profiled].sort((a, b) => (order.get(a.id) ?? 0) - (order.get(b.id) ?? 0));
  return { devices, skipped: [...rest.skipped, ...skipped] };
}

/**
 * The edge registry for these devices, profiles and HJ 212 identities included:
 * `{id, family, secret?, district, tags?, profile?, hj212?: {mn, password}}` (edge/src/config/schema.ts).
 */
export function profiledRegistryYaml(devices: readonly ProfiledDevice[], seed: number | string = 0): string {
  const entries = devices.map((d) => ({
    id: d.id,
    family: d.family,
    ...(d.secret ? { secret: d.secret } : {}),
    district: d.district ?? drawDistrict(seed, d.id),
    ...(d.tags ? { tags: d.tags } : {}),
    ...(d.profile && d.profile !== 'generic-json' ? { profile: d.profile } : {}),
    ...(d.hj212 ? { hj212: { mn: d.hj212.mn, password: d.hj212.password } } : {}),
  }));
  return `# Written by citysense device-sim; ids and secrets match a device-sim run with the same options.\n${YAML.stringify({ devices: entries })}`;
}

/** One message of a reading: how to send it and what it counts for. */
interface Outgoing {
  kind: 'telemetry' | 'event';
  send(): Promise<void>;
  /** Values to add to the device's sums once acknowledged (telemetry without unreadable faults). */
  sums?: Metrics;
  faulty: boolean;
}

/** A connection of any kind, as the runner drives it. */
interface Link {
  readonly id: string;
  connect(): Promise<ConnectOutcome>;
  close(force?: boolean): Promise<void>;
  readonly disconnects: number;
  readonly refusedLater: { code: number; reason: string } | undefined;
}

/** Faults that leave the payload readable and its values true: the message still counts in the sums. */
const HARMLESS: ReadonlySet<FaultKind> = new Set(['stuck']);

export async function runSim(options: SimOptions = {}): Promise<SimStats> {
  const seed = options.seed ?? Math.floor(Math.random() * 2 ** 31);
  const devices = resolveDevices(options, seed);
  const timing = resolveTiming(options, devices.length);
  const { intervalMs, simStepMs } = timing;
  let count = timing.count;
  const qos: Qos = options.qos ?? 1;
  const url = options.url ?? DEFAULT_URL;
  const maxInflight = options.maxInflight ?? 100;
  const connectTimeoutMs = options.connectTimeoutMs ?? 10_000;
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const runStart = performance.now();
  const startTs = options.startTs ?? Date.now();

  const controls = new Map<string, DeviceControl>(
    devices.map((d) => [d.id, new DeviceControl(d.id, deviceKind(d), d.profile ?? 'generic-json', d.family)]),
  );
  const scenario =
    options.scenario === undefined
      ? undefined
      : new ScenarioRun(typeof options.scenario === 'string' ? getScenario(options.scenario) : options.scenario, {
          seed,
          startTs,
          stepMs: simStepMs,
          devices: [...controls.values()],
          ...(options.parts ? { parts: options.parts } : {}),
          // Step lines are progress: --quiet (progress: false) silences them, errors still go to log.
          log: options.progress === false ? () => undefined : log,
        });
  if (scenario && options.count === undefined && options.durationMs === undefined && !options.forever) {
    // A scenario without an explicit stop plays to its end: one reading per step over its duration.
    count = Math.max(count ?? 0, Math.ceil(scenario.durationMs / simStepMs) + 1);
  }
  if (scenario && options.progress !== false) log(`[scenario ${scenario.scenario.name}] ${scenario.scenario.description}`);

  const stats: SimStats = {
    published: 0,
    acked: 0,
    failed: 0,
    connected: 0,
    refused: 0,
    unreachable: 0,
    events: { published: 0, acked: 0, failed: 0 },
    perDevice: {},
    errors: [],
    seed,
    startTs,
    intervalMs,
    simStepMs,
    elapsedMs: 0,
  };
  for (const d of devices) {
    stats.perDevice[d.id] = {
      family: d.family,
      status: 'not-started',
      published: 0,
      acked: 0,
      failed: 0,
      sums: {},
      events: { published: 0, acked: 0, failed: 0 },
      disconnects: 0,
      ...(d.profile && d.profile !== 'generic-json' ? { profile: d.profile } : {}),
    };
  }
  let errorsSeen = 0;
  const recordError = (error: SimError): void => {
    errorsSeen += 1;
    if (stats.errors.length < MAX_ERRORS) stats.errors.push(error);
    if (errorsSeen <= MAX_LOGGED_ERRORS) log(`[device-sim] ${error.deviceId}: ${error.message}`);
    else if (errorsSeen === MAX_LOGGED_ERRORS + 1) log('[device-sim] further errors are counted but not printed');
  };

  // One stop signal for every timer and wait in the run: the caller's abort, the duration, or the end.
  const stop = new AbortController();
  const onAbort = (): void => stop.abort();
  options.signal?.addEventListener('abort', onAbort);
  if (options.signal?.aborted) stop.abort();
  const durationTimer =
    options.durationMs !== undefined ? setTimeout(() => stop.abort(), options.durationMs) : undefined;
  const stopped = new Promise<void>((resolve) => stop.signal.addEventListener('abort', () => resolve(), { once: true }));

  let pendingTotal = 0;
  let finalized = false;
  let onSettled: (() => void) | undefined;
  const connections: Link[] = [];
  const hj212Links = new Map<string, Hj212Link>();

  const stopProgress =
    options.progress === false || options.progress === undefined
      ? undefined
      : startProgress(
          (): ProgressSnapshot => ({
            elapsedMs: performance.now() - runStart,
            devices: devices.length,
            connected: stats.connected,
            published: stats.published + stats.events.published,
            acked: stats.acked + stats.events.acked,
            errors: stats.refused + stats.unreachable + stats.failed + stats.events.failed,
          }),
          options.progress === true ? {} : options.progress,
        );

  const semaphore = new Semaphore(options.connectConcurrency ?? 50);

  const runDevice = async (device: ProfiledDevice, index: number): Promise<void> => {
    const ds = stats.perDevice[device.id]!;
    const control = controls.get(device.id)!;
    const kind = control.kind;
    const mqttConn = (): MqttDevice =>
      new MqttDevice({
        url,
        id: device.id,
        secret: device.secret,
        qos,
        connectTimeoutMs,
        reconnectPeriodMs: options.reconnectPeriodMs ?? 1000,
        protocolVersion: options.mqttVersion ?? 4,
      });
    let conn: Link;
    let mqtt: MqttDevice | undefined;
    let station: Hj212Link | undefined;
    if (kind === 'hj212-tcp') {
      station = new Hj212TcpClient({
        id: device.id,
        host: options.hj212?.host ?? DEFAULT_HJ212_HOST,
        port: options.hj212?.port ?? DEFAULT_HJ212_PORT,
        answerTimeoutMs: options.hj212AnswerTimeoutMs ?? DEFAULT_ANSWER_TIMEOUT_MS,
        retries: options.hj212Retries ?? DEFAULT_RETRIES,
        reconnectDelayMs: options.reconnectPeriodMs ?? 1000,
        connectTimeoutMs,
      });
      conn = station;
    } else {
      mqtt = mqttConn();
      if (kind === 'hj212-dtu') station = new Hj212DtuLink(mqtt);
      conn = station ?? mqtt;
    }
    if (station) hj212Links.set(device.id, station);
    connections.push(conn);
    const outcome = await conn.connect();
    semaphore.release();
    if (!outcome.ok) {
      ds.status = outcome.kind;
      ds.error = outcome.reason;
      if (outcome.kind === 'refused') stats.refused += 1;
      else stats.unreachable += 1;
      recordError({ deviceId: device.id, kind: outcome.kind, message: outcome.reason });
      return;
    }
    ds.status = 'connected';
    stats.connected += 1;

    // Devices are spread evenly over one period so the total rate is smooth rather than pulsed.
    const fraction = index / devices.length;
    const phaseMs = Math.floor(fraction * simStepMs);
    const produce = makeProducer(device, kind, control, { seed, startTs, stepMs: simStepMs, phaseMs }, {
      mqtt,
      station,
      qos,
      events: options.events === true,
      nbHex: options.nbHex === true,
      ...(options.nbHeartbeatMs !== undefined ? { nbHeartbeatMs: options.nbHeartbeatMs } : {}),
      ...(options.profilesDir !== undefined ? { profilesDir: options.profilesDir } : {}),
    });
    const anchor = Math.max(runStart + fraction * intervalMs, performance.now());
    let inflight = 0;
    let roomFreed: (() => void) | undefined;

    const track = (promise: Promise<void>, onAck: () => void, onFail: (err: unknown) => void): void => {
      inflight += 1;
      pendingTotal += 1;
      let settled = false;
      const settle = (): void => {
        inflight -= 1;
        pendingTotal -= 1;
        roomFreed?.();
        roomFreed = undefined;
        onSettled?.();
      };
      promise.then(
        () => {
          if (settled || finalized) return;
          settled = true;
          onAck();
          settle();
        },
        (err: unknown) => {
          if (settled || finalized) return;
          settled = true;
          onFail(err);
          settle();
        },
      );
    };

    let seq = 0;
    let burst = 0;
    while (!stop.signal.aborted && (count === undefined || seq < count)) {
      if (conn.refusedLater) {
        ds.status = 'refused';
        ds.error = conn.refusedLater.reason;
        stats.refused += 1;
        recordError({ deviceId: device.id, kind: 'refused', message: conn.refusedLater.reason });
        break;
      }
      const wait = anchor + seq * intervalMs - performance.now();
      if (wait > 0) {
        burst = 0;
        await sleep(wait, undefined, { signal: stop.signal }).catch(() => undefined);
        continue;
      }
      if (inflight >= maxInflight) {
        // Back-pressure: wait for an acknowledgement, re-checking now and then in case the connection
        // was refused for good and none will come.
        await Promise.race([
          new Promise<void>((resolve) => (roomFreed = resolve)),
          stopped,
          sleep(1000, undefined, { ref: false }),
        ]);
        continue;
      }
      if (++burst >= BURST) {
        burst = 0;
        await yieldToLoop();
      }

      // The scenario acts first, so a step at time t affects this device's reading at t.
      scenario?.advance(startTs + phaseMs + seq * simStepMs);
      const outgoing = produce();
      seq += 1;
      for (const out of outgoing) {
        if (out.kind === 'telemetry') {
          ds.published += 1;
          stats.published += 1;
          track(
            out.send(),
            () => {
              ds.acked += 1;
              stats.acked += 1;
              for (const [name, value] of Object.entries(out.sums ?? {})) ds.sums[name] = (ds.sums[name] ?? 0) + value;
            },
            (err) => {
              if (out.faulty) {
                // The fault was the point: a refusal of it is the edge doing its job, not a failed run.
                ds.faultyUnacked = (ds.faultyUnacked ?? 0) + 1;
                ds.published -= 1;
                stats.published -= 1;
                return;
              }
              ds.failed += 1;
              stats.failed += 1;
              recordError({ deviceId: device.id, kind: 'publish', message: `telemetry not acknowledged: ${String(err)}` });
            },
          );
        } else {
          ds.events.published += 1;
          stats.events.published += 1;
          track(
            out.send(),
            () => {
              ds.events.acked += 1;
              stats.events.acked += 1;
            },
            (err) => {
              ds.events.failed += 1;
              stats.events.failed += 1;
              recordError({ deviceId: device.id, kind: 'publish', message: `event not acknowledged: ${String(err)}` });
            },
          );
        }
      }
    }
  };

  try {
    const running: Array<Promise<void>> = [];
    for (let i = 0; i < devices.length; i++) {
      await Promise.race([semaphore.acquire(), stopped]);
      if (stop.signal.aborted) break;
      running.push(runDevice(devices[i]!, i));
      const gap = options.connectIntervalMs ?? 2;
      if (gap > 0) await sleep(gap);
    }
    // A scenario that only drives parts (a fire panel, an elevator controller) and no device of the
    // run: its own clock plays the steps, one simulated step per interval, bounded by `count` steps.
    if (scenario && devices.length === 0) {
      for (let k = 0; k < (count ?? 1) && !stop.signal.aborted; k++) {
        scenario.advance(startTs + k * simStepMs);
        await Promise.race([sleep(intervalMs), stopped]);
      }
    }
    await Promise.all(running);

    // Drain: give outstanding messages a bounded time to be acknowledged.
    if (pendingTotal > 0) {
      const drainTimeoutMs = options.drainTimeoutMs ?? 10_000;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, drainTimeoutMs);
        onSettled = () => {
          if (pendingTotal === 0) {
            clearTimeout(timer);
            resolve();
          }
        };
      });
      onSettled = undefined;
    }
  } finally {
    finalized = true;
    clearTimeout(durationTimer);
    options.signal?.removeEventListener('abort', onAbort);
    stop.abort();
    await Promise.all(connections.map((c) => c.close(true)));
    for (const c of connections) stats.perDevice[c.id]!.disconnects = c.disconnects;
    for (const [id, link] of hj212Links) stats.perDevice[id]!.hj212 = { ...link.counts };
    for (const [id, c] of controls) {
      const faults = Object.fromEntries(Object.entries(c.emitted).filter(([, n]) => n > 0));
      if (Object.keys(faults).length > 0) stats.perDevice[id]!.faults = faults;
    }
    if (scenario) {
      await scenario.settle();
      stats.scenario = scenario.report();
    }
  }

  // Whatever is still outstanding was never acknowledged: count it as failed, per device and in total.
  let unackedAtEnd = 0;
  for (const [id, ds] of Object.entries(stats.perDevice)) {
    const unacked = ds.published - ds.acked - ds.failed;
    const unackedEvents = ds.events.published - ds.events.acked - ds.events.failed;
    ds.failed += unacked;
    stats.failed += unacked;
    ds.events.failed += unackedEvents;
    stats.events.failed += unackedEvents;
    if (unacked + unackedEvents > 0) {
      unackedAtEnd += unacked + unackedEvents;
      if (stats.errors.length < MAX_ERRORS) {
        stats.errors.push({
          deviceId: id,
          kind: 'publish',
          message: `${unacked + unackedEvents} message(s) still unacknowledged when the run ended`,
        });
      }
    }
  }
  if (unackedAtEnd > 0) {
    log(`[device-sim] ${unackedAtEnd} message(s) were not acknowledged before the drain timeout; counted as failed`);
  }
  stats.elapsedMs = Math.round(performance.now() - runStart);
  stopProgress?.();
  return stats;
}

/** True when the run met no refusal, no unreachable device and no failed publish. */
export function runSucceeded(stats: SimStats): boolean {
  return stats.refused === 0 && stats.unreachable === 0 && stats.failed === 0 && stats.events.failed === 0;
}

interface ProducerIo {
  mqtt: MqttDevice | undefined;
  station: Hj212Link | undefined;
  qos: Qos;
  events: boolean;
  nbHex: boolean;
  nbHeartbeatMs?: number;
  profilesDir?: string;
}

/** A device's readings, one call per step, as messages ready to send over its link. */
function makeProducer(
  device: ProfiledDevice,
  kind: DeviceKind,
  control: DeviceControl,
  timing: { seed: number | string; startTs: number; stepMs: number; phaseMs: number },
  io: ProducerIo,
): () => Outgoing[] {
  if (kind === 'hj212-tcp' || kind === 'hj212-dtu') {
    const gen = createStation(device.id, timing);
    const framer = new StationFramer(device.hj212!);
    const link = io.station!;
    return () => {
      const reading = gen.next(control);
      return framer.frames(reading, control).map((frame): Outgoing => {
        const faulty = frame.faults.some((f) => !HARMLESS.has(f));
        return {
          kind: 'telemetry',
          faulty,
          ...(faulty ? {} : { sums: frame.values }),
          send: () => {
            control.sent(frame.faults);
            return link.send(frame);
          },
        };
      });
    };
  }
  const mqtt = io.mqtt!;
  const topic = telemetryTopic(device.id);
  if (kind === 'nbiot') {
    const profile = device.profile;
    if (profile === undefined || !isNbProfile(profile)) throw new Error(`device "${device.id}": "${profile}" is not an NB-IoT profile`);
    const nb = createNbDevice(device.id, profile, {
      ...timing,
      ...(io.nbHeartbeatMs !== undefined ? { heartbeatMs: io.nbHeartbeatMs } : {}),
      ...(io.profilesDir !== undefined ? { profilesDir: io.profilesDir } : {}),
    });
    return () => {
      const frame = nb.step(control);
      if (!frame) return [];
      const faulty = frame.faults.some((f) => !HARMLESS.has(f));
      const sums: Metrics = {};
      for (const [k, v] of Object.entries(frame.values)) if (typeof v === 'number') sums[k] = v;
      const payload = io.nbHex ? frame.bytes.toString('hex').toUpperCase() : frame.bytes;
      return [
        {
          kind: 'telemetry',
          faulty,
          ...(faulty ? {} : { sums }),
          send: () => {
            control.sent(frame.faults);
            return publishRaw(mqtt, topic, payload, io.qos);
          },
        },
      ];
    };
  }
  const stream = createDeviceStream(
    { id: device.id, family: device.family, ...(device.district ? { district: device.district } : {}) },
    timing,
  );
  let stuck: { name: string; value: number } | undefined;
  return () => {
    const message = stream.next();
    const faults = control.take(message.ts);
    const metrics: Metrics = { ...message.metrics };
    const add = control.get(STATION_CONDITIONS.pm25Add, message.ts);
    if (add !== undefined && add !== 0 && metrics['pm25'] !== undefined) {
      metrics['pm25'] = Number((metrics['pm25'] + add).toFixed(1));
      if (metrics['pm10'] !== undefined) metrics['pm10'] = Math.round(metrics['pm10'] + 1.6 * add);
    }
    const first = Object.keys(metrics)[0];
    if (faults.has('stuck') && first !== undefined) {
      stuck ??= { name: first, value: metrics[first]! };
      metrics[stuck.name] = stuck.value;
    } else stuck = undefined;
    if (faults.has('out-of-range') && first !== undefined) metrics[first] = 99_999;
    let ts = message.ts;
    if (faults.has('clock-skew-future')) ts += CLOCK_SKEW_MS;
    if (faults.has('clock-skew-past')) ts -= CLOCK_SKEW_MS;
    const faulty = [...faults].some((f) => !HARMLESS.has(f));
    let send: () => Promise<void>;
    if (faults.has('malformed-json') || faults.has('nan')) {
      let text = telemetryPayload(ts, metrics);
      // NaN-ish: what sloppy firmware prints for a missing reading; JSON.stringify cannot produce it.
      if (faults.has('nan') && first !== undefined) text = text.replace(`"${first}":${JSON.stringify(metrics[first])}`, `"${first}":"NaN"`);
      // Cut off mid-object, as a buffer overrun or a lost TCP segment in a cheap gateway leaves it.
      if (faults.has('malformed-json')) text = text.slice(0, Math.max(1, text.length - 7));
      send = () => publishRaw(mqtt, topic, text, io.qos);
    } else send = () => mqtt.publishTelemetry(ts, metrics);
    const out: Outgoing[] = [
      {
        kind: 'telemetry',
        faulty,
        ...(faulty ? {} : { sums: metrics }),
        send: () => {
          control.sent(faults);
          return send();
        },
      },
    ];
    if (io.events) {
      for (const event of message.events) out.push({ kind: 'event', faulty: false, send: () => mqtt.publishEvent(message.ts, event) });
    }
    return out;
  };
}
