import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { main } from '../src/cli.ts';
import { families, generateDevices, generateMessages, runSim, runSucceeded, type SimOptions, type SimStats } from '../src/index.ts';
import { byDevice, closedPortUrl, startBroker, waitFor, type TestBroker } from './helpers/broker.ts';

const START_TS = Date.UTC(2026, 10, 23, 2, 0, 0);
let broker: TestBroker;

beforeEach(async () => {
  broker = await startBroker();
});
afterEach(async () => {
  await broker.close();
});

function quick(extra: SimOptions): SimOptions {
  return { url: broker.url, intervalMs: 5, startTs: START_TS, log: () => undefined, ...extra };
}

interface Payload {
  ts: number;
  metrics: Record<string, number>;
}

describe('runSim against a broker', () => {
  it('connects N devices per family; each publishes `count` QoS 1 messages, all acknowledged', async () => {
    const stats = await runSim(quick({ families: ['environment', 'fire', 'nbiot'], devicesPerFamily: 3, count: 15, seed: 1 }));
    expect(runSucceeded(stats)).toBe(true);
    expect(stats.connected).toBe(9);
    expect(stats.published).toBe(9 * 15);
    expect(stats.acked).toBe(9 * 15);
    expect(stats.failed).toBe(0);
    expect(Object.keys(stats.perDevice)).toHaveLength(9);
    for (const ds of Object.values(stats.perDevice)) {
      expect(ds).toMatchObject({ status: 'connected', published: 15, acked: 15, failed: 0 });
    }
    // Acks come after the broker took each message, so everything is already there.
    expect(broker.received).toHaveLength(9 * 15);
    expect(broker.received.every((r) => r.qos === 1)).toBe(true);
  });

  it('publishes the generic JSON profile with plausible values per family', async () => {
    const stats = await runSim(quick({ families: ['environment', 'fire', 'nbiot'], devicesPerFamily: 2, count: 20, seed: 2 }));
    expect(runSucceeded(stats)).toBe(true);
    for (const r of broker.received) {
      const m = /^devices\/(sim-(environment|fire|nbiot)-\d{4})\/telemetry$/.exec(r.topic);
      expect(m, r.topic).not.toBeNull();
      // Each device publishes under its own id only (the edge refuses anything else).
      expect(r.clientId).toBe(m![1]);
      const payload = JSON.parse(r.payload) as Record<string, unknown>;
      expect(Object.keys(payload).sort()).toEqual(['metrics', 'ts']);
      expect(Number.isInteger(payload.ts)).toBe(true);
      const metrics = payload.metrics as Record<string, unknown>;
      const spec = families[m![2]!]!.metrics;
      expect(Object.keys(metrics).sort()).toEqual(Object.keys(spec).sort());
      for (const [name, value] of Object.entries(metrics)) {
        expect(typeof value, name).toBe('number');
        expect(value as number).toBeGreaterThanOrEqual(spec[name]!.min);
        expect(value as number).toBeLessThanOrEqual(spec[name]!.max);
      }
      if (m![2] === 'environment') expect(metrics.pm10 as number).toBeGreaterThanOrEqual(metrics.pm25 as number);
      if (m![2] === 'fire') {
        expect(metrics.sprinkler_pressure as number).toBeGreaterThan(0.25);
        expect(metrics.sprinkler_pressure as number).toBeLessThan(0.55);
      }
      if (m![2] === 'nbiot') {
        expect(metrics.rsrp as number).toBeGreaterThanOrEqual(-120);
        expect(metrics.rsrp as number).toBeLessThanOrEqual(-70);
        expect(metrics.battery_pct as number).toBeGreaterThan(0);
      }
    }
    // Per device, timestamps step by the interval from the fixed start (plus the device's phase).
    for (const [, list] of byDevice(broker.received)) {
      const ts = (list as Payload[]).map((p) => p.ts);
      expect(ts[0]!).toBeGreaterThanOrEqual(START_TS);
      for (let i = 1; i < ts.length; i++) expect(ts[i]! - ts[i - 1]!).toBe(5);
    }
  });

  it('the same seed and start ts repeat the payloads exactly; another seed does not', async () => {
    const opts = quick({ families: ['environment', 'fire', 'nbiot'], devicesPerFamily: 2, count: 12 });
    await runSim({ ...opts, seed: 77 });
    const first = byDevice(broker.received);
    broker.received.length = 0;
    await runSim({ ...opts, seed: 77 });
    const second = byDevice(broker.received);
    broker.received.length = 0;
    await runSim({ ...opts, seed: 78 });
    const other = byDevice(broker.received);

    expect(first.size).toBe(6);
    expect(second).toEqual(first);
    expect(other.size).toBe(6);
    for (const [id, list] of first) {
      expect(list).toHaveLength(12);
      const metricsOf = (l: unknown[]): unknown[] => (l as Payload[]).map((p) => p.metrics);
      expect(metricsOf(other.get(id)!)).not.toEqual(metricsOf(list));
    }
  });

  it('reports a wrong secret as a refusal with the CONNACK reason, and the run as failed', async () => {
    const devices = generateDevices({ families: ['fire'], perFamily: 2, seed: 1 });
    devices[1] = { ...devices[1]!, secret: 'not-the-secret' };
    const lines: string[] = [];
    const stats = await runSim({ ...quick({ devices, count: 5, seed: 1 }), log: (l) => lines.push(l) });
    expect(runSucceeded(stats)).toBe(false);
    expect(stats.refused).toBe(1);
    expect(stats.connected).toBe(1);
    expect(stats.acked).toBe(5);
    const bad = stats.perDevice['sim-fire-0002']!;
    expect(bad.status).toBe('refused');
    expect(bad.published).toBe(0);
    expect(bad.error).toMatch(/bad username or password \(CONNACK 4\)/);
    expect(stats.errors).toEqual([
      { deviceId: 'sim-fire-0002', kind: 'refused', message: expect.stringMatching(/refused by broker/) as unknown as string },
    ]);
    expect(lines.join('\n')).toMatch(/sim-fire-0002: connection refused by broker: bad username or password/);
    expect(broker.refused).toEqual(['sim-fire-0002']);
  });

  it('gives up on an unreachable broker within the connect timeout and says why', async () => {
    const stats = await runSim({
      url: await closedPortUrl(),
      families: ['nbiot'],
      devicesPerFamily: 2,
      count: 3,
      connectTimeoutMs: 500,
      reconnectPeriodMs: 100,
      log: () => undefined,
    });
    expect(runSucceeded(stats)).toBe(false);
    expect(stats.unreachable).toBe(2);
    expect(stats.connected).toBe(0);
    expect(stats.perDevice['sim-nbiot-0001']!.error).toMatch(/ECONNREFUSED/);
  });

  it('per-device sums of acknowledged metrics match what the broker received', async () => {
    const stats: SimStats = await runSim(
      quick({ families: ['environment', 'fire', 'nbiot'], devicesPerFamily: 2, count: 25, seed: 5, events: true }),
    );
    expect(runSucceeded(stats)).toBe(true);
    const received = byDevice(broker.received);
    expect(received.size).toBe(6);
    for (const [id, list] of received) {
      const ds = stats.perDevice[id]!;
      expect(ds.acked).toBe(list.length);
      const sums: Record<string, number> = {};
      for (const p of list as Payload[]) {
        for (const [name, value] of Object.entries(p.metrics)) sums[name] = (sums[name] ?? 0) + value;
      }
      expect(Object.keys(ds.sums).sort()).toEqual(Object.keys(sums).sort());
      for (const [name, sum] of Object.entries(sums)) expect(ds.sums[name]).toBeCloseTo(sum, 6);
    }
    // Events, when there are any, travel on their own topic with the profile's shape.
    const events = byDevice(broker.received, 'events');
    let eventCount = 0;
    for (const [, list] of events) {
      for (const e of list as Array<Record<string, unknown>>) {
        eventCount += 1;
        expect(Object.keys(e).sort()).toEqual(['attrs', 'ts', 'type']);
        expect(typeof e.type).toBe('string');
      }
    }
    expect(stats.events.acked).toBe(eventCount);
  });

  it('publishes generated events to devices/{id}/events when asked', async () => {
    // Find, without the network, a seed whose fire device raises an event early on.
    const count = 40;
    let seed = 0;
    const hasEvent = (s: number): boolean =>
      generateMessages({ id: 'sim-fire-0001', family: 'fire' }, { seed: s, startTs: START_TS, stepMs: 5 }, count).some(
        (m) => m.events.length > 0,
      );
    while (!hasEvent(seed)) seed += 1;
    const expected = generateMessages({ id: 'sim-fire-0001', family: 'fire' }, { seed, startTs: START_TS, stepMs: 5 }, count)
      .flatMap((m) => m.events.map((e) => ({ ts: m.ts, type: e.type, attrs: e.attrs })));

    const stats = await runSim(quick({ families: ['fire'], devicesPerFamily: 1, count, seed, events: true }));
    expect(runSucceeded(stats)).toBe(true);
    expect(stats.events.acked).toBe(expected.length);
    expect(byDevice(broker.received, 'events').get('sim-fire-0001')).toEqual(expected);
    // Without --events the telemetry is the same and no event is sent.
    const telemetry = byDevice(broker.received).get('sim-fire-0001');
    broker.received.length = 0;
    await runSim(quick({ families: ['fire'], devicesPerFamily: 1, count, seed }));
    expect(byDevice(broker.received, 'events').size).toBe(0);
    expect(byDevice(broker.received).get('sim-fire-0001')).toEqual(telemetry);
  });

  it('spreads a total --rate over the devices and stops at --duration', async () => {
    const stats = await runSim({ url: broker.url, families: ['fire'], devicesPerFamily: 4, rate: 200, durationMs: 300, log: () => undefined });
    expect(stats.intervalMs).toBe(20);
    expect(runSucceeded(stats)).toBe(true);
    expect(stats.acked).toBe(stats.published);
    expect(stats.published).toBeGreaterThan(0);
    // Bounded: 300 ms at 200/s is about 60; generous slack, no timing assertion beyond "it stopped".
    expect(stats.published).toBeLessThan(200);
  });

  it('stops when the caller aborts a --forever run and still reports', async () => {
    const controller = new AbortController();
    const run = runSim({ url: broker.url, families: ['nbiot'], devicesPerFamily: 2, intervalMs: 10, forever: true, signal: controller.signal, log: () => undefined });
    await waitFor(() => broker.received.length >= 10, 'ten messages');
    controller.abort();
    const stats = await run;
    expect(stats.connected).toBe(2);
    expect(stats.failed).toBe(0);
    expect(stats.acked).toBe(stats.published);
    expect(stats.acked).toBeGreaterThanOrEqual(10);
  });

  it('keeps unacknowledged messages across a broker restart and gets them acknowledged', async () => {
    const port = Number(new URL(broker.url).port);
    const run = runSim(quick({ families: ['nbiot'], devicesPerFamily: 2, count: 40, intervalMs: 20, reconnectPeriodMs: 50, seed: 6 }));
    await waitFor(() => broker.received.length >= 10, 'some messages before the restart');
    const before = [...broker.received];
    await broker.close();
    broker = await startBroker(undefined, port);
    const stats = await run;
    expect(runSucceeded(stats)).toBe(true);
    expect(stats.acked).toBe(80);
    // At least once: every acknowledged message reached one of the two brokers (duplicates allowed).
    const seen = new Set([...before, ...broker.received].map((r) => `${r.topic} ${r.payload}`));
    const all = byDevice([...before, ...broker.received]);
    for (const [id, list] of all) {
      const distinct = new Set((list as Payload[]).map((p) => p.ts));
      expect(distinct.size, id).toBe(40);
    }
    expect(seen.size).toBe(80);
    expect(Object.values(stats.perDevice).every((d) => d.disconnects >= 1)).toBe(true);
    expect(Object.values(stats.perDevice).reduce((s, d) => s + d.acked, 0)).toBe(80);
  });

  it('copes with many devices: staggered, capped connects', async () => {
    const stats = await runSim(quick({ families: ['environment'], devicesPerFamily: 200, count: 2, intervalMs: 50, connectConcurrency: 20, connectIntervalMs: 0, seed: 3 }));
    expect(runSucceeded(stats)).toBe(true);
    expect(stats.connected).toBe(200);
    expect(stats.acked).toBe(400);
  });
});

