// The OPC-UA tests' kit: the edge's OPC-UA input against a controller over real TCP, with the PKI made
// once per run (e2e/setup/opcua-pki.global.ts), a TCP proxy whose link can be cut, and waits on
// conditions with a deadline (never a sleep, never a speed assertion).
//
// The controller is whatever implements `Controller`: today the simulated one (device-sim, a node-opcua
// server). No second, independent OPC-UA server can be installed here from npm or Debian (the recovery
// behaviours of issue 14 were found against Python's asyncua); a test file that runs its cases over
// `controllers()` runs them against another implementation as soon as one is added there.
import { mkdtempSync, rmSync } from 'node:fs';
import { createConnection, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { inject } from 'vitest';
import { startElevatorServer, type ElevatorServer, type ElevatorServerOptions } from '../../device-sim/src/transports/opcua-server.ts';
import { startOpcuaInput, type OpcuaDeviceBinding, type OpcuaInput, type OpcuaPkiConfig, type OpcuaSample, type OpcuaServerConfig } from '../src/inputs/opcua/index.ts';

export const pki = inject('opcuaPki');
export const silentLog = pino({ level: 'silent' });

const dirs: string[] = [];
export function tempDir(name: string): string {
  const d = mkdtempSync(join(tmpdir(), `citysense-opcua-${name}-`));
  dirs.push(d);
  return d;
}
export function removeTempDirs(): void {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
}

export async function waitFor<T>(
  what: string,
  probe: () => T | undefined | false | Promise<T | undefined | false>,
  timeoutMs = 20_000,
  detail: () => string = () => '',
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} ${detail()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The profile's metrics and the simulator's variable names. */
export const METRICS = {
  floor: 'Floor',
  direction: 'Direction',
  running: 'Running',
  door_open: 'DoorOpen',
  door_zone: 'DoorZone',
  load: 'Load',
  service_mode: 'ServiceMode',
  fault_code: 'FaultCode',
  passenger_present: 'PassengerPresent',
} as const;

export function bindingsFor(server: string, cars: number, node: (car: number, variable: string) => string = (c, v) => `ns=1;s=Car${c}.${v}`): OpcuaDeviceBinding[] {
  return Array.from({ length: cars }, (_, i) => ({
    deviceId: `elevator-${i + 1}`,
    server,
    nodes: Object.fromEntries(Object.entries(METRICS).map(([m, v]) => [m, node(i + 1, v)])),
    samplingIntervalMs: 50,
    publishingIntervalMs: 100,
  }));
}

export function serverConfig(id: string, endpoint: string, over: Partial<OpcuaServerConfig> = {}): OpcuaServerConfig {
  const secure = over.securityMode !== 'None';
  return {
    id,
    endpoint,
    securityMode: secure ? 'SignAndEncrypt' : 'None',
    securityPolicy: secure ? 'Basic256Sha256' : 'None',
    reconnect: { initialDelayMs: 100, maxDelayMs: 1000 },
    requestTimeoutMs: 5000,
    sessionTimeoutMs: 20_000,
    recoveryTimeoutMs: 30_000,
    maxSilenceMs: 30_000,
    ...over,
  };
}

export function simOptions(over: Partial<ElevatorServerOptions> & { identity: 'server' | 'rogue' }): ElevatorServerOptions {
  const id = pki[over.identity];
  return {
    port: 0,
    cars: 2,
    floors: 12,
    seed: 'opcua-input-test',
    tickMs: 50,
    floorsPerSecond: 4,
    doorDwellMs: 300,
    meanIdleMs: 300,
    security: { modes: ['SignAndEncrypt'], policies: ['Basic256Sha256'], allowAnonymous: true },
    pki: {
      dir: tempDir(`sim-${over.identity}`),
      certificateFile: id.certificateFile,
      privateKeyFile: id.privateKeyFile,
      trustedClientCertificates: [pki.client.certificateFile],
      automaticallyAcceptUnknownCertificate: false,
    },
    ...over,
  };
}

export interface Harness {
  input: OpcuaInput;
  registry: Registry;
  /** The client PKI folder (trusted/, rejected/). */
  pkiDir: string;
  samples: Array<{ deviceId: string; sample: OpcuaSample; at: number }>;
  warnings: string[];
  /** The warnings with their fields, for failure messages. */
  warningDetails: Array<{ key: string; fields: object; msg: string }>;
  metric(name: string, labels: Record<string, string>): Promise<number>;
  /** The device's state as the pipeline knows it: every sample so far, merged in order. */
  merged(deviceId: string): Record<string, unknown>;
}

export async function startInput(servers: OpcuaServerConfig[], bindings: OpcuaDeviceBinding[], pkiOver: Partial<OpcuaPkiConfig> = {}): Promise<Harness> {
  const registry = new Registry();
  const samples: Harness['samples'] = [];
  const warnings: string[] = [];
  const warningDetails: Harness['warningDetails'] = [];
  const pkiDir = pkiOver.dir ?? tempDir('client');
  const input = await startOpcuaInput({
    servers,
    bindings,
    pki: {
      dir: pkiDir,
      certificateFile: pki.client.certificateFile,
      privateKeyFile: pki.client.privateKeyFile,
      trustedServerCertificates: [pki.server.certificateFile],
      automaticallyAcceptUnknownCertificate: false,
      ...pkiOver,
    },
    onValues: async (deviceId, sample) => {
      samples.push({ deviceId, sample, at: Date.now() });
    },
    registry,
    log: silentLog,
    warn: (key, fields, msg) => {
      warnings.push(key);
      warningDetails.push({ key, fields, msg });
    },
  });
  return {
    input,
    registry,
    pkiDir,
    samples,
    warnings,
    warningDetails,
    async metric(name, labels) {
      const m = await registry.getSingleMetric(name)?.get();
      return (m?.values ?? []).filter((x) => Object.entries(labels).every(([k, l]) => x.labels[k] === l)).reduce((sum, x) => sum + x.value, 0);
    },
    merged(deviceId) {
      const out: Record<string, unknown> = {};
      for (const s of samples) if (s.deviceId === deviceId) Object.assign(out, s.sample.values);
      return out;
    },
  };
}

/**
 * A TCP proxy in front of a server: cut() destroys every connection and refuses new ones (accepted and
 * closed at once, like a link that resets) until restore(). Loopback only.
 */
export class CuttableProxy {
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  private isCut = false;
  port = 0;
  cuts = 0;

  /** Where connections go: set once the server behind it listens. */
  target = { host: '127.0.0.1', port: 0 };

  async start(): Promise<this> {
    const server = createServer((inbound) => {
      if (this.isCut) {
        inbound.destroy();
        return;
      }
      const outbound = createConnection(this.target);
      for (const s of [inbound, outbound]) {
        this.sockets.add(s);
        s.on('close', () => this.sockets.delete(s));
        s.on('error', () => undefined);
      }
      inbound.pipe(outbound);
      outbound.pipe(inbound);
      inbound.on('close', () => outbound.destroy());
      outbound.on('close', () => inbound.destroy());
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    this.server = server;
    this.port = (server.address() as AddressInfo).port;
    return this;
  }

  /** The endpoint URL through the proxy (the server must announce it: advertisedEndpoints). */
  endpoint(resourcePath = '/citysense/elevators'): string {
    return `opc.tcp://127.0.0.1:${this.port}${resourcePath}`;
  }

  cut(): void {
    this.isCut = true;
    this.cuts++;
    for (const s of this.sockets) s.destroy();
  }

  restore(): void {
    this.isCut = false;
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}

/** A controller the cases run against: the simulator today; another OPC-UA implementation when one can be installed. */
export interface Controller {
  name: string;
  endpoint: string;
  port: number;
  car(n: number): { triggerFault(code: number): void; clearFault(): void; setPassenger(p: boolean): void; setServiceMode(m: number): void; state(): Readonly<Record<string, unknown>> };
  /** Every change of the car has been published to OPC-UA. */
  settled(car: number): boolean;
  restart(): Promise<void>;
  stop(): Promise<void>;
}

export function simController(sim: ElevatorServer): Controller {
  return {
    name: 'node-opcua (device-sim)',
    endpoint: sim.endpoint,
    port: sim.port,
    car: (n) => sim.car(n) as unknown as ReturnType<Controller['car']>,
    settled: (car) => sim.pendingChanges(car) === 0,
    restart: () => sim.restart(),
    stop: () => sim.stop(),
  };
}

/** Log a measured recovery in the test output (measured, never asserted against a speed). */
export function logRecovery(what: string, ms: number, deadlineMs: number): void {
  console.log(`[opcua recovery] ${what}: ${ms} ms (configured deadline ${deadlineMs} ms)`);
}
