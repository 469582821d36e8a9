// NB-IoT through the operators' platforms, end to end (issue 18): the device simulator plays CTWing AEP
// and OneNET (device-sim/src/transports/, written from the platforms' formats, not from the receivers),
// pushing over real HTTP to the edge's push listener → durable queue → cloud → InfluxDB; a smoke
// detector's alarm pushed by CTWing reaches the fire system's signed webhook (a real HTTP receiver).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CtwingPush, OnenetPush, OnenetStudioPush, onenetUrlCheck, startCtwingSmokeDetector, type PushDevice } from '@citysense/device-sim';
import { verifySignature } from '../cloud/src/delivery/sign.ts';
import { receiver, type Receiver } from '../cloud/test/alerts-fixtures.ts';
import { startStack, type Stack } from './stack.ts';
import { waitFor } from './setup/influx.ts';

const TOKEN = 'e2e-push-token-5d1';
const ONENET_TOKEN = 'e2e-onenet-token';
const ENCODE_KEY = 'Q2l0eXNlbnNlRTJFT25lTkVURW5jb2RlS2V5MDEyMzQ'; // 43 base64 characters
const STUDIO_AES = 'e2eStudioAesKey!';
const FIRE_SECRET = 'fire-system-push-e2e';

let stack: Stack;
let fireSystem: Receiver;
let smoke: PushDevice;
const base = () => `http://127.0.0.1:${stack.edge.pushPort}/push`;

beforeAll(async () => {
  fireSystem = await receiver();
  stack = await startStack(
    'push',
    [
      { id: 'demo-ctwing-001', family: 'nbiot', district: 'guancheng', profile: 'nb-smoke-detector', ctwing: { deviceId: 'demo-ctwing-001', imei: '860000000000001', productId: '15000001' } },
      { id: 'demo-onenet-001', family: 'nbiot', district: 'huiji', profile: 'onenet-gas-detector', onenet: { productId: 'onenet-demo-product', deviceName: 'demo-onenet-001' } },
      { id: 'onenet-old-001', family: 'nbiot', district: 'huiji', profile: 'onenet-gas-detector', onenet: { deviceId: '610001', imei: '860000000000077' } },
    ],
    {
      httpPush: {
        host: '127.0.0.1',
        port: 0,
        ctwing: { pathToken: TOKEN },
        onenet: { pathToken: TOKEN, token: ONENET_TOKEN, encodeKey: ENCODE_KEY },
        onenetStudio: { pathToken: TOKEN, token: ONENET_TOKEN, aesKey: STUDIO_AES },
      },
    },
    {
      operators: { demoUsers: true },
      webhooks: {
        demoTargetsFromEnv: false,
        pollIntervalMs: 50,
        targets: [{ id: 'fire-system', url: fireSystem.url, secret: FIRE_SECRET, match: { categories: ['fire'] }, backoff: { initialMs: 50, maxMs: 500 } }],
      },
    },
  );
  smoke = startCtwingSmokeDetector({ id: 'demo-ctwing-001', url: `${base()}/ctwing/${TOKEN}`, seed: 18, intervalMs: 0, retryDelayMs: 50, identity: { deviceId: 'demo-ctwing-001', imei: '860000000000001', productId: '15000001' } });
});
afterAll(async () => {
  smoke?.stop();
  await stack?.close();
  await fireSystem?.close();
});

const q = (s: string) => stack.influx.query(s);

