// The OPC-UA input against the real simulated elevator controller (device-sim), over
// SignAndEncrypt + Basic256Sha256 with explicitly trusted certificates made once per run
// (e2e/setup/opcua-pki.global.ts). Waits are on conditions with a deadline; nothing is timed.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startElevatorServer, type ElevatorServer } from '../../device-sim/src/transports/opcua-server.ts';
import { FAULT_CODE, SERVICE_MODE } from '../../device-sim/src/elevator/car.ts';
import { METRICS, bindingsFor, removeTempDirs, serverConfig as config, simOptions, startInput, waitFor, type Harness } from './opcua-kit.ts';

const serverConfig = (id: string, endpoint: string, secure = true) => config(id, endpoint, secure ? {} : { securityMode: 'None', securityPolicy: 'None' });

afterAll(removeTempDirs);

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

  it('values arrive one variable at a time, as controllers send them; a fault code alone still carries where the car is', async () => {
    // The simulator publishes each changed variable on its own (changeSpacingMs), so most samples
    // after the first hold a single value: the last known others travel as context.
    await waitFor('single-value samples while the cars move', () => h.samples.filter((x) => Object.keys(x.sample.values).length === 1).length >= 5);
    const from = h.samples.length;
    sim.car(1).setPassenger(true);
    sim.car(1).triggerFault(FAULT_CODE.entrapment);
    const s = await waitFor('fault sample', () => h.samples.slice(from).find((x) => x.deviceId === 'elevator-1' && x.sample.values.fault_code === FAULT_CODE.entrapment));
    await waitFor('the controller published every change of car 1', () => sim.pendingChanges(1) === 0);
    // The fault code came alone (the motion it caused went first), and its sample knows the rest.
    expect(Object.keys(s.sample.values)).toEqual(['fault_code']);
    const car = sim.car(1).state();
    expect(s.sample.context).toMatchObject({ floor: car.Floor, door_zone: false, door_open: false, running: false, passenger_present: true });
    expect(s.sample.ts).toBeGreaterThan(0);
    const before = h.samples.length;
    sim.car(1).clearFault();
    await waitFor('fault cleared', () => h.samples.slice(before).find((x) => x.deviceId === 'elevator-1' && x.sample.values.fault_code === FAULT_CODE.none));
    // Delivered once each: no value repeats what the pipeline already has.
    expect(h.samples.filter((x) => x.deviceId === 'elevator-1' && x.sample.values.fault_code === FAULT_CODE.entrapment)).toHaveLength(1);
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
      // Who refused what, and what to do: the edge refused the rogue's certificate, filed in rejected/.
      expect(st.lastError).toMatch(/^server_certificate_untrusted: the edge refused the server's certificate \(.*CN=citysense-rogue.*SHA-1 [0-9a-f]{40}.*BadCertificateUntrusted/);
      expect(st.lastError).toContain(`${h.pkiDir}/rejected/`);
      expect(st.lastError).toContain(`to ${h.pkiDir}/trusted/certs/`);
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
