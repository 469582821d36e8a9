// Configuration and registry: validated at start, mistakes named by path (and line), samples valid.
import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadEdgeConfig, parseEdgeConfig } from '../src/index.ts';
import { loadRegistryFile } from '../src/registry/registry.ts';
import { loadProfiles } from '../src/profiles/load.ts';

const PROFILES = loadProfiles([]);

const dir = mkdtempSync(join(tmpdir(), 'citysense-edge-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const examples = fileURLToPath(new URL('../config/', import.meta.url));

function file(name: string, text: string): string {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
}

function errorOf(f: () => unknown): string {
  try {
    f();
  } catch (err) {
    return (err as Error).message;
  }
  throw new Error('expected an error');
}

describe('example configs', () => {
  it('validate against the schema, registry included', () => {
    const c = loadEdgeConfig(join(examples, 'edge.example.yaml'), {});
    expect(c.mqtt.port).toBe(1883);
    expect(c.http.port).toBe(8081);
    expect(c.cloud.url).toBe('http://127.0.0.1:8080');
    const reg = loadRegistryFile(c.registry.file!, PROFILES);
    expect(reg.size).toBe(4);
    expect(reg.get('demo-fire-001')?.secret).toBeDefined();
    expect(reg.get('demo-elev-001')?.secret).toBeUndefined();
    expect(reg.get('demo-env-001')?.tags).toEqual({ district: 'jinshui', site: 'jinshui-station-3', model: 'AQM-65' });
  });
});

describe('config errors name the path of the mistake', () => {
  it('in an inline registry', () => {
    const devices = [0, 1, 2, 3].map((i) => ({ id: `d${i}`, family: i === 3 ? 'volcano' : 'fire', district: 'x' }));
    const msg = errorOf(() => parseEdgeConfig({ edgeId: 'e', registry: { devices }, cloud: { token: 't' } }));
    expect(msg).toContain('CONFIG_INVALID');
    expect(msg).toMatch(/registry\.devices\[3\]\.family: invalid option/i);
  });

  it('unknown keys, with their line', () => {
    const p = file('unknown.yaml', 'edgeId: e1\nregistry:\n  devices: []\ncloud:\n  token: t\nmqtt:\n  prot: 1883\n');
    const msg = errorOf(() => loadEdgeConfig(p, {}));
    expect(msg).toContain(`${p}:7: mqtt.prot: unknown key`);
  });

  it('a bad env override names the variable', () => {
    const p = file('env.yaml', 'edgeId: e1\nregistry:\n  devices: []\ncloud:\n  token: t\n');
    const msg = errorOf(() => loadEdgeConfig(p, { CITYSENSE_EDGE_MQTT_PORT: 'abc' }));
    expect(msg).toContain('mqtt.port');
    expect(msg).toContain('CITYSENSE_EDGE_MQTT_PORT');
  });

  it('env overrides apply; the token may come from the environment only', () => {
    const p = file('env-ok.yaml', 'edgeId: e1\nregistry:\n  devices: []\n');
    expect(errorOf(() => loadEdgeConfig(p, {}))).toContain('cloud.token');
    const c = loadEdgeConfig(p, {
      CITYSENSE_EDGE_TOKEN: 'tok',
      CITYSENSE_CLOUD_URL: 'https://cloud.example:9443',
      CITYSENSE_EDGE_MQTT_PORT: '0',
      CITYSENSE_EDGE_HTTP_PORT: '18081',
    });
    expect(c).toMatchObject({ cloud: { token: 'tok', url: 'https://cloud.example:9443' }, mqtt: { port: 0 }, http: { port: 18081 } });
    expect(Object.isFrozen(c.batch)).toBe(true);
  });

  it('a client certificate stands in for the token', () => {
    const c = parseEdgeConfig({ edgeId: 'e', registry: { devices: [] }, uplink: { tls: { cert: 'c.pem', key: 'k.pem' } } });
    expect(c.cloud.token).toBeUndefined();
    expect(errorOf(() => parseEdgeConfig({ edgeId: 'e', registry: { devices: [] }, cloud: { token: 't' }, uplink: { tls: { cert: 'c.pem' } } }))).toContain(
      'uplink.tls',
    );
  });
});

describe('registry file errors', () => {
  it('name the file, the line and the path', () => {
    const p = file('reg.yaml', 'devices:\n  - id: a1\n    family: fire\n    district: x\n  - id: a2\n    family: lava\n    district: x\n');
    const msg = errorOf(() => loadRegistryFile(p, PROFILES));
    expect(msg).toContain('REGISTRY_INVALID');
    expect(msg).toMatch(new RegExp(`reg\\.yaml:6: devices\\[1\\]\\.family: invalid option`, 'i'));
  });

  it('refuse duplicate ids, and both secret and secretSha256', () => {
    const dup = file('dup.json', JSON.stringify({ devices: [{ id: 'a', family: 'fire', district: 'x' }, { id: 'a', family: 'fire', district: 'y' }] }));
    expect(errorOf(() => loadRegistryFile(dup, PROFILES))).toContain('devices[1].id: duplicate device id "a" (also devices[0])');
    const both = file(
      'both.yaml',
      `devices:\n  - id: a\n    family: fire\n    district: x\n    secret: abcdefgh\n    secretSha256: "${'0'.repeat(64)}"\n`,
    );
    expect(errorOf(() => loadRegistryFile(both, PROFILES))).toContain('devices[0]: give one of secret, secretSha256, secretHash');
    const unquoted = file('unquoted.yaml', `devices:\n  - id: a\n    family: fire\n    district: x\n    secret: 12345678\n`);
    expect(errorOf(() => loadRegistryFile(unquoted, PROFILES))).toContain('unquoted.yaml:5: devices[0].secret: must be text (quote it in YAML)');
  });

  it('refuse device ids that would escape their MQTT topic', () => {
    const p = file('wild.yaml', 'devices:\n  - id: "a/#"\n    family: fire\n    district: x\n');
    expect(errorOf(() => loadRegistryFile(p, PROFILES))).toContain('devices[0].id');
  });
});