describe('CTWing AEP → edge push receiver → cloud → InfluxDB', () => {
  it("a transparent product's report (APPdata) lands as the smoke detector's reading; online is an event", async () => {
    const r = await smoke.report();
    expect(r?.status).toBe(200);
    await waitFor('the reading', async () => (await q(`SELECT * FROM nbiot WHERE device_id = 'demo-ctwing-001'`)).length > 0);
    const [row] = await q(`SELECT * FROM nbiot WHERE device_id = 'demo-ctwing-001'`);
    expect(row).toMatchObject({ district: 'guancheng', model: 'SD-NB1', alarm: false });
    expect(typeof row!.battery).toBe('number');
    expect(typeof row!.rsrp).toBe('number');
    await waitFor('online event', async () => (await q(`SELECT * FROM events WHERE device_id = 'demo-ctwing-001' AND type = 'device_online'`)).length === 1);
  });

  it('the field-type variants are accepted, and a repeated push is stored once', async () => {
    const push = new CtwingPush({ url: `${base()}/ctwing/${TOKEN}`, retryDelayMs: 50 }, { deviceId: 'demo-ctwing-001', imei: '860000000000001', productId: '15000001' });
    const ts = Date.now() - 60_000;
    const frame = Buffer.from([1, 42, 0xff, 0xa1, 10, 0, 20, 0]); // battery 42, obscuration 0.2 %/m
    const msg = { messageType: 'dataReport', deviceId: '', IMEI: '860000000000001', productId: 15000001, IMSI: 'undefined', upPacketSN: -1, upDataSN: '', serviceId: '', timestamp: String(ts), payload: { APPdata: frame.toString('base64') } };
    expect((await push.send(msg)).status).toBe(200);
    expect((await push.send(msg)).body).toContain('"duplicates":1');
    await waitFor('the variant reading', async () => (await q(`SELECT * FROM nbiot WHERE device_id = 'demo-ctwing-001' AND battery = 42`)).length === 1);
    const [row] = await q(`SELECT * FROM nbiot WHERE device_id = 'demo-ctwing-001' AND battery = 42`);
    expect(row).toMatchObject({ time: ts, smoke_obscuration: 0.2 });
  });

  it("a fire alarm from the NB-IoT smoke detector reaches the fire system's signed webhook", async () => {
    const r = await smoke.condition(6.5);
    expect(r?.status).toBe(200);
    const [d] = await fireSystem.waitFor(1, 20_000);
    expect(d!.body).toMatchObject({ rule: 'smoke-alarm', state: 'firing', device_id: 'demo-ctwing-001', district: 'guancheng', category: 'fire', type: 'smoke_alarm' });
    expect(verifySignature(FIRE_SECRET, d!.raw, d!.headers['x-citysense-signature'] as string, Math.floor(Date.now() / 1000)).ok).toBe(true);
    await waitFor('the alarm event in InfluxDB', async () => (await q(`SELECT * FROM events WHERE device_id = 'demo-ctwing-001' AND type = 'smoke_alarm'`)).length === 1);
  });

  it("the platform's offline report fires the device-offline alert at once; its online report resolves it", async () => {
    const push = new CtwingPush({ url: `${base()}/ctwing/${TOKEN}`, retryDelayMs: 50 }, { deviceId: 'demo-ctwing-001', imei: '860000000000001', productId: '15000001' });
    const login = await fetch(`${stack.cloud.url}/v1/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'duty', password: 'duty-demo' }) });
    const { token } = (await login.json()) as { token: string };
    const alerts = async () =>
      ((await (await fetch(`${stack.cloud.url}/v1/alerts?rule=device-offline`, { headers: { authorization: `Bearer ${token}` } })).json()) as { alerts: { device_id: string; state: string }[] }).alerts.filter(
        (a) => a.device_id === 'demo-ctwing-001',
      );
    expect((await push.onlineOffline(false, Date.now())).status).toBe(200);
    await waitFor('the offline alert', async () => (await alerts()).some((a) => a.state === 'firing'));
    expect((await push.onlineOffline(true, Date.now() + 1)).status).toBe(200);
    await waitFor('the offline alert resolved', async () => (await alerts()).every((a) => a.state === 'resolved'));
  });

  it('a push with a wrong path token is refused (404) and nothing is stored', async () => {
    const push = new CtwingPush({ url: `${base()}/ctwing/wrong-token-xyz`, retries: 0 }, { deviceId: 'demo-ctwing-001', imei: '860000000000001', productId: '15000001' });
    const r = await push.dataReport(Buffer.from([1, 11, 0xff, 0xa1, 10, 0, 20, 0]));
    expect(r.status).toBe(404);
    await stack.edge.flush(5000);
    expect(await q(`SELECT * FROM nbiot WHERE device_id = 'demo-ctwing-001' AND battery = 11`)).toHaveLength(0);
  });

  it("the edge's /healthz shows the push receivers: reports kept, pushes refused, seconds since the last report", async () => {
    const h = (await (await fetch(`http://127.0.0.1:${stack.edge.httpPort}/healthz`)).json()) as {
      push: { port: number; platforms: string[]; kept: Record<string, number>; refused: Record<string, number>; secondsSinceReport: Record<string, number | null> } | null;
    };
    expect(h.push).not.toBeNull();
    expect(h.push!.port).toBe(stack.edge.pushPort);
    expect(h.push!.platforms.sort()).toEqual(['ctwing', 'onenet', 'onenet-studio']);
    expect(h.push!.kept.ctwing).toBeGreaterThanOrEqual(3);
    expect(h.push!.refused.ctwing).toBeGreaterThanOrEqual(1);
    expect(typeof h.push!.secondsSinceReport.ctwing).toBe('number');
  });
});

