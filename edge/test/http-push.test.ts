// The HTTP push receivers against pushes built here from the platforms' published formats (not with the
// receivers' code): CTWing AEP message types and their field-type variants, OneNET's URL check, signed
// and encrypted bodies, OneNET Studio notifications; repeats stored once; every refusal with its status,
// reason code and counter; nothing answered 200 that is not in the queue (what reaches the fake cloud).
import { createCipheriv, createHash, randomBytes } from 'node:crypto';
import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { allReadings, metricValue, startFakeCloud, startTestEdge, waitFor, type FakeCloud, type TestEdge } from './helpers.ts';

const CT_TOKEN = 'ct-path-token-0123';
const ON_TOKEN = 'on-path-token-0123';
const ST_TOKEN = 'st-path-token-0123';
const ONENET_SIGN_TOKEN = 'onenet-sign-token';
const ENCODE_KEY = randomBytes(32).toString('base64').slice(0, 43);
const STUDIO_AES = 'k3Y4studio16char';

let cloud: FakeCloud;
let t: TestEdge;
beforeAll(async () => {
  cloud = await startFakeCloud();
  t = await startTestEdge(cloud.url, {
    registry: {
      devices: [
        { id: 'smoke-ct-1', family: 'nbiot', district: 'guancheng', profile: 'nb-smoke-detector', ctwing: { deviceId: 'ct-dev-1', imei: '860000000000011', productId: '15000001' } },
        { id: 'smoke-ct-2', family: 'nbiot', district: 'guancheng', profile: 'nb-smoke-detector', ctwing: { imei: '860000000000022' } },
        { id: 'gas-ct-obj', family: 'nbiot', district: 'guancheng', profile: 'onenet-gas-detector', ctwing: { deviceId: 'ct-gas-obj' } },
        { id: 'gas-on-1', family: 'nbiot', district: 'huiji', profile: 'onenet-gas-detector', onenet: { deviceId: '52001', imei: '860000000000033' } },
        { id: 'smoke-on-2', family: 'nbiot', district: 'huiji', profile: 'nb-smoke-detector', onenet: { imei: '860000000000044' } },
        { id: 'gas-st-1', family: 'nbiot', district: 'huiji', profile: 'onenet-gas-detector', onenet: { productId: 'prod-A', deviceName: 'gas-st-1' } },
      ],
    },
    httpPush: {
      host: '127.0.0.1',
      port: 0,
      maxBodyBytes: 4096,
      ctwing: { pathToken: CT_TOKEN },
      onenet: { pathToken: ON_TOKEN, token: ONENET_SIGN_TOKEN, encodeKey: ENCODE_KEY },
      onenetStudio: { pathToken: ST_TOKEN, token: ONENET_SIGN_TOKEN, aesKey: STUDIO_AES, allowFrom: ['127.0.0.0/8'] },
    },
  });
});
afterAll(async () => {
  await t?.stop();
  await cloud?.close();
});

interface Answer {
  status: number;
  body: string;
}
function send(method: string, path: string, body?: string | Buffer, headers: Record<string, string> = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: t.edge.pushPort!, method, path, headers: { 'content-type': 'application/json', ...headers } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, body: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('error', reject);
    req.end(body);
  });
}
const post = (path: string, body: unknown) => send('POST', path, typeof body === 'string' ? body : JSON.stringify(body));
const errorOf = (a: Answer) => (JSON.parse(a.body) as { error: string }).error;
const refused = (platform: string, reason: string) => metricValue(t.edge.metrics, 'citysense_edge_push_refused_total', { platform, reason });

const readingsOf = (id: string) => allReadings(cloud.acked).filter((r) => r.deviceId === id);
const eventsOf = (id: string) => cloud.acked.flatMap((b) => b.events).filter((e) => e.deviceId === id);

