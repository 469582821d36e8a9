// The station's TCP link against a small real HJ 212 server (answers with the edge's own answerFor),
// and the DTU mode over a throwaway MQTT broker.
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { answerFor, frameToReadings, Hj212StreamSplitter, parseFrame } from '@citysense/edge/hj212';
import { buildDataFrame } from '../src/protocols/hj212.ts';
import { Hj212Refused, Hj212TcpClient } from '../src/transports/hj212-tcp.ts';
import { generateProfileDevices, runSim, runSucceeded } from '../src/sim.ts';
import { startBroker, waitFor } from './helpers/broker.ts';

const START = Date.parse('2026-01-15T10:00:00+08:00');
const ID = { mn: '010000A8900016F000169DC0', password: '123456' };

interface TestServer {
  port: number;
  /** Every frame received, as text, in order (retries included). */
  frames: string[];
  /** Frames to leave unanswered (checked in order: true = stay silent once). */
  silentNext: number;
  /** Close the live connections (the station must reconnect). */
  dropConnections(): void;
  connections: number;
  close(): Promise<void>;
}

async function startHj212Server(): Promise<TestServer> {
  const sockets = new Set<Socket>();
  const state: TestServer = {
    port: 0,
    frames: [],
    silentNext: 0,
    connections: 0,
    dropConnections: () => {
      for (const s of sockets) s.destroy();
    },
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  const server: Server = createServer((sock) => {
    sockets.add(sock);
    state.connections += 1;
    sock.on('close', () => sockets.delete(sock));
    sock.on('error', () => undefined);
    const splitter = new Hj212StreamSplitter();
    sock.on('data', (chunk: Buffer) => {
      for (const item of splitter.push(chunk)) {
        if (!('frame' in item)) continue;
        state.frames.push(item.frame);
        if (state.silentNext > 0) {
          state.silentNext -= 1;
          continue;
        }
        const answer = answerFor(parseFrame(item.frame));
        if (answer) sock.write(answer);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  state.port = (server.address() as AddressInfo).port;
  return state;
}

const frame = (i: number, badCrc = false) =>
  buildDataFrame({ cn: '2011', sentMs: START + i * 1000, dataTimeMs: START + i * 1000, ...ID, params: { a34004: { rtd: 30 + i } }, badCrc });

let cleanup: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanup.reverse()) await c();
  cleanup = [];
});

describe('HJ 212 TCP station link', () => {
  it('sends, waits for the 9014 with the same QN, retries an unanswered frame with the same QN, and counts', async () => {
    const server = await startHj212Server();
    cleanup.push(() => server.close());
    const client = new Hj212TcpClient({ id: 'st', port: server.port, answerTimeoutMs: 300, retries: 3, reconnectDelayMs: 50 });
    cleanup.push(() => client.close());
    expect(await client.connect()).toEqual({ ok: true });

    await client.send(frame(0));
    server.silentNext = 1;
    await client.send(frame(1));
    await client.send(frame(2));

    // Frame 1 went twice, with the same bytes (same QN); the others once.
    const qns = server.frames.map((f) => /QN=(\d+)/.exec(f)![1]);
    expect(qns).toEqual([frame(0).qn, frame(1).qn, frame(1).qn, frame(2).qn]);
    expect(server.frames[1]).toBe(server.frames[2]);
    expect(client.counts).toEqual({ sent: 3, answered: 3, retried: 1, failed: 0, refused: 0, unanswered: 0 });
  });

  it('gives a frame up after the configured retries', async () => {
    const server = await startHj212Server();
    cleanup.push(() => server.close());
    const client = new Hj212TcpClient({ id: 'st', port: server.port, answerTimeoutMs: 100, retries: 2, reconnectDelayMs: 50 });
    cleanup.push(() => client.close());
    await client.connect();
    server.silentNext = 3;
    await expect(client.send(frame(0))).rejects.toThrow(/no 9014 answer to QN=\d{17} after 3 attempt/);
    await client.send(frame(1));
    expect(client.counts).toMatchObject({ sent: 2, answered: 1, retried: 2, failed: 1 });
    expect(server.frames).toHaveLength(4);
  });

  it('takes a 9011 refusal (bad CRC → QnRtn 9) as refused, without retrying', async () => {
    const server = await startHj212Server();
    cleanup.push(() => server.close());
    const client = new Hj212TcpClient({ id: 'st', port: server.port, answerTimeoutMs: 2000, reconnectDelayMs: 50 });
    cleanup.push(() => client.close());
    await client.connect();
    const err = await client.send(frame(0, true)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Hj212Refused);
    expect((err as Hj212Refused).qnRtn).toBe(9);
    expect(client.counts).toMatchObject({ sent: 1, refused: 1, retried: 0, answered: 0 });
  });

  it('reconnects when the connection drops and delivers what was in flight', async () => {
    const server = await startHj212Server();
    cleanup.push(() => server.close());
    const client = new Hj212TcpClient({ id: 'st', port: server.port, answerTimeoutMs: 5000, reconnectDelayMs: 50 });
    cleanup.push(() => client.close());
    await client.connect();
    await client.send(frame(0));
    server.silentNext = 1;
    const pending = client.send(frame(1));
    await waitFor(() => server.frames.length === 2, 'the second frame at the server');
    server.dropConnections();
    await pending;
    expect(client.disconnects).toBe(1);
    expect(server.connections).toBe(2);
    expect(client.counts).toMatchObject({ sent: 2, answered: 2, retried: 1 });
  });

  it('reports an unreachable listener within the connect timeout', async () => {
    const server = await startHj212Server();
    const port = server.port;
    await server.close();
    const client = new Hj212TcpClient({ id: 'st', port, connectTimeoutMs: 300, reconnectDelayMs: 50 });
    const outcome = await client.connect();
    expect(outcome).toMatchObject({ ok: false, kind: 'unreachable', reason: expect.stringMatching(/ECONNREFUSED/) as unknown as string });
  });

  it('runSim drives hj212-air-station devices over TCP: every frame answered, sums are the sent real-time values', async () => {
    const server = await startHj212Server();
    cleanup.push(() => server.close());
    const devices = generateProfileDevices({ profiles: ['hj212-air-station'], perProfile: 2, seed: 4 });
    const stats = await runSim({
      devices,
      hj212: { port: server.port },
      count: 30,
      intervalMs: 5,
      simStepMs: 10_000,
      seed: 4,
      startTs: START,
      log: () => undefined,
    });
    expect(runSucceeded(stats)).toBe(true);
    for (const d of devices) {
      const ds = stats.perDevice[d.id]!;
      // 30 real-time frames at 10 s: 4 completed minutes (sometimes 5 with the phase), no hour.
      expect(ds.hj212!.sent).toBe(ds.published);
      expect(ds.hj212!.answered).toBe(ds.published);
      expect(ds.published).toBeGreaterThanOrEqual(34);
      const mine = server.frames.filter((f) => f.includes(`MN=${d.hj212!.mn}`));
      expect(mine).toHaveLength(ds.published);
      let pm25 = 0;
      for (const f of mine) {
        const p = parseFrame(f);
        if (!p.ok) throw new Error(p.message);
        if (p.frame.cn === '2011') pm25 += frameToReadings(p.frame).readings[0]!.values['a34004']!;
      }
      expect(ds.sums['a34004']).toBeCloseTo(pm25, 6);
    }
  });
});

describe('HJ 212 DTU mode', () => {
  it('publishes the same frames on devices/{id}/telemetry at QoS 1 with the device secret', async () => {
    const broker = await startBroker();
    cleanup.push(() => broker.close());
    const devices = generateProfileDevices({ profiles: ['hj212-air-station-dtu'], perProfile: 1, seed: 8 });
    const stats = await runSim({ url: broker.url, devices, count: 12, intervalMs: 5, simStepMs: 10_000, seed: 8, startTs: START, log: () => undefined });
    expect(runSucceeded(stats)).toBe(true);
    const d = devices[0]!;
    const got = broker.received.filter((r) => r.topic === `devices/${d.id}/telemetry`);
    expect(got.length).toBe(stats.perDevice[d.id]!.acked);
    expect(got.every((r) => r.qos === 1 && r.clientId === d.id)).toBe(true);
    const cns = got.map((r) => {
      const p = parseFrame(r.payload);
      if (!p.ok) throw new Error(p.message);
      expect(p.frame.mn).toBe(d.hj212!.mn);
      return p.frame.cn;
    });
    expect(cns.filter((c) => c === '2011')).toHaveLength(12);
    expect(cns).toContain('2051');
  });
});
