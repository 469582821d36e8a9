// Elevators over OPC-UA end to end: the simulated controller (node-opcua server, SignAndEncrypt with
// Basic256Sha256 and explicitly trusted certificates) → the edge's OPC-UA input and elevator profile →
// cloud → InfluxDB; an entrapment fault becomes one `entrapment` event of alarm priority.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startElevatorServer, type ElevatorServer } from '../device-sim/src/transports/opcua-server.ts';
import { FAULT_CODE } from '../device-sim/src/elevator/car.ts';
import { runSim } from '@citysense/device-sim';
import { startStack, type Stack } from './stack.ts';
import { waitFor } from './setup/influx.ts';
import './setup/opcua-pki.global.ts';

const pki = inject('opcuaPki');
let sim: ElevatorServer;
let stack: Stack;

beforeAll(async () => {
  sim = await startElevatorServer({
    port: 0,
    cars: 2,
    floors: 20,
    seed: 'e2e-elevator',
    tickMs: 50,
    security: { modes: ['SignAndEncrypt'], policies: ['Basic256Sha256'], allowAnonymous: true },
    pki: {
      dir: mkdtempSync(join(tmpdir(), 'citysense-e2e-elev-sim-')),
      certificateFile: pki.server.certificateFile,
      privateKeyFile: pki.server.privateKeyFile,
      trustedClientCertificates: [pki.client.certificateFile],
      automaticallyAcceptUnknownCertificate: false,
    },
  });
  stack = await startStack(
    'elevator',
    [
      { id: 'elev-erqi-1', family: 'elevator', district: 'erqi', profile: 'elevator-opcua', opcua: { server: 'erqi-tower', vars: { car: '1' } } },
      { id: 'elev-erqi-2', family: 'elevator', district: 'erqi', profile: 'elevator-opcua', opcua: { server: 'erqi-tower', vars: { car: '2' } } },
    ],
    {
      opcua: {
        pki: {
          dir: mkdtempSync(join(tmpdir(), 'citysense-e2e-elev-edge-')),
          certificateFile: pki.client.certificateFile,
          privateKeyFile: pki.client.privateKeyFile,
          trustedServerCertificates: [pki.server.certificateFile],
        },
        servers: [{ id: 'erqi-tower', endpoint: sim.endpoint, securityMode: 'SignAndEncrypt', securityPolicy: 'Basic256Sha256', reconnect: { initialDelayMs: 100, maxDelayMs: 1000 }, maxSilenceMs: 5000 }],
      },
    },
  );
}, 60_000);

afterAll(async () => {
  await stack?.close();
  await sim?.stop();
});