describe('cli against a broker', () => {
  it('runs the demo devices by --device and prints a JSON summary', async () => {
    const out: string[] = [];
    const err: string[] = [];
    const code = await main(
      [
        '--url', broker.url,
        '--device', 'demo-env-001:demo-env-001-secret:environment',
        '--device', 'demo-nb-001:demo-nb-001-secret:nbiot',
        '--count', '4', '--interval-ms', '5', '--seed', '9', '--start-ts', '2026-11-23T10:00:00+08:00', '--json-summary',
      ],
      { stdout: (t) => out.push(t), stderr: (t) => err.push(t) },
    );
    expect(code).toBe(0);
    const summary = JSON.parse(out.join('')) as SimStats;
    expect(summary).toMatchObject({ published: 8, acked: 8, failed: 0, connected: 2, refused: 0, seed: 9, startTs: START_TS });
    expect(Object.keys(summary.perDevice).sort()).toEqual(['demo-env-001', 'demo-nb-001']);
    expect(err.join('')).toMatch(/done in .* published=8 acked=8/);
  });

  it('drives the devices of a registry file written by --write-registry', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'device-sim-cli-'));
    try {
      const file = join(dir, 'registry.yaml');
      const quietIo = { stdout: () => undefined, stderr: () => undefined };
      expect(await main(['--families', 'fire,nbiot', '--devices', '3', '--seed', '4', '--write-registry', file], quietIo)).toBe(0);
      const out: string[] = [];
      const code = await main(
        ['--url', broker.url, '--registry', file, '--families', 'nbiot', '--devices', '2', '--count', '3', '--interval-ms', '5', '--quiet', '--json-summary'],
        { stdout: (t) => out.push(t), stderr: () => undefined },
      );
      expect(code).toBe(0);
      const summary = JSON.parse(out.join('')) as SimStats;
      expect(Object.keys(summary.perDevice).sort()).toEqual(['sim-nbiot-0001', 'sim-nbiot-0002']);
      expect(summary.acked).toBe(6);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('exits non-zero and names the reason when the broker refuses the secret (real process)', async () => {
    const cli = fileURLToPath(new URL('../src/cli.ts', import.meta.url));
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', cli, '--url', broker.url, '--device', 'demo-fire-001:wrong-secret:fire', '--count', '2', '--quiet'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    expect(code).toBe(1);
    expect(stderr).toMatch(/demo-fire-001: connection refused by broker: bad username or password \(CONNACK 4\)/);
  });
});