/** The smoke detector's 8-byte status frame (docs/protocols/nbiot-binary.md): type 1, battery, rsrp, snr, obscuration, status bits. */
function smokeFrame(o: { battery: number; obscuration: number; alarm: boolean }): Buffer {
  const b = Buffer.alloc(8);
  b[0] = 1;
  b[1] = o.battery;
  b.writeInt16BE(-95, 2);
  b.writeInt8(12, 4);
  b.writeUInt16BE(Math.round(o.obscuration * 100), 5);
  b[7] = o.alarm ? 1 : 0;
  return b;
}

// ---- independent builders of the platforms' messages --------------------------------------------------
const now = () => Date.now();
function ctDataReport(over: Record<string, unknown>): Record<string, unknown> {
  return {
    upPacketSN: 17,
    upDataSN: 3,
    topic: 'v1/up/ad',
    timestamp: now(),
    tenantId: '2000000001',
    serviceId: '',
    protocol: 'lwm2m',
    productId: '15000001',
    messageType: 'dataReport',
    deviceType: '',
    deviceId: 'ct-dev-1',
    assocAssetId: '',
    IMSI: '460111111111111',
    IMEI: '860000000000011',
    payload: { APPdata: smokeFrame({ battery: 80, obscuration: 0.5, alarm: false }).toString('base64') },
    ...over,
  };
}
const md5b64 = (s: string) => createHash('md5').update(s, 'utf8').digest('base64');
function onenetBody(msg: unknown, nonce = 'abcdefgh') {
  const text = JSON.stringify(msg);
  return `{"msg":${text},"msg_signature":"${md5b64(ONENET_SIGN_TOKEN + nonce + text)}","nonce":"${nonce}"}`;
}
function onenetEncrypted(msg: unknown, nonce = 'n0nce123') {
  const key = Buffer.from(ENCODE_KEY + '=', 'base64');
  const text = Buffer.from(JSON.stringify(msg), 'utf8');
  const len = Buffer.alloc(4);
  len.writeUInt32BE(text.length);
  let plain = Buffer.concat([randomBytes(16), len, text]);
  const pad = 32 - (plain.length % 32);
  plain = Buffer.concat([plain, Buffer.alloc(pad, pad)]);
  const c = createCipheriv('aes-256-cbc', key, key.subarray(0, 16));
  c.setAutoPadding(false);
  const enc = Buffer.concat([c.update(plain), c.final()]).toString('base64');
  return { enc_msg: enc, msg_signature: md5b64(ONENET_SIGN_TOKEN + nonce + enc), nonce };
}
function studioBody(msg: Record<string, unknown>, o: { id: string; encrypt?: boolean; token?: string }) {
  let text = JSON.stringify(msg);
  if (o.encrypt) {
    const k = Buffer.from(STUDIO_AES, 'utf8');
    const c = createCipheriv('aes-128-cbc', k, k);
    text = Buffer.concat([c.update(text, 'utf8'), c.final()]).toString('base64');
  }
  const nonce = randomBytes(6).toString('hex');
  return { msg: text, signature: md5b64((o.token ?? ONENET_SIGN_TOKEN) + nonce + text), nonce, time: now(), id: o.id };
}
const studioProperty = (params: Record<string, { value: unknown; time: number }>) => ({
  deviceName: 'gas-st-1',
  productId: 'prod-A',
  messageType: 'notify',
  notifyType: 'property',
  data: { id: '1', version: '1.0', params },
});

