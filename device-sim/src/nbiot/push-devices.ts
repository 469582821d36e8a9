// NB-IoT devices that reach the city through an operator platform's push, simulated end to end: the
// device's own behaviour (nbiot/devices.ts: heartbeats, reports at once on an alarm) and the platform's
// push of each report (transports/ctwing-push.ts, onenet-push.ts). Real time, one report per interval.
import { DeviceControl } from '../scenarios/control.ts';
import { createNbDevice, NB_CONDITIONS } from './devices.ts';
import { CtwingPush, type CtwingIdentity, type PushAttempt, type PushCounts } from '../transports/ctwing-push.ts';
import { OnenetStudioPush, type StudioDevice } from '../transports/onenet-push.ts';
import { createRng } from '../rng.ts';

export interface PushDevice {
  readonly id: string;
  readonly counts: PushCounts;
  /** One report now (a heartbeat, or what the device's state makes it send). */
  report(): Promise<PushAttempt | undefined>;
  /** Scenario hook: the device sees this much smoke (%/m) or gas (%LEL) from now on, and reports at once. */
  condition(level: number): Promise<PushAttempt | undefined>;
  stop(): void;
}

interface Common {
  id: string;
  url: string;
  seed: number | string;
  /** Between heartbeats; 0 = only when report() or condition() is called. */
  intervalMs: number;
  retryDelayMs?: number;
  onError?: (err: Error) => void;
}

function every(ms: number, f: () => Promise<unknown>, onError?: (err: Error) => void): () => void {
  if (ms <= 0) return () => undefined;
  const t = setInterval(() => void f().catch((e: Error) => onError?.(e)), ms);
  t.unref();
  return () => clearInterval(t);
}

/** An NB-IoT smoke detector (profile nb-smoke-detector) on a CTWing transparent product. */
export function startCtwingSmokeDetector(o: Common & { identity: CtwingIdentity }): PushDevice {
  const push = new CtwingPush({ url: o.url, retryDelayMs: o.retryDelayMs ?? 1000 }, o.identity);
  const control = new DeviceControl(o.id, 'nbiot', 'nb-smoke-detector', 'nbiot');
  const start = Date.now();
  const device = createNbDevice(o.id, 'nb-smoke-detector', { seed: o.seed, startTs: start, stepMs: Math.max(1, o.intervalMs), heartbeatMs: Math.max(1, o.intervalMs) });
  const report = async () => {
    const frame = device.step(control);
    // The platform stamps the time it received the uplink.
    return frame ? push.dataReport(frame.bytes, Date.now()) : undefined;
  };
  void push.onlineOffline(true).catch((e: Error) => o.onError?.(e));
  const stop = every(o.intervalMs, report, o.onError);
  return {
    id: o.id,
    counts: push.counts,
    report,
    async condition(level) {
      control.set(NB_CONDITIONS.smoke, level, 0);
      return report();
    },
    stop,
  };
}

/** A combustible-gas detector (profile onenet-gas-detector) on OneNET Studio, properties by identifier. */
export function startOnenetStudioGasDetector(o: Common & { device: StudioDevice; token: string; aesKey?: string }): PushDevice {
  const push = new OnenetStudioPush({ url: o.url, token: o.token, aesKey: o.aesKey, retryDelayMs: o.retryDelayMs ?? 1000 }, o.device);
  const rng = createRng('citysense-sim-onenet', o.seed, o.id);
  let lel = rng.uniform(0, 2);
  let battery = rng.uniform(60, 100);
  let forced: number | undefined;
  const report = () => {
    lel = Math.max(0, Math.min(100, lel + 0.2 * rng.normal()));
    battery = Math.max(0, battery - 0.01);
    const gas = forced ?? lel;
    return push.property({ GasConcentration: Math.round(gas * 10) / 10, BatteryLevel: Math.floor(battery), RSRP: Math.round(-100 + 6 * rng.normal()), AlarmState: gas >= 25 });
  };
  const stop = every(o.intervalMs, report, o.onError);
  return {
    id: o.id,
    counts: push.counts,
    report,
    condition(level) {
      forced = level;
      return report();
    },
    stop,
  };
}