describe('OneNET and OneNET Studio → edge → InfluxDB', () => {
  it('passes the URL check of both platforms with the right token only', async () => {
    expect((await onenetUrlCheck(`${base()}/onenet/${TOKEN}`, ONENET_TOKEN)).ok).toBe(true);
    expect((await onenetUrlCheck(`${base()}/onenet-studio/${TOKEN}`, ONENET_TOKEN)).ok).toBe(true);
    expect((await onenetUrlCheck(`${base()}/onenet/${TOKEN}`, 'not-the-token')).status).toBe(401);
  });

  it('OneNET encrypted data points and status changes land in InfluxDB', async () => {
    const push = new OnenetPush({ url: `${base()}/onenet/${TOKEN}`, token: ONENET_TOKEN, encodeKey: ENCODE_KEY, retryDelayMs: 50 }, { devId: 610001, imei: '860000000000077' });
    const at = Date.now() - 1000;
    expect((await push.dataPoint('GasConcentration', 12.5, at)).status).toBe(200);
    expect((await push.status(false, at + 1)).status).toBe(200);
    await waitFor('the data point', async () => (await q(`SELECT * FROM nbiot WHERE device_id = 'onenet-old-001'`)).length === 1);
    expect((await q(`SELECT * FROM nbiot WHERE device_id = 'onenet-old-001'`))[0]).toMatchObject({ time: at, gas_lel: 12.5 });
    await waitFor('the offline event', async () => (await q(`SELECT * FROM events WHERE device_id = 'onenet-old-001' AND type = 'device_offline'`)).length === 1);
  });

  it('OneNET Studio property notifications (AES) land in InfluxDB; a wrong signature is refused and not stored', async () => {
    const push = new OnenetStudioPush({ url: `${base()}/onenet-studio/${TOKEN}`, token: ONENET_TOKEN, aesKey: STUDIO_AES, retryDelayMs: 50 }, { productId: 'onenet-demo-product', deviceName: 'demo-onenet-001' });
    const t0 = Date.now() - 500;
    expect((await push.property({ GasConcentration: 3.2, BatteryLevel: 81, RSRP: -97, AlarmState: false }, t0)).status).toBe(200);
    await waitFor('the property reading', async () => (await q(`SELECT * FROM nbiot WHERE device_id = 'demo-onenet-001'`)).length === 1);
    expect((await q(`SELECT * FROM nbiot WHERE device_id = 'demo-onenet-001'`))[0]).toMatchObject({ time: t0, gas_lel: 3.2, battery: 81, rsrp: -97, alarm: false, district: 'huiji' });
    const forged = new OnenetStudioPush({ url: `${base()}/onenet-studio/${TOKEN}`, token: 'forged-token', aesKey: STUDIO_AES, retries: 1, retryDelayMs: 10 }, { productId: 'onenet-demo-product', deviceName: 'demo-onenet-001' });
    const r = await forged.property({ GasConcentration: 99 });
    expect(r.status).toBe(401);
    expect(forged.counts).toMatchObject({ delivered: 0, retried: 1, failed: 1 });
    await stack.edge.flush(5000);
    expect(await q(`SELECT * FROM nbiot WHERE device_id = 'demo-onenet-001' AND gas_lel = 99`)).toHaveLength(0);
  });
});