describe('CTWing AEP push', () => {
  it('a dataReport with APPdata is decoded by the binary profile and answered 200 once queued; its repeat is stored once', async () => {
    const msg = ctDataReport({ upPacketSN: 101, payload: { APPdata: smokeFrame({ battery: 77, obscuration: 1.25, alarm: false }).toString('base64') } });
    const a = await post(`/push/ctwing/${CT_TOKEN}`, msg);
    expect(a.status).toBe(200);
    await waitFor(() => readingsOf('smoke-ct-1').some((r) => r.values.battery === 77), 5000, 'the reading at the cloud');
    const r = readingsOf('smoke-ct-1').find((x) => x.values.battery === 77)!;
    expect(r.values).toMatchObject({ battery: 77, rsrp: -95, snr: 12, smoke_obscuration: 1.25, alarm: false });
    expect(r.ts).toBe(msg.timestamp);
    expect(r.tags).toMatchObject({ district: 'guancheng', model: 'SD-NB1' });
    // Nothing personal travels: neither the IMEI nor the IMSI is in the reading.
    expect(JSON.stringify(r)).not.toMatch(/86000000000001|460111111111111/);
    const again = await post(`/push/ctwing/${CT_TOKEN}`, msg);
    expect(again.status).toBe(200);
    expect(JSON.parse(again.body)).toMatchObject({ kept: 0, duplicates: 1 });
    await t.edge.flush(5000);
    expect(readingsOf('smoke-ct-1').filter((x) => x.values.battery === 77)).toHaveLength(1);
    expect(await metricValue(t.edge.metrics, 'citysense_edge_push_duplicates_total', { platform: 'ctwing' })).toBeGreaterThanOrEqual(1);
  });

  it('accepts the field-type variants: upPacketSN -1 and "", serviceId "" or a number, IMSI "undefined", timestamp as text; found by IMEI alone', async () => {
    const base = now();
    const variants = [
      ctDataReport({ upPacketSN: -1, upDataSN: -1, serviceId: 1, IMSI: 'undefined', timestamp: base - 3000, payload: { APPdata: smokeFrame({ battery: 61, obscuration: 0, alarm: false }).toString('base64') } }),
      ctDataReport({ upPacketSN: '', upDataSN: '', serviceId: '', timestamp: String(base - 2000), payload: { APPdata: smokeFrame({ battery: 62, obscuration: 0, alarm: false }).toString('base64') } }),
      ctDataReport({ deviceId: '', IMEI: '860000000000022', productId: 15000009, IMSI: 'undefined', timestamp: base - 1000, payload: { APPdata: smokeFrame({ battery: 63, obscuration: 0, alarm: false }).toString('base64') } }),
    ];
    for (const v of variants) expect((await post(`/push/ctwing/${CT_TOKEN}`, v)).status).toBe(200);
    await waitFor(() => readingsOf('smoke-ct-1').some((r) => r.values.battery === 62) && readingsOf('smoke-ct-2').some((r) => r.values.battery === 63), 5000, 'variant readings');
    expect(readingsOf('smoke-ct-1').find((r) => r.values.battery === 61)!.ts).toBe(base - 3000);
    expect(readingsOf('smoke-ct-1').find((r) => r.values.battery === 62)!.ts).toBe(base - 2000);
  });

  it('a platform-decoded payload ({serviceId, serviceData}) is mapped by the profile; dataReportTupUnion carries several services', async () => {
    const ts = now() - 500;
    const a = await post(`/push/ctwing/${CT_TOKEN}`, { ...ctDataReport({ deviceId: 'ct-gas-obj', IMEI: undefined, productId: undefined, timestamp: ts }), payload: { serviceId: 1, serviceData: { GasConcentration: 4.5, BatteryLevel: 90 } } });
    expect(a.status).toBe(200);
    const b = await post(`/push/ctwing/${CT_TOKEN}`, {
      ...ctDataReport({ deviceId: 'ct-gas-obj', IMEI: undefined, productId: undefined, messageType: 'dataReportTupUnion', upPacketSN: 555, timestamp: ts + 100 }),
      payload: [{ serviceId: 1, serviceData: { GasConcentration: 5.5 } }, { serviceId: 2, serviceData: { RSRP: -101 } }],
    });
    expect(b.status).toBe(200);
    await waitFor(() => readingsOf('gas-ct-obj').length >= 2, 5000, 'both readings');
    expect(readingsOf('gas-ct-obj').find((r) => r.ts === ts)!.values).toEqual({ gas_lel: 4.5, battery: 90 });
    expect(readingsOf('gas-ct-obj').find((r) => r.ts === ts + 100)!.values).toEqual({ gas_lel: 5.5, rsrp: -101 });
  });

  it('an alarm frame becomes a smoke_alarm event of alarm priority; eventReport, online/offline and commandResponse become events', async () => {
    const ts = now();
    expect((await post(`/push/ctwing/${CT_TOKEN}`, ctDataReport({ upPacketSN: 900, timestamp: ts, payload: { APPdata: smokeFrame({ battery: 70, obscuration: 12.5, alarm: true }).toString('base64') } }))).status).toBe(200);
    expect((await post(`/push/ctwing/${CT_TOKEN}`, ctDataReport({ messageType: 'eventReport', eventType: 3, serviceId: 1001, upPacketSN: 901, timestamp: ts + 1, payload: { APPdata: smokeFrame({ battery: 70, obscuration: 0.1, alarm: false }).toString('base64') } }))).status).toBe(200);
    expect((await post(`/push/ctwing/${CT_TOKEN}`, { messageType: 'deviceOnlineOfflineReport', deviceId: 'ct-dev-1', IMEI: '860000000000011', productId: '15000001', tenantId: '2000000001', eventType: 0, timestamp: ts + 2, iccid: 'undefined' })).status).toBe(200);
    expect((await post(`/push/ctwing/${CT_TOKEN}`, { messageType: 'deviceOnlineOfflineReport', deviceId: 'ct-dev-1', eventType: 1, timestamp: ts + 3 })).status).toBe(200);
    expect((await post(`/push/ctwing/${CT_TOKEN}`, { messageType: 'commandResponse', deviceId: 'ct-dev-1', taskId: 42, result: { resultCode: 'SUCCESSFUL', resultDetail: {} }, timestamp: ts + 4 })).status).toBe(200);
    await waitFor(() => eventsOf('smoke-ct-1').some((e) => e.type === 'command_response'), 5000, 'all events');
    const ev = eventsOf('smoke-ct-1');
    expect(ev.find((e) => e.type === 'smoke_alarm')).toMatchObject({ priority: 'alarm', ts, attrs: { smoke_obscuration: '12.5' } });
    expect(ev.find((e) => e.type === 'platform_event')).toMatchObject({ priority: 'warning', attrs: { platform: 'ctwing', event_type: '3', service_id: '1001' } });
    expect(ev.find((e) => e.type === 'smoke_alarm_cleared')).toBeDefined();
    expect(ev.find((e) => e.type === 'device_offline')).toMatchObject({ ts: ts + 2, priority: 'warning' });
    expect(ev.find((e) => e.type === 'device_online')).toMatchObject({ ts: ts + 3 });
    expect(ev.find((e) => e.type === 'command_response')).toMatchObject({ attrs: { task_id: '42', result: 'SUCCESSFUL' } });
  });

  it('refuses, counts, and never answers 200: wrong path token, unknown device, undecodable payload, not JSON, too large, wrong method', async () => {
    const wrong = await post('/push/ctwing/not-the-token-at-all', ctDataReport({}));
    expect([wrong.status, errorOf(wrong)]).toEqual([404, 'PUSH_UNKNOWN_PATH']);
    const unknown = await post(`/push/ctwing/${CT_TOKEN}`, ctDataReport({ deviceId: 'nobody', IMEI: '869999999999999', upPacketSN: 1234 }));
    expect([unknown.status, errorOf(unknown)]).toEqual([422, 'PUSH_UNKNOWN_DEVICE']);
    const otherProduct = await post(`/push/ctwing/${CT_TOKEN}`, ctDataReport({ productId: '99999999', upPacketSN: 1235 }));
    expect([otherProduct.status, errorOf(otherProduct)]).toEqual([422, 'PUSH_UNKNOWN_DEVICE']);
    // A frame of another type (0x03, the gas detector's) does not match the smoke detector's layout.
    const gasFrame = Buffer.from([3, 50, 0xff, 0xa0, 0, 10, 0, 0]).toString('base64');
    const undecodable = await post(`/push/ctwing/${CT_TOKEN}`, ctDataReport({ upPacketSN: 1236, payload: { APPdata: gasFrame } }));
    expect([undecodable.status, errorOf(undecodable)]).toEqual([422, 'PUSH_UNDECODABLE']);
    const notJson = await post(`/push/ctwing/${CT_TOKEN}`, '{"messageType":');
    expect([notJson.status, errorOf(notJson)]).toEqual([400, 'PUSH_BAD_JSON']);
    const big = await post(`/push/ctwing/${CT_TOKEN}`, ctDataReport({ upPacketSN: 1237, pad: 'x'.repeat(5000) }));
    expect([big.status, errorOf(big)]).toEqual([413, 'PUSH_BODY_TOO_LARGE']);
    const get = await send('GET', `/push/ctwing/${CT_TOKEN}?msg=a&nonce=b&signature=c`);
    expect([get.status, errorOf(get)]).toEqual([405, 'PUSH_METHOD_NOT_ALLOWED']);
    expect(await refused('ctwing', 'PUSH_UNKNOWN_DEVICE')).toBe(2);
    expect(await refused('ctwing', 'PUSH_UNDECODABLE')).toBe(1);
    expect(await refused('ctwing', 'PUSH_BODY_TOO_LARGE')).toBe(1);
    expect(await refused('ctwing', 'PUSH_UNKNOWN_PATH')).toBe(1);
    // The refusals are logged (rate-limited) without the path token.
    expect(t.logs.join('').includes('PUSH_UNKNOWN_DEVICE')).toBe(true);
    expect(t.logs.join('').includes(CT_TOKEN)).toBe(false);
  });

  it('a body over the limit without Content-Length (chunked) is cut off while reading', async () => {
    const a = await new Promise<number>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port: t.edge.pushPort!, method: 'POST', path: `/push/ctwing/${CT_TOKEN}`, headers: { 'transfer-encoding': 'chunked' } }, (res) => {
        res.resume();
        resolve(res.statusCode!);
      });
      req.on('error', reject);
      for (let i = 0; i < 10; i++) req.write('x'.repeat(1000));
      req.end();
    });
    expect(a).toBe(413);
  });
});

