// The simulated elevator controller: the cars move (seeded, repeatable), the hooks set the variables a
// real controller would report, and restart() keeps the endpoint and the certificate. Read over a real
// OPC-UA client session; waits are on conditions with a deadline.
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AttributeIds, MessageSecurityMode, OPCUAClient, SecurityPolicy, type ClientSession } from 'node-opcua';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { DIRECTION, ElevatorCar, FAULT_CODE, SERVICE_MODE } from '../src/elevator/car.ts';
import { carNodeId, startElevatorServer, type ElevatorServer } from '../src/transports/opcua-server.ts';

const pki = inject('opcuaPki');
const dirs: string[] = [];
const tempDir = () => {
  const d = mkdtempSync(join(tmpdir(), 'citysense-sim-opcua-'));
  dirs.push(d);
  return d;
};
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

async function waitFor<T>(what: string, probe: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('ElevatorCar (pure simulation)', () => {
  const run = (seed: string) => {
    const car = new ElevatorCar({ index: 1, floors: 10, seed, floorsPerSecond: 2, doorDwellMs: 500, meanIdleMs: 500 });
    const states = [];
    for (let i = 0; i < 2000; i++) {
      car.tick(50);
      states.push(car.state());
    }
    return states;
  };

  it('moves between floors realistically and repeats with the same seed', () => {
    const a = run('s1');
    expect(run('s1')).toEqual(a);
    expect(new Set(a.map((s) => s.Floor)).size).toBeGreaterThan(3);
    for (const s of a) {
      expect(s.Floor).toBeGreaterThanOrEqual(1);
      expect(s.Floor).toBeLessThanOrEqual(10);
      // Doors never open while the car runs, and a running car has a direction.
      if (s.Running) expect(s.DoorOpen).toBe(false);
      expect(s.Running ? s.Direction !== DIRECTION.none : s.Direction === DIRECTION.none).toBe(true);
      if (s.DoorOpen) expect(s.DoorZone).toBe(true);
      expect(s.PassengerPresent).toBe(s.Load > 0);
    }
    expect(a.some((s) => s.DoorOpen)).toBe(true);
    expect(a.some((s) => s.Load > 0)).toBe(true);
  });

  it('entrapment: stopped between floors, doors shut, passenger present; clearing levels and opens', () => {
    const car = new ElevatorCar({ index: 1, floors: 10, seed: 'e' });
    car.triggerFault(FAULT_CODE.entrapment);
    for (let i = 0; i < 100; i++) car.tick(100);
    expect(car.state()).toMatchObject({ FaultCode: FAULT_CODE.entrapment, Running: false, DoorOpen: false, DoorZone: false, PassengerPresent: true, Direction: DIRECTION.none });
    car.clearFault();
    expect(car.state()).toMatchObject({ FaultCode: FAULT_CODE.none, DoorZone: true, DoorOpen: true });
  });

  it('fire return recalls the car to floor 1 and parks it there with doors open', () => {
    const car = new ElevatorCar({ index: 2, floors: 10, seed: 'f', floorsPerSecond: 2 });
    car.setServiceMode(SERVICE_MODE.fireReturn);
    for (let i = 0; i < 400; i++) car.tick(50);
    expect(car.state()).toMatchObject({ Floor: 1, Running: false, ServiceMode: SERVICE_MODE.fireReturn, PassengerPresent: false });
  });
});

describe('startElevatorServer', () => {
  let sim: ElevatorServer;
  let client: OPCUAClient;
  let session: ClientSession;
  const read = async (car: number, v: Parameters<typeof carNodeId>[1]) => (await session.read({ nodeId: carNodeId(car, v), attributeId: AttributeIds.Value })).value.value as unknown;

  beforeAll(async () => {
    sim = await startElevatorServer({
      port: 0,
      cars: 3,
      floors: 8,
      seed: 42,
      tickMs: 50,
      floorsPerSecond: 4,
      doorDwellMs: 200,
      meanIdleMs: 200,
      security: { modes: ['SignAndEncrypt'], policies: ['Basic256Sha256'], allowAnonymous: true },
      pki: {
        dir: tempDir(),
        certificateFile: pki.server.certificateFile,
        privateKeyFile: pki.server.privateKeyFile,
        trustedClientCertificates: [pki.client.certificateFile],
        automaticallyAcceptUnknownCertificate: false,
      },
    });
    client = OPCUAClient.create({
      applicationUri: pki.client.applicationUri,
      securityMode: MessageSecurityMode.SignAndEncrypt,
      securityPolicy: SecurityPolicy.Basic256Sha256,
      certificateFile: pki.client.certificateFile,
      privateKeyFile: pki.client.privateKeyFile,
      // This test is about the simulator, not about trust: the edge's tests cover that.
      verifyServerCertificate: false,
      connectionStrategy: { maxRetry: 20, initialDelay: 100, maxDelay: 500 },
    } as Parameters<typeof OPCUAClient.create>[0]);
    await client.connect(sim.endpoint);
    session = await client.createSession();
  });
  afterAll(async () => {
    await session?.close();
    await client?.disconnect();
    await sim?.stop();
  });

  it('exposes every car under ns=1 with the documented types, and the cars move', async () => {
    for (const n of [1, 2, 3]) {
      const dv = await session.read({ nodeId: carNodeId(n, 'Floor'), attributeId: AttributeIds.Value });
      expect(dv.statusCode.isGood()).toBe(true);
      expect(dv.value.dataType).toBe(4); // Int16
      expect(typeof (await read(n, 'Running'))).toBe('boolean');
      expect((await session.read({ nodeId: carNodeId(n, 'FaultCode'), attributeId: AttributeIds.Value })).value.dataType).toBe(5); // UInt16
      expect((await session.read({ nodeId: carNodeId(n, 'Load'), attributeId: AttributeIds.Value })).value.dataType).toBe(11); // Double
    }
    const floors = new Set<unknown>();
    await waitFor('car 1 at three floors', async () => {
      floors.add(await read(1, 'Floor'));
      return floors.size >= 3;
    });
  });

  it('hooks change the variables, published one variable at a time with the fault code last', async () => {
    // What a subscriber sees: every data change of car 2, in order, one per notification.
    // `message` numbers the publish responses: values in one response came together.
    const seen: Array<{ variable: string; value: unknown; message: number }> = [];
    let message = 0;
    const sub = await session.createSubscription2({ requestedPublishingInterval: 50, requestedMaxKeepAliveCount: 10, requestedLifetimeCount: 100, publishingEnabled: true });
    sub.on('received_notifications', () => message++);
    try {
      for (const v of ['FaultCode', 'DoorZone', 'DoorOpen', 'PassengerPresent', 'Running', 'Floor'] as const) {
        const item = await sub.monitor({ nodeId: carNodeId(2, v), attributeId: AttributeIds.Value }, { samplingInterval: 0, queueSize: 10, discardOldest: true }, 2);
        item.on('changed', (dv) => seen.push({ variable: v, value: dv.value.value, message }));
      }
      await waitFor('initial values', () => seen.length >= 6);
      const from = seen.length;
      sim.car(2).setPassenger(true);
      sim.car(2).triggerFault(FAULT_CODE.entrapment);
      await waitFor('every change of car 2 published', () => sim.pendingChanges(2) === 0);
      expect(await read(2, 'FaultCode')).toBe(FAULT_CODE.entrapment);
      expect(await read(2, 'DoorZone')).toBe(false);
      expect(await read(2, 'DoorOpen')).toBe(false);
      expect(await read(2, 'PassengerPresent')).toBe(true);
      expect(await read(2, 'Running')).toBe(false);
      const fault = await waitFor('the fault notification', () => seen.slice(from).find((x) => x.variable === 'FaultCode'));
      const changes = seen.slice(from);
      // The fault code is the last of the changes the fault made, and it came on its own.
      expect(changes[changes.length - 1], JSON.stringify(changes)).toBe(fault);
      expect(changes.filter((x) => x.message === fault.message), JSON.stringify(changes)).toHaveLength(1);
    } finally {
      await sub.terminate();
    }
    sim.car(2).clearFault();
    await waitFor('fault cleared', async () => (await read(2, 'FaultCode')) === FAULT_CODE.none);
    sim.car(3).setServiceMode(SERVICE_MODE.inspection);
    await waitFor('inspection', async () => (await read(3, 'ServiceMode')) === SERVICE_MODE.inspection);
    sim.car(3).setPassenger(false);
    await waitFor('no passenger', async () => (await read(3, 'PassengerPresent')) === false);
    expect(() => sim.car(4)).toThrow(RangeError);
  });

  it('restart() keeps the endpoint and the certificate; the state carries on', async () => {
    const endpoint = sim.endpoint;
    sim.car(3).triggerFault(FAULT_CODE.overspeed);
    // restart() presents the cars' whole state at once, as a rebooted controller does.
    await sim.restart();
    expect(sim.endpoint).toBe(endpoint);
    expect(sim.monitoredItemCount()).toBe(0);
    const fresh = OPCUAClient.create({
      applicationUri: pki.client.applicationUri,
      securityMode: MessageSecurityMode.SignAndEncrypt,
      securityPolicy: SecurityPolicy.Basic256Sha256,
      certificateFile: pki.client.certificateFile,
      privateKeyFile: pki.client.privateKeyFile,
      verifyServerCertificate: false,
      connectionStrategy: { maxRetry: 20, initialDelay: 100, maxDelay: 500 },
    } as Parameters<typeof OPCUAClient.create>[0]);
    try {
      await fresh.connect(endpoint);
      const endpoints = await fresh.getEndpoints();
      const own = new X509Certificate(readFileSync(pki.server.certificateFile)).raw;
      expect(Buffer.from(endpoints[0]?.serverCertificate ?? []).equals(own)).toBe(true);
      const s = await fresh.createSession();
      expect((await s.read({ nodeId: carNodeId(3, 'FaultCode'), attributeId: AttributeIds.Value })).value.value).toBe(FAULT_CODE.overspeed);
      await s.close();
    } finally {
      await fresh.disconnect();
    }
  });
});
