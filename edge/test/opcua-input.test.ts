// The OPC-UA input against the real simulated elevator controller (device-sim), over
// SignAndEncrypt + Basic256Sha256 with explicitly trusted certificates made once per run
// (e2e/setup/opcua-pki.global.ts). Waits are on conditions with a deadline; nothing is timed.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startElevatorServer, type ElevatorServer, type ElevatorServerOptions } from '../../device-sim/src/transports/opcua-server.ts';
import { FAULT_CODE, SERVICE_MODE } from '../../device-sim/src/elevator/car.ts';
import { startOpcuaInput, type OpcuaDeviceBinding, type OpcuaInput, type OpcuaSample, type OpcuaServerConfig } from '../src/inputs/opcua/index.ts';

const pki = inject('opcuaPki');
const log = pino({ level: 'silent' });
const dirs: string[] = [];
const tempDir = (name: string) => {
  const d = mkdtempSync(join(tmpdir(), `citysense-opcua-${name}-`));
  dirs.push(d);
  return d;
};

async function waitFor<T>(
  what: string,
  probe: () => T | undefined | false | Promise<T | undefined | false>,
  timeoutMs = 20_000,
  detail: () => string = () => '',
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what} ${detail()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const METRICS = {
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

function bindingsFor(server: string, cars: number): OpcuaDeviceBinding[] {
  return Array.from({ length: cars }, (_, i) => ({
    deviceId: `elevator-${i + 1}`,
    server,
    nodes: Object.fromEntries(Object.entries(METRICS).map(([m, v]) => [m, `ns=1;s=Car${i + 1}.${v}`])),
    samplingIntervalMs: 50,
    publishingIntervalMs: 100,
  }));
}

function serverConfig(id: string, endpoint: string, secure = true): OpcuaServerConfig {
  return {
    id,
    endpoint,
    securityMode: secure ? 'SignAndEncrypt' : 'None',
    securityPolicy: secure ? 'Basic256Sha256' : 'None',
    reconnect: { initialDelayMs: 100, maxDelayMs: 1000 },
    requestTimeoutMs: 5000,
    sessionTimeoutMs: 20_000,
  };
}

function simOptions(over: Partial<ElevatorServerOptions> & { identity: 'server' | 'rogue' }): ElevatorServerOptions {
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

interface Harness {
  input: OpcuaInput;
  registry: Registry;
  samples: Array<{ deviceId: string; sample: OpcuaSample }>;
  warnings: string[];
  metric(name: string, labels: Record<string, string>): Promise<number>;
}

async function startInput(servers: OpcuaServerConfig[], bindings: OpcuaDeviceBinding[]): Promise<Harness> {
  const registry = new Registry();
  const samples: Harness['samples'] = [];
  const warnings: string[] = [];
  const input = await startOpcuaInput({
    servers,
    bindings,
    pki: {
      dir: tempDir('client'),
      certificateFile: pki.client.certificateFile,
      privateKeyFile: pki.client.privateKeyFile,
      trustedServerCertificates: [pki.server.certificateFile],
      automaticallyAcceptUnknownCertificate: false,
    },
    onValues: async (deviceId, sample) => {
      samples.push({ deviceId, sample });
    },
    registry,
    log,
    warn: (key) => warnings.push(key),
  });
  return {
    input,
    registry,
    samples,
    warnings,
    async metric(name, labels) {
      const m = await registry.getSingleMetric(name)?.get();
      const v = m?.values.find((x) => Object.entries(labels).every(([k, l]) => x.labels[k] === l));
      return v?.value ?? 0;
    },
  };
}

afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe('OPC-UA input, SignAndEncrypt + Basic256Sha256, explicit trust', () => {
  let sim: ElevatorServer;
  let h: Harness;
  const bindings = bindingsFor('ctrl', 2);

  beforeAll(async () => {
    sim = await startElevatorServer(simOptions({ identity: 'server' }));
    h = await startInput([serverConfig('ctrl', sim.endpoint)], bindings);
  });
  afterAll(async () => {
    await h?.input.close();
    await sim?.stop();
  });

  it('delivers the current values of every node of every car, named by the binding', async () => {
    for (const deviceId of ['elevator-1', 'elevator-2']) {
      const first = await waitFor(`first sample of ${deviceId}`, () => h.samples.find((s) => s.deviceId === deviceId));
      // The initial notification carries all nodes of the device at once: one sample.
      expect(Object.keys(first.sample.values).sort()).toEqual(Object.keys(METRICS).sort());
      const car = sim.car(Number(deviceId.slice(-1))).state();
      expect(typeof first.sample.values.floor).toBe('number');
      expect(typeof first.sample.values.running).toBe('boolean');
      expect(typeof first.sample.values.load).toBe('number');
      expect(first.sample.values.service_mode).toBe(SERVICE_MODE.normal);
      expect(first.sample.values.fault_code).toBe(car.FaultCode);
      expect(first.sample.quality).toBeUndefined();
      expect(first.sample.ts).toBeGreaterThan(0);
    }
    // The first values can arrive before the input has asked the server for its monitored-item count.
    await waitFor('the input to report connected with 18 items', () => {
      const st = h.input.status()[0];
      return st?.state === 'connected' && st.monitoredItems === 18;
    });
    expect(h.input.status()).toEqual([expect.objectContaining({ server: 'ctrl', state: 'connected', monitoredItems: 18 })]);
    expect(sim.monitoredItemCount()).toBe(18);
    expect(await h.metric('citysense_edge_opcua_connected', { server: 'ctrl' })).toBe(1);
    expect(await h.metric('citysense_edge_opcua_monitored_items', { server: 'ctrl' })).toBe(18);
  });

  it('follows the cars as they move', async () => {
    const floors = new Set<unknown>();
    await waitFor('car 1 at three different floors', () => {
      for (const s of h.samples) if (s.deviceId === 'elevator-1' && 'floor' in s.sample.values) floors.add(s.sample.values.floor);
      return floors.size >= 3;
    });
  });

  it('carries an entrapment scenario (a FaultCode change) with the state around it', async () => {
    const from = h.samples.length;
    sim.car(1).setPassenger(true);
    sim.car(1).triggerFault(FAULT_CODE.entrapment);
    const s = await waitFor('fault sample', () => h.samples.slice(from).find((x) => x.deviceId === 'elevator-1' && x.sample.values.fault_code === FAULT_CODE.entrapment));
    // Merged view of what arrived since the fault: stopped between floors, doors shut, somebody inside.
    // The car's state as the edge knows it: every sample so far, merged (values that did not change
    // at the fault are not sent again).
    const seen = await waitFor('entrapment state', () => {
      const merged: Record<string, unknown> = {};
      for (const x of h.samples) if (x.deviceId === 'elevator-1') Object.assign(merged, x.sample.values);
      return merged.door_zone === false && merged.passenger_present === true ? merged : undefined;
    });
    expect(seen).toMatchObject({ fault_code: FAULT_CODE.entrapment, running: false, door_open: false, door_zone: false, passenger_present: true });
    expect(s.sample.ts).toBeGreaterThan(0);
    const before = h.samples.length;
    sim.car(1).clearFault();
    await waitFor('fault cleared', () => h.samples.slice(before).find((x) => x.deviceId === 'elevator-1' && x.sample.values.fault_code === FAULT_CODE.none));
  });

  it('survives a restart of the controller: reconnects, resubscribes, no duplicate and no lost monitored item', async () => {
    const reconnects = await h.metric('citysense_edge_opcua_reconnects_total', { server: 'ctrl' });
    const resubscriptions = await h.metric('citysense_edge_opcua_resubscriptions_total', { server: 'ctrl' });
    await sim.restart();
    await waitFor('reconnect counted', async () => (await h.metric('citysense_edge_opcua_reconnects_total', { server: 'ctrl' })) > reconnects);
    await waitFor('resubscription counted', async () => (await h.metric('citysense_edge_opcua_resubscriptions_total', { server: 'ctrl' })) > resubscriptions);
    await waitFor('18 monitored items on the restarted server', () => sim.monitoredItemCount() === 18);
    await waitFor('connected again', () => h.input.status()[0]?.state === 'connected');

    // Values flow again: a change made after the restart arrives.
    const from = h.samples.length;
    sim.car(2).setServiceMode(SERVICE_MODE.inspection);
    await waitFor('service mode after restart', () => h.samples.slice(from).find((x) => x.deviceId === 'elevator-2' && x.sample.values.service_mode === SERVICE_MODE.inspection));
    sim.car(2).setServiceMode(SERVICE_MODE.normal);
    await waitFor('car 1 moving after restart', () => h.samples.slice(from).some((x) => x.deviceId === 'elevator-1' && 'floor' in x.sample.values));

    // Exactly one item per binding, as the server counts them, and as the input reports them.
    expect(sim.monitoredItemCount()).toBe(18);
    expect(sim.sessionCount()).toBe(1);
    await waitFor('gauge at 18', async () => (await h.metric('citysense_edge_opcua_monitored_items', { server: 'ctrl' })) === 18);
    expect(h.input.status()[0]).toMatchObject({ state: 'connected', monitoredItems: 18, reconnects: reconnects + 1 });
    expect(await h.metric('citysense_edge_opcua_connected', { server: 'ctrl' })).toBe(1);
    expect(await h.metric('citysense_edge_opcua_session_errors_total', { server: 'ctrl', reason: 'duplicate_monitored_item' })).toBe(0);
  });

  it('refuses SecurityMode None when the controller does not offer it', async () => {
    const none = await startInput([serverConfig('plain', sim.endpoint, false)], bindingsFor('plain', 1));
    try {
      const st = await waitFor('refusal', () => {
        const s = none.input.status()[0];
        return s?.state === 'down' ? s : undefined;
      }, 20_000, () => JSON.stringify(none.input.status()));
      expect(st.lastError).toMatch(/^endpoint_not_offered/);
      expect(await none.metric('citysense_edge_opcua_session_errors_total', { server: 'plain', reason: 'endpoint_not_offered' })).toBeGreaterThan(0);
      expect(none.samples).toEqual([]);
    } finally {
      await none.input.close();
    }
  });
});

describe('OPC-UA input: trust and security mode', () => {
  it('refuses a server whose certificate it was not told to trust, and gets no values', async () => {
    const rogue = await startElevatorServer(simOptions({ identity: 'rogue' }));
    const h = await startInput([serverConfig('rogue', rogue.endpoint)], bindingsFor('rogue', 2));
    try {
      const st = await waitFor('refusal', () => {
        const s = h.input.status()[0];
        return s?.state === 'down' ? s : undefined;
      });
      expect(st.lastError).toMatch(/^server_certificate_untrusted: .*BadCertificateUntrusted/);
      expect(await h.metric('citysense_edge_opcua_session_errors_total', { server: 'rogue', reason: 'server_certificate_untrusted' })).toBeGreaterThan(0);
      expect(await h.metric('citysense_edge_opcua_connected', { server: 'rogue' })).toBe(0);
      expect(h.warnings).toContain('opcua_server_certificate_untrusted');
      expect(h.samples).toEqual([]);
      expect(rogue.monitoredItemCount()).toBe(0);
    } finally {
      await h.input.close();
      await rogue.stop();
    }
  });

  it('works with SecurityMode None where the controller offers it and the edge is configured for it', async () => {
    const sim = await startElevatorServer(
      simOptions({ identity: 'server', security: { modes: ['None', 'SignAndEncrypt'], policies: ['None', 'Basic256Sha256'], allowAnonymous: true } }),
    );
    const h = await startInput([serverConfig('plain', sim.endpoint, false)], bindingsFor('plain', 1));
    try {
      const first = await waitFor('a sample over None', () => h.samples.find((s) => s.deviceId === 'elevator-1'));
      expect(Object.keys(first.sample.values)).toHaveLength(9);
      expect(sim.monitoredItemCount()).toBe(9);
    } finally {
      await h.input.close();
      await sim.stop();
    }
  });
});