describe('OneNET (older) push', () => {
  it('answers the URL check with msg when the signature matches, refuses it otherwise', async () => {
    const msg = 'xY9k+2AbQ';
    const nonce = 'Nn12Ab';
    const sig = md5b64(ONENET_SIGN_TOKEN + nonce + msg);
    // Unescaped '+' in the query, as the platform sends it: it must still verify.
    const ok = await send('GET', `/push/onenet/${ON_TOKEN}?msg=${encodeURIComponent(msg)}&nonce=${nonce}&signature=${sig}`);
    expect(ok).toEqual({ status: 200, body: msg });
    const bad = await send('GET', `/push/onenet/${ON_TOKEN}?msg=${encodeURIComponent(msg)}&nonce=${nonce}&signature=${encodeURIComponent(md5b64('wrong' + nonce + msg))}`);
    expect([bad.status, errorOf(bad)]).toEqual([401, 'PUSH_BAD_SIGNATURE']);
  });

  it('type 1 data points (by dev_id, and a binary frame as hex by IMEI), type 2 online/offline, type 7 command results; a repeat stored once', async () => {
    const at = now() - 100;
    const single = onenetBody({ type: 1, dev_id: 52001, ds_id: 'GasConcentration', at, value: 7.5 });
    expect((await post(`/push/onenet/${ON_TOKEN}`, single)).status).toBe(200);
    expect(JSON.parse((await post(`/push/onenet/${ON_TOKEN}`, single)).body)).toMatchObject({ kept: 0, duplicates: 1 });
    const list = onenetBody([
      { type: 1, imei: '860000000000044', dev_id: 52002, ds_id: '3300_0_5750', at: at + 1, value: smokeFrame({ battery: 55, obscuration: 0.3, alarm: false }).toString('hex') },
      { type: 2, dev_id: 52001, status: 0, login_type: 10, at: at + 2 },
      { type: 7, dev_id: 52001, cmd_type: 2, cmd_id: 'c-77', at: at + 3 },
    ]);
    expect((await post(`/push/onenet/${ON_TOKEN}`, list)).status).toBe(200);
    await waitFor(() => readingsOf('smoke-on-2').length > 0 && eventsOf('gas-on-1').some((e) => e.type === 'command_response'), 5000, 'OneNET data');
    await t.edge.flush(5000);
    expect(readingsOf('gas-on-1').filter((r) => r.ts === at)).toHaveLength(1);
    expect(readingsOf('gas-on-1').find((r) => r.ts === at)!.values).toEqual({ gas_lel: 7.5 });
    expect(readingsOf('smoke-on-2')[0]!.values).toMatchObject({ battery: 55, smoke_obscuration: 0.3 });
    expect(eventsOf('gas-on-1').find((e) => e.type === 'device_offline')).toMatchObject({ ts: at + 2, attrs: { platform: 'onenet', login_type: 'nb-iot' } });
    expect(eventsOf('gas-on-1').find((e) => e.type === 'command_response')).toMatchObject({ attrs: { task_id: 'c-77' } });
  });

  it('decrypts enc_msg (AES-256-CBC with the encodeKey) after checking its signature', async () => {
    const at = now() - 50;
    const a = await post(`/push/onenet/${ON_TOKEN}`, onenetEncrypted({ type: 1, dev_id: 52001, ds_id: 'BatteryLevel', at, value: 64 }));
    expect(a.status).toBe(200);
    await waitFor(() => readingsOf('gas-on-1').some((r) => r.values.battery === 64), 5000, 'the decrypted reading');
    const tampered = onenetEncrypted({ type: 1, dev_id: 52001, ds_id: 'BatteryLevel', at: at + 1, value: 65 });
    tampered.msg_signature = md5b64('another-token' + tampered.nonce + tampered.enc_msg);
    const bad = await post(`/push/onenet/${ON_TOKEN}`, tampered);
    expect([bad.status, errorOf(bad)]).toEqual([401, 'PUSH_BAD_SIGNATURE']);
  });

  it('refuses a wrong msg_signature and counts it', async () => {
    const before = await refused('onenet', 'PUSH_BAD_SIGNATURE');
    const text = JSON.stringify({ type: 1, dev_id: 52001, ds_id: 'BatteryLevel', at: now(), value: 1 });
    const a = await post(`/push/onenet/${ON_TOKEN}`, `{"msg":${text},"msg_signature":"${md5b64('x' + 'n' + text)}","nonce":"n"}`);
    expect([a.status, errorOf(a)]).toEqual([401, 'PUSH_BAD_SIGNATURE']);
    expect(await refused('onenet', 'PUSH_BAD_SIGNATURE')).toBe(before + 1);
  });
});

