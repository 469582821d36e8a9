// The command line with device models: --write-registry writes profile entries (MNs, no secret for TCP
// stations) and --registry runs each entry as its profile's model.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import YAML from 'yaml';
import { afterEach, describe, expect, it } from 'vitest';
import { answerFor, Hj212StreamSplitter, parseFrame } from '@citysense/edge/hj212';
import { decodeBinary } from '@citysense/edge/binary';
import { registryFileSchema } from '../../edge/src/config/schema.ts';
import { main } from '../src/cli.ts';
import { loadNbProfile } from '../src/nbiot/profiles.ts';
import { startBroker } from './helpers/broker.ts';

let cleanup: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanup.reverse()) await c();
  cleanup = [];
});

function io() {
  const out: string[] = [];
  const err: string[] = [];
  return { out, err, io: { stdout: (t: string) => void out.push(t), stderr: (t: string) => void err.push(t) } };
}

describe('CLI with device profiles', () => {
  it('--write-registry writes entries the edge accepts, and --registry plays each as its model', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sim-reg-'));
    const file = join(dir, 'registry.yaml');
    const w = io();
    const profiles = 'hj212-air-station,hj212-air-station-dtu,nb-smoke-detector,nb-manhole-cover,nb-gas-detector';
    expect(await main(['--profiles', profiles, '--families', 'fire', '--seed', '3', '--write-registry', file, '--quiet'], w.io)).toBe(0);
    const doc = YAML.parse(readFileSync(file, 'utf8')) as { devices: Array<Record<string, unknown>> };
    // The edge's own registry schema takes the file as written.
    expect(registryFileSchema.safeParse(doc).success).toBe(true);
    const byId = Object.fromEntries(doc.devices.map((d) => [d['id'], d]));
    expect(byId['sim-hj212-air-station-0001']).toEqual({
      id: 'sim-hj212-air-station-0001',
      family: 'environment',
      district: expect.any(String) as unknown as string,
      tags: { model: 'HJ212-AQMS' },
      profile: 'hj212-air-station',
      hj212: { mn: expect.stringMatching(/^[0-9A-F]{24}$/) as unknown as string, password: '123456' },
    });
    expect(byId['sim-nb-gas-detector-0001']).toMatchObject({ family: 'nbiot', profile: 'nb-gas-detector', secret: 'sim-nb-gas-detector-0001-secret', tags: { model: 'GD-NB1' } });
    expect(byId['sim-fire-0001']).not.toHaveProperty('profile');

    // An HJ 212 listener answering like the edge, and a broker.
    const frames: string[] = [];
    const server = createServer((sock) => {
      const splitter = new Hj212StreamSplitter();
      sock.on('error', () => undefined);
      sock.on('data', (c: Buffer) => {
        for (const item of splitter.push(c)) {
          if (!('frame' in item)) continue;
          frames.push(item.frame);
          const a = answerFor(parseFrame(item.frame));
          if (a) sock.write(a);
        }
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    cleanup.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
    const broker = await startBroker();
    cleanup.push(() => broker.close());
    // A hand-written entry as the brief's shape, next to the generated ones.
    doc.devices.push({ id: 'demo-hj212-001', family: 'environment', profile: 'hj212-air-station', hj212: { mn: '010000A8900016F000169DC0', password: '123456' }, district: 'jinshui' });
    writeFileSync(file, YAML.stringify(doc));

    const r = io();
    const port = (server.address() as AddressInfo).port;
    const code = await main(
      ['--registry', file, '--url', broker.url, '--hj212', `127.0.0.1:${port}`, '--count', '5', '--interval-ms', '5', '--nb-hex', '--json-summary', '--quiet'],
      r.io,
    );
    expect(r.err.join('')).toBe('');
    expect(code).toBe(0);
    const stats = JSON.parse(r.out.join('')) as { perDevice: Record<string, { published: number; acked: number; hj212?: { answered: number } }> };
    expect(Object.keys(stats.perDevice).sort()).toEqual([...doc.devices.map((d) => d['id'] as string)].sort());
    expect(stats.perDevice['demo-hj212-001']!.hj212!.answered).toBeGreaterThanOrEqual(5);
    expect(frames.some((f) => f.includes('MN=010000A8900016F000169DC0') && f.includes('CN=2011'))).toBe(true);
    const { layout } = loadNbProfile('nb-manhole-cover');
    const manhole = broker.received.filter((m) => m.topic === 'devices/sim-nb-manhole-cover-0001/telemetry');
    expect(manhole).toHaveLength(5);
    for (const m of manhole) expect(decodeBinary(m.payload, layout).refusals).toEqual([]);
    const dtu = broker.received.filter((m) => m.topic === 'devices/sim-hj212-air-station-dtu-0001/telemetry');
    expect(dtu.every((m) => parseFrame(m.payload).ok)).toBe(true);
  });

  it('refuses an unknown profile and a bad --hj212 address as usage errors', async () => {
    const a = io();
    expect(await main(['--profiles', 'nb-toaster'], a.io)).toBe(2);
    expect(a.err.join('')).toMatch(/unknown profile "nb-toaster"/);
    const b = io();
    expect(await main(['--hj212', 'here:port'], b.io)).toBe(2);
    expect(b.err.join('')).toMatch(/expected host:port/);
  });
});
