// The README's first minutes: `npm start` brings the stack up (its own influxd included), a reading
// published with Debian's mosquitto_pub as demo-env-001 is queryable in InfluxDB, Ctrl-C stops it all.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, influxQuery, rows, waitFor } from '../scripts/influxd.ts';
import { startWebhookReceiver, type WebhookReceiver } from '../scripts/webhook-receiver.ts';
import { isLoopback, listenAddresses } from './setup/listeners.ts';

const ROOT = resolve(import.meta.dirname, '..');
let demo: ChildProcess;
let out = '';
let exit: Promise<number | null>;
const ports = { influx: 0, cloud: 0, mqtt: 0, http: 0, hj212: 0, opcua: 0, push: 0 };
let hooks: WebhookReceiver;
let dataDir: string;

beforeAll(async () => {
  for (const k of Object.keys(ports) as (keyof typeof ports)[]) ports[k] = await freePort();
  dataDir = mkdtempSync(join(tmpdir(), 'citysense-demo-test-'));
  // Stands in for the fire system and the other demo webhook targets (contracts.md: CITYSENSE_WEBHOOK_URL).
  hooks = await startWebhookReceiver(0);
  const env: NodeJS.ProcessEnv = { ...process.env, CITYSENSE_DATA_DIR: dataDir, CITYSENSE_INFLUX_PORT: String(ports.influx), CITYSENSE_CLOUD_PORT: String(ports.cloud), CITYSENSE_EDGE_MQTT_PORT: String(ports.mqtt), CITYSENSE_EDGE_HTTP_PORT: String(ports.http), CITYSENSE_EDGE_HJ212_PORT: String(ports.hj212), CITYSENSE_SIM_OPCUA_PORT: String(ports.opcua), CITYSENSE_EDGE_PUSH_PORT: String(ports.push), CITYSENSE_WEBHOOK_URL: hooks.url };
  delete env.INFLUX_URL;
  demo = spawn(join(ROOT, 'node_modules/.bin/tsx'), ['scripts/demo.ts', '--sim-devices', '1', '--interval-ms', '1000'], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  demo.stdout!.on('data', (c) => (out += String(c)));
  demo.stderr!.on('data', (c) => (out += String(c)));
  exit = new Promise((r) => demo.once('exit', (code) => r(code)));
  await waitFor('the demo banner', () => out.includes('citysense demo is running') || demo.exitCode !== null, 90_000);
  if (!out.includes('citysense demo is running')) throw new Error(`the demo did not start:\n${out}`);
}, 120_000);

afterAll(async () => {
  // The demo's children run in process groups of their own: only the demo's own stop reaches them, so
  // it is asked to stop (SIGTERM) and given time before the last resort.
  if (demo && demo.exitCode === null) {
    demo.kill('SIGTERM');
    await Promise.race([exit, new Promise((r) => setTimeout(r, 45_000))]);
    if (demo.exitCode === null) demo.kill('SIGKILL');
  }
  await hooks?.close();
  rmSync(dataDir, { recursive: true, force: true });
});

describe('npm start (the demo stack)', () => {
  it('binds every listener to loopback (CITYSENSE_DEMO_HOST unset): MQTT, HJ 212, push receivers, OPC-UA, edge health, cloud, InfluxDB', async () => {
    for (const [what, port] of Object.entries(ports)) {
      // The simulated elevator controller starts with the simulators, after the banner.
      let addrs: string[] = [];
      await waitFor(`${what} (port ${port}) listening`, async () => (addrs = await listenAddresses(port)).length > 0, 30_000);
      expect(addrs.filter((a) => !isLoopback(a)), `${what} (port ${port}) listens beyond loopback`).toEqual([]);
    }
  }, 40_000);

  it('a reading published with mosquitto_pub as demo-env-001 is queryable in InfluxDB', async () => {
    const which = spawnSync('sh', ['-c', 'command -v mosquitto_pub']);
    expect(which.status, 'mosquitto_pub is missing: scripts/setup.sh installs Debian\'s mosquitto-clients').toBe(0);
    const ts = Date.now() - 2000;
    const pub = spawnSync('mosquitto_pub', ['-h', '127.0.0.1', '-p', String(ports.mqtt), '-i', 'demo-env-001', '-u', 'demo-env-001', '-P', 'demo-env-001-secret', '-q', '1', '-t', 'devices/demo-env-001/telemetry', '-m', JSON.stringify({ ts, metrics: { pm25: 35.2, pm10: 61 } })], { encoding: 'utf8' });
    expect(pub.status, pub.stderr).toBe(0);
    const url = `http://127.0.0.1:${ports.influx}`;
    let found: Record<string, unknown>[] = [];
    await waitFor('the point in InfluxDB', async () => {
      found = rows(await influxQuery(url, 'citysense', `SELECT * FROM environment WHERE device_id = 'demo-env-001' AND time = ${ts}ms`));
      return found.length === 1;
    }, 15_000);
    expect(found[0]).toMatchObject({ time: ts, device_id: 'demo-env-001', district: 'jinshui', pm25: 35.2, pm10: 61 });
  });

  it('one device of each kind arrives over its own protocol', async () => {
    const url = `http://127.0.0.1:${ports.influx}`;
    const over = {
      'JSON over MQTT': `SELECT * FROM environment WHERE device_id = 'sim-environment-0001' LIMIT 1`,
      'HJ 212 over TCP': `SELECT * FROM environment WHERE device_id = 'demo-hj212-001' LIMIT 1`,
      'NB-IoT binary over MQTT': `SELECT * FROM nbiot WHERE device_id = 'demo-nb-002' LIMIT 1`,
      'GB/T 26875.3 fire panel over MQTT': `SELECT * FROM fire WHERE device_id = 'demo-fire-001' LIMIT 1`,
      'elevator over OPC-UA': `SELECT * FROM elevator WHERE device_id = 'demo-elev-003' LIMIT 1`,
      'NB-IoT smoke detector pushed by CTWing': `SELECT * FROM nbiot WHERE device_id = 'demo-ctwing-001' LIMIT 1`,
      'NB-IoT gas detector pushed by OneNET Studio': `SELECT * FROM nbiot WHERE device_id = 'demo-onenet-001' LIMIT 1`,
    };
    for (const [what, q] of Object.entries(over)) {
      await waitFor(what, async () => rows(await influxQuery(url, 'citysense', q)).length > 0, 45_000);
    }
  }, 60_000);

  it('the fire scenario, played with the simulator CLI, reaches the fire system\'s webhook; resolving it sends the resolution', async () => {
    const sim = spawnSync(join(ROOT, 'node_modules/.bin/tsx'), ['device-sim/src/cli.ts', '--url', `mqtt://127.0.0.1:${ports.mqtt}`, '--fire-panel', 'demo-fire-002:demo-fire-002-secret', '--scenario', 'fire', '--sim-step-ms', '5000', '--interval-ms', '100', '--quiet'], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
    expect(sim.status, sim.stderr).toBe(0);
    const firing = () => hooks.deliveries.find((d) => d.body.device_id === 'demo-fire-002' && d.body.state === 'firing' && d.body.category === 'fire' && d.body.type === 'fire_alarm');
    await waitFor('the fire alarm at the fire system', () => firing() !== undefined, 30_000);
    const f = firing()!;
    expect(f.verified).toBe(true);
    expect(f.idempotencyKey).toBe(f.body.event_id);
    expect((f.body.attrs as Record<string, string>).zone).toMatch(/^F\d-Z\d$/);

    const base = `http://127.0.0.1:${ports.cloud}`;
    const login = await fetch(`${base}/v1/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'duty', password: 'duty-demo' }) });
    expect(login.status).toBe(200);
    const { token } = (await login.json()) as { token: string };
    const res = await fetch(`${base}/v1/alerts/${String(f.body.id)}/resolve`, { method: 'POST', headers: { authorization: `Bearer ${token}` } });
    expect(res.status).toBe(200);
    await waitFor('the resolution at the fire system', () => hooks.deliveries.some((d) => d.body.id === f.body.id && d.body.state === 'resolved' && d.verified), 30_000);
  }, 90_000);

  it('Ctrl-C stops every part in order (sim, edge, cloud, InfluxDB), none reported dead: the process exits 0 and the ports close', async () => {
    demo.kill('SIGINT');
    expect(await exit).toBe(0);
    // eslint-disable-next-line no-control-regex
    const plain = out.replace(/\x1b\[[0-9;]*m/g, '');
    expect(plain).not.toMatch(/died \(code/);
    const at = (name: string) => plain.search(new RegExp(`\\[${name} *\\] stopped`));
    const order = ['sim', 'edge', 'cloud', 'influxdb'].map(at);
    expect(order.every((i) => i >= 0), plain.slice(-2000)).toBe(true);
    expect([...order].sort((a, b) => a - b)).toEqual(order);
    for (const port of [ports.influx, ports.cloud, ports.mqtt, ports.http]) {
      const open = await new Promise<boolean>((r) => {
        const s = createConnection({ host: '127.0.0.1', port }, () => (s.destroy(), r(true)));
        s.on('error', () => r(false));
      });
      expect(open, `port ${port} still open`).toBe(false);
    }
  }, 60_000);
});