describe('OneNET Studio push', () => {
  it('property notifications (plain and AES-encrypted) become readings; a repeated id is stored once', async () => {
    const t0 = now() - 200;
    const plain = studioBody(studioProperty({ GasConcentration: { value: 3.5, time: t0 }, BatteryLevel: { value: 88, time: t0 } }), { id: 'push-1' });
    expect((await post(`/push/onenet-studio/${ST_TOKEN}`, plain)).status).toBe(200);
    expect(JSON.parse((await post(`/push/onenet-studio/${ST_TOKEN}`, plain)).body)).toMatchObject({ duplicates: 1 });
    const enc = studioBody(studioProperty({ GasConcentration: { value: 30, time: t0 + 10 }, AlarmState: { value: true, time: t0 + 10 } }), { id: 'push-2', encrypt: true });
    expect((await post(`/push/onenet-studio/${ST_TOKEN}`, enc)).status).toBe(200);
    await waitFor(() => eventsOf('gas-st-1').some((e) => e.type === 'gas_alarm'), 5000, 'the gas alarm');
    await t.edge.flush(5000);
    expect(readingsOf('gas-st-1').filter((r) => r.ts === t0)).toHaveLength(1);
    expect(readingsOf('gas-st-1').find((r) => r.ts === t0)!.values).toEqual({ gas_lel: 3.5, battery: 88 });
    expect(readingsOf('gas-st-1').find((r) => r.ts === t0 + 10)!.values).toEqual({ gas_lel: 30, alarm: true });
    expect(eventsOf('gas-st-1').find((e) => e.type === 'gas_alarm')).toMatchObject({ priority: 'alarm', attrs: { gas_lel: '30' } });
  });

  it('event notifications become events; the URL check works; a wrong signature and an unknown device are refused', async () => {
    const t0 = now();
    const ev = studioBody({ deviceName: 'gas-st-1', productId: 'prod-A', messageType: 'notify', notifyType: 'event', data: { id: '9', params: { SensorFault: { value: { code: 4 }, time: t0 } } } }, { id: 'push-3' });
    expect((await post(`/push/onenet-studio/${ST_TOKEN}`, ev)).status).toBe(200);
    await waitFor(() => eventsOf('gas-st-1').some((e) => e.type === 'sensor_fault'), 5000, 'the event');
    expect(eventsOf('gas-st-1').find((e) => e.type === 'sensor_fault')).toMatchObject({ ts: t0, attrs: { code: '4', platform: 'onenet-studio' } });

    const sig = md5b64(ONENET_SIGN_TOKEN + 'nn' + 'hello');
    expect(await send('GET', `/push/onenet-studio/${ST_TOKEN}?msg=hello&nonce=nn&signature=${encodeURIComponent(sig)}`)).toEqual({ status: 200, body: 'hello' });
    const bad = await post(`/push/onenet-studio/${ST_TOKEN}`, studioBody(studioProperty({ BatteryLevel: { value: 1, time: t0 } }), { id: 'push-4', token: 'wrong-token' }));
    expect([bad.status, errorOf(bad)]).toEqual([401, 'PUSH_BAD_SIGNATURE']);
    const unknown = await post(`/push/onenet-studio/${ST_TOKEN}`, studioBody({ ...studioProperty({ BatteryLevel: { value: 1, time: t0 } }), deviceName: 'nobody' }, { id: 'push-5' }));
    expect([unknown.status, errorOf(unknown)]).toEqual([422, 'PUSH_UNKNOWN_DEVICE']);
    // Retried after the device was refused: still refused, never 200.
    expect((await post(`/push/onenet-studio/${ST_TOKEN}`, studioBody({ ...studioProperty({ BatteryLevel: { value: 1, time: t0 } }), deviceName: 'nobody' }, { id: 'push-5' }))).status).toBe(422);
  });
});

describe('source allow-list', () => {
  it('refuses a platform whose allowFrom does not include the source address', async () => {
    const t2 = await startTestEdge(cloud.url, {
      registry: { devices: [{ id: 'smoke-x', family: 'nbiot', district: 'd', profile: 'nb-smoke-detector', ctwing: { deviceId: 'x' } }] },
      httpPush: { host: '127.0.0.1', port: 0, ctwing: { pathToken: CT_TOKEN, allowFrom: ['10.0.0.0/8', '::2'] } },
    });
    try {
      const a = await new Promise<Answer>((resolve, reject) => {
        const req = request({ host: '127.0.0.1', port: t2.edge.pushPort!, method: 'POST', path: `/push/ctwing/${CT_TOKEN}` }, (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve({ status: res.statusCode!, body: Buffer.concat(chunks).toString() }));
        });
        req.on('error', reject);
        req.end(JSON.stringify(ctDataReport({ deviceId: 'x' })));
      });
      expect([a.status, errorOf(a)]).toEqual([403, 'PUSH_ADDRESS_REFUSED']);
    } finally {
      await t2.stop();
    }
  });
});
