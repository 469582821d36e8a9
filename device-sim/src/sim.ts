// The runner: connects every device (a bounded number of attempts at a time), then lets each one publish
// on its own timer until the run's stop condition, waits for outstanding acknowledgements, and reports
// what the far end acknowledged.
import { setImmediate as yieldToLoop, setTimeout as sleep } from 'node:timers/promises';
import { getFamily } from './families/index.ts';
import { startProgress, type ProgressOptions, type ProgressSnapshot } from './progress.ts';
import { generateDevices, type SimDevice } from './registry.ts';
import { createDeviceStream } from './stream.ts';
import { MqttDevice, type Qos } from './transports/mqtt.ts';

export const DEFAULT_URL = 'mqtt://127.0.0.1:1883';
/** What a run does when given no stop condition at all: a short, bounded run, never an endless one. */
export const DEFAULT_COUNT = 10;

export interface SimOptions {
  url?: string;
  /** The devices to run. When absent, `devicesPerFamily` devices are generated for each of `families`. */
  devices?: SimDevice[];
  families?: string[];
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

export function resolveDevices(options: SimOptions, seed: number | string): SimDevice[] {
  const devices =
    options.devices ??
    generateDevices({
      families: options.families ?? ['environment', 'fire', 'nbiot'],
      perFamily: options.devicesPerFamily ?? 1,
      seed,
      ...(options.idPrefix !== undefined ? { idPrefix: options.idPrefix } : {}),
    });
  const ids = new Set<string>();
  for (const d of devices) {
    if (ids.has(d.id)) throw new Error(`device "${d.id}" is listed twice`);
    ids.add(d.id);
    const family = getFamily(d.family);
    if (family.transport !== 'mqtt') {
      throw new Error(`device "${d.id}": family "${d.family}" is simulated over ${family.transport}, which this runner does not have yet`);
    }
  }
  return devices;
}

export async function runSim(options: SimOptions = {}): Promise<SimStats> {
  const seed = options.seed ?? Math.floor(Math.random() * 2 ** 31);
  const devices = resolveDevices(options, seed);
  const { intervalMs, simStepMs, count } = resolveTiming(options, devices.length);
  const qos: Qos = options.qos ?? 1;
  const url = options.url ?? DEFAULT_URL;
  const maxInflight = options.maxInflight ?? 100;
  const connectTimeoutMs = options.connectTimeoutMs ?? 10_000;
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const runStart = performance.now();
  const startTs = options.startTs ?? Date.now();

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
  const connections: MqttDevice[] = [];

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

  const runDevice = async (device: SimDevice, index: number): Promise<void> => {
    const ds = stats.perDevice[device.id]!;
    const conn = new MqttDevice({
      url,
      id: device.id,
      secret: device.secret,
      qos,
      connectTimeoutMs,
      reconnectPeriodMs: options.reconnectPeriodMs ?? 1000,
    });
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
    const stream = createDeviceStream(
      { id: device.id, family: device.family, ...(device.district ? { district: device.district } : {}) },
      { seed, startTs, stepMs: simStepMs, phaseMs: Math.floor(fraction * simStepMs) },
    );
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

      const message = stream.next();
      seq += 1;
      ds.published += 1;
      stats.published += 1;
      track(
        conn.publishTelemetry(message.ts, message.metrics),
        () => {
          ds.acked += 1;
          stats.acked += 1;
          for (const [name, value] of Object.entries(message.metrics)) {
            ds.sums[name] = (ds.sums[name] ?? 0) + value;
          }
        },
        (err) => {
          ds.failed += 1;
          stats.failed += 1;
          recordError({ deviceId: device.id, kind: 'publish', message: `telemetry not acknowledged: ${String(err)}` });
        },
      );
      if (options.events) {
        for (const event of message.events) {
          ds.events.published += 1;
          stats.events.published += 1;
          track(
            conn.publishEvent(message.ts, event),
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