describe('OPC-UA elevator controller → edge → cloud → InfluxDB', () => {
  it('every car\'s state lands in `elevator` with the profile\'s metric names and types', async () => {
    for (const id of ['elev-erqi-1', 'elev-erqi-2']) {
      await waitFor(`${id} in InfluxDB`, async () => (await stack.influx.query(`SELECT * FROM elevator WHERE device_id = '${id}'`)).length > 0, 20_000);
    }
    const [first] = await stack.influx.query(`SELECT * FROM elevator WHERE device_id = 'elev-erqi-1' ORDER BY time ASC LIMIT 1`);
    // The first notification after subscribing carries every node at once.
    expect(first).toMatchObject({ district: 'erqi', model: 'LIFT-OPCUA', service_mode: 1, fault_code: 0 });
    for (const k of ['floor', 'direction', 'running', 'door_open', 'door_zone', 'load', 'passenger_present']) expect(first![k], k).not.toBeNull();
    const types = await stack.influx.query('SHOW FIELD KEYS FROM elevator');
    expect(types.find((t) => t.fieldKey === 'running')?.fieldType).toBe('boolean');
    expect(types.find((t) => t.fieldKey === 'floor')?.fieldType).toBe('float');
  });

  it('an entrapment (car stopped between floors, passenger inside, fault code) arrives once as an alarm event with where the car is', async () => {
    const car = sim.car(2);
    car.setPassenger(true);
    car.triggerFault(FAULT_CODE.entrapment);
    let events: Record<string, unknown>[] = [];
    await waitFor('the entrapment event', async () => {
      events = await stack.influx.query(`SELECT * FROM events WHERE device_id = 'elev-erqi-2' AND type = 'entrapment'`);
      return events.length > 0;
    }, 20_000);
    expect(events).toHaveLength(1);
    // The fault code arrives alone (the simulator publishes one variable at a time): floor, door zone
    // and passenger come from the last known values.
    await waitFor('the controller published the fault', () => sim.pendingChanges(2) === 0, 20_000);
    expect(events[0]).toMatchObject({ family: 'elevator', priority: 'alarm', district: 'erqi', attr_passenger_present: 'true', attr_door_zone: 'false' });
    expect(Number(events[0]!.attr_floor)).toBe(car.state().Floor);
    car.clearFault();
    await waitFor('entrapment_cleared', async () => (await stack.influx.query(`SELECT * FROM events WHERE device_id = 'elev-erqi-2' AND type = 'entrapment_cleared'`)).length === 1, 20_000);
    // Still exactly one entrapment: the rule is edge-triggered.
    expect(await stack.influx.query(`SELECT * FROM events WHERE device_id = 'elev-erqi-2' AND type = 'entrapment'`)).toHaveLength(1);
  });

  it('the entrapment scenario of device-sim, driving the controller, ends in one entrapment alarm', async () => {
    sim.car(1).clearFault();
    const stats = await runSim({
      url: stack.mqttUrl,
      devices: [],
      scenario: 'entrapment',
      parts: { elevators: { triggerFault: (car, code) => sim.car(car).triggerFault(code), setPassenger: (car, p) => sim.car(car).setPassenger(p), cars: () => [1] } },
      intervalMs: 50,
      simStepMs: 2_000,
      seed: 4,
      progress: false,
      log: () => undefined,
    });
    expect(stats.scenario?.executed.map((s) => [s.name, s.error])).toEqual([
      ['a passenger boards', undefined],
      ['the car stops between floors, doors shut: entrapment', undefined],
    ]);
    await waitFor('the scenario\'s entrapment', async () => (await stack.influx.query(`SELECT * FROM events WHERE device_id = 'elev-erqi-1' AND type = 'entrapment' AND priority = 'alarm'`)).length === 1, 20_000);
    sim.car(1).clearFault();
  });

  it('a controller restart is survived: values flow again without duplicated monitored items', async () => {
    await sim.restart();
    const after = Date.now();
    await waitFor('a reading after the restart', async () => (await stack.influx.query(`SELECT * FROM elevator WHERE time > ${after}ms`)).length > 0, 30_000);
    await waitFor('18 monitored items on the controller', () => sim.monitoredItemCount() === 18, 20_000);
    expect(stack.edge.health().opcua[0]).toMatchObject({ server: 'erqi-tower', state: 'connected', monitoredItems: 18 });
  });

  it('/healthz reports each OPC-UA server\'s state, and turns degraded when the controller falls silent', async () => {
    await waitFor('healthy', () => stack.edge.health().opcua[0]?.healthy === true, 20_000);
    const res = await fetch(`http://127.0.0.1:${stack.edge.httpPort}/healthz`);
    const body = (await res.json()) as { opcua: Array<Record<string, unknown>> };
    expect(body.opcua[0]).toMatchObject({ server: 'erqi-tower', connected: true, healthy: true, monitoredItems: 18, boundItems: 18, itemsRefused: 0 });
    expect(typeof body.opcua[0]!.secondsSinceNotification).toBe('number');
    expect(body.opcua[0]).toHaveProperty('recoveries');
    const metrics = await (await fetch(`http://127.0.0.1:${stack.edge.httpPort}/metrics`)).text();
    expect(metrics).toMatch(/citysense_edge_opcua_healthy\{server="erqi-tower"\} 1/);
    expect(metrics).toMatch(/citysense_edge_opcua_seconds_since_notification\{server="erqi-tower"\} [0-9.]+/);
    // The controller goes away: after maxSilenceMs health is degraded and says why.
    await sim.stop();
    await waitFor('degraded: silent', () => stack.edge.health().status === 'degraded' && stack.edge.health().opcua[0]?.problem === 'silent', 30_000);
  });
});
