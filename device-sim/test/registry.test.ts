import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { main } from '../src/cli.ts';
import { DISTRICTS, generateDevices, parseDeviceSpec, parseRegistry, registryYaml } from '../src/index.ts';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'device-sim-registry-'));
  dirs.push(d);
  return d;
}

function captureIo(): { out: string[]; err: string[]; io: { stdout: (t: string) => void; stderr: (t: string) => void } } {
  const out: string[] = [];
  const err: string[] = [];
  return { out, err, io: { stdout: (t) => out.push(t), stderr: (t) => err.push(t) } };
}

describe('device registry', () => {
  it('generates sim-<family>-<nnnn> ids with <id>-secret, districts from the seed', () => {
    const devices = generateDevices({ families: ['environment', 'fire'], perFamily: 3, seed: 1 });
    expect(devices.map((d) => d.id)).toEqual([
      'sim-environment-0001',
      'sim-environment-0002',
      'sim-environment-0003',
      'sim-fire-0001',
      'sim-fire-0002',
      'sim-fire-0003',
    ]);
    for (const d of devices) {
      expect(d.secret).toBe(`${d.id}-secret`);
      expect(DISTRICTS).toContain(d.district);
      expect(typeof d.tags?.model).toBe('string');
    }
    expect(generateDevices({ families: ['environment', 'fire'], perFamily: 3, seed: 1 })).toEqual(devices);
    // A device keeps its district when the run grows.
    const more = generateDevices({ families: ['environment', 'fire'], perFamily: 5, seed: 1 });
    expect(more.find((d) => d.id === 'sim-fire-0002')).toEqual(devices.find((d) => d.id === 'sim-fire-0002'));
  });

  it('parses --device specs, secrets with colons included', () => {
    expect(parseDeviceSpec('demo-env-001:demo-env-001-secret:environment')).toEqual({
      id: 'demo-env-001',
      secret: 'demo-env-001-secret',
      family: 'environment',
    });
    expect(parseDeviceSpec('a:b:c:nbiot')).toEqual({ id: 'a', secret: 'b:c', family: 'nbiot' });
    expect(() => parseDeviceSpec('a:b')).toThrow(/<id>:<secret>:<family>/);
    expect(() => parseDeviceSpec('a:b:elevatorx')).toThrow(/unknown device family/);
    expect(() => parseDeviceSpec('a/b:secret:fire')).toThrow(/may not contain/);
  });

  it("reads the edge's registry shape and skips what it cannot drive over MQTT", () => {
    const text = `
devices:
  - id: demo-env-001
    family: environment
    secret: demo-env-001-secret
    district: jinshui
    tags: { model: AQM-500 }
  - id: demo-elev-001
    family: elevator
    district: erqi
  - id: hashed-001
    family: fire
    secretSha256: ${'a'.repeat(64)}
    district: erqi
`;
    const loaded = parseRegistry(text, 'reg.yaml');
    expect(loaded.devices).toEqual([
      { id: 'demo-env-001', family: 'environment', secret: 'demo-env-001-secret', district: 'jinshui', tags: { model: 'AQM-500' } },
    ]);
    expect(loaded.skipped.map((s) => s.id)).toEqual(['demo-elev-001', 'hashed-001']);
    expect(loaded.skipped[1]!.reason).toMatch(/secretSha256/);
    expect(() => parseRegistry('devices: 3', 'bad.yaml')).toThrow(/bad.yaml/);
  });

  it('round-trips through registryYaml in the edge shape', () => {
    const devices = generateDevices({ families: ['nbiot'], perFamily: 2, seed: 8 });
    const doc = YAML.parse(registryYaml(devices)) as { devices: unknown[] };
    expect(Object.keys(doc)).toEqual(['devices']);
    expect(parseRegistry(registryYaml(devices)).devices).toEqual(devices);
  });
});

describe('cli --write-registry', () => {
  it('writes every generated device, parses, and exits 0 without connecting anywhere', async () => {
    const file = join(tempDir(), 'registry.yaml');
    const { io, err } = captureIo();
    const code = await main(
      ['--write-registry', file, '--families', 'environment,fire,nbiot', '--devices', '4', '--seed', '3', '--url', 'mqtt://127.0.0.1:1'],
      io,
    );
    expect(code).toBe(0);
    expect(err.join('')).toMatch(/wrote 12 device/);
    const doc = YAML.parse(readFileSync(file, 'utf8')) as {
      devices: Array<{ id: string; family: string; secret: string; district: string; tags: { model: string } }>;
    };
    expect(doc.devices).toHaveLength(12);
    for (const family of ['environment', 'fire', 'nbiot']) {
      for (let n = 1; n <= 4; n++) {
        const id = `sim-${family}-000${n}`;
        const entry = doc.devices.find((d) => d.id === id);
        expect(entry, id).toBeDefined();
        expect(entry!.family).toBe(family);
        expect(entry!.secret).toBe(`${id}-secret`);
        expect(DISTRICTS).toContain(entry!.district);
        expect(typeof entry!.tags.model).toBe('string');
      }
    }
  });

  it('gives explicit devices a district too, since the edge requires one', async () => {
    const { io, out } = captureIo();
    const code = await main(['--write-registry', '-', '--device', 'demo-fire-001:demo-fire-001-secret:fire', '--seed', '1'], io);
    expect(code).toBe(0);
    const doc = YAML.parse(out.join('')) as { devices: Array<{ id: string; district: string }> };
    expect(doc.devices.map((d) => d.id)).toEqual(['demo-fire-001']);
    expect(DISTRICTS).toContain(doc.devices[0]!.district);
  });

  it('refuses contradictory options with exit code 2', async () => {
    const { io, err } = captureIo();
    expect(await main(['--interval-ms', '10', '--rate', '5'], io)).toBe(2);
    expect(await main(['--forever', '--count', '5'], io)).toBe(2);
    expect(await main(['--families', 'teapot'], io)).toBe(2);
    expect(err.join('')).toMatch(/unknown device family "teapot"/);
  });
});
