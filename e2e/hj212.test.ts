// Environment stations over HJ 212-2017 on TCP, end to end: the shared test vectors sent on one
// connection to the edge's listener, the answers the standard asks for, and the values in InfluxDB
// with the station profile's names, units (mg/m³ gases converted to µg/m³), timestamps and quality flags.
import { readFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeFrame } from '@citysense/edge/hj212';
import { startStack, type Stack } from './stack.ts';
import { waitFor } from './setup/influx.ts';

interface Vector { name: string; frame: string; valid: boolean; data_time?: string }
const vectors: Vector[] = JSON.parse(readFileSync(new URL('../../shared/testdata/hj212/vectors.json', import.meta.url), 'utf8')).vectors;
const v = (name: string) => vectors.find((x) => x.name === name)!;
const MN = '010000A8900016F000169DC0';
const DTU_MN = '010000A8900016F000169DD1';

let stack: Stack;
beforeAll(async () => {
  stack = await startStack(
    'hj212',
    [
      { id: 'demo-hj212-001', family: 'environment', district: 'jinshui', profile: 'hj212-air-station', hj212: { mn: MN, password: '123456' } },
      { id: 'dtu-hj212-002', family: 'environment', district: 'erqi', profile: 'hj212-air-station-dtu', secret: 'dtu-hj212-002-secret', hj212: { mn: DTU_MN } },
    ],
    // The vectors are from 2024: accept old timestamps for this test.
    { normalise: { maxPastAgeMs: 20 * 365 * 24 * 3600_000 } },
  );
});
afterAll(async () => {
  await stack?.close();
});

/** Opens a station connection and collects the answer frames the edge writes back. */
async function station(): Promise<{ sock: Socket; answers: string[] }> {
  const sock = connect({ host: '127.0.0.1', port: stack.edge.hj212Port! });
  await new Promise<void>((r, j) => sock.once('connect', r).once('error', j));
  const answers: string[] = [];
  let buf = '';
  sock.on('data', (c) => {
    buf += String(c);
    let i: number;
    while ((i = buf.indexOf('\r\n')) >= 0) {
      answers.push(buf.slice(0, i));
      buf = buf.slice(i + 2);
    }
  });
  return { sock, answers };
}

async function metric(name: string): Promise<string> {
  return stack.edge.metrics.getSingleMetricAsString(name);
}

describe('HJ 212-2017 station → edge listener → cloud → InfluxDB', () => {
  it('good frames around a bad-CRC and a wrong-length frame on one connection all arrive; the bad ones are refused and counted', async () => {
    const { sock, answers } = await station();
    const stream = [v('realtime-air-2011'), v('bad-crc'), v('wrong-length'), v('realtime-flags-no-ack'), v('minute-air-2051')].map((x) => x.frame).join('');
    // Byte by byte in uneven pieces, as a slow DTU would.
    const bytes = Buffer.from(stream);
    for (let i = 0; i < bytes.length; i += 37) sock.write(bytes.subarray(i, i + 37));
    // Two data frames want an answer (Flag=5): 9014 with their QN.
    await waitFor('two 9014 answers', () => answers.filter((a) => a.includes('CN=9014')).length === 2);
    expect(answers.some((a) => a.includes('QN=20240115103000123'))).toBe(true);
    expect(answers.some((a) => a.includes('QN=20240115103000456'))).toBe(true);
    sock.end();

    let rows: Record<string, unknown>[] = [];
    await waitFor('three readings in InfluxDB', async () => {
      rows = await stack.influx.query(`SELECT * FROM environment WHERE device_id = 'demo-hj212-001'`);
      return rows.length === 3;
    });
    const at = (iso: string) => rows.find((r) => r.time === Date.parse(iso))!;
    // CN=2011 real-time at DataTime 10:30 China time; SO2 0.008 mg/m³ → 8 µg/m³; PM2.5 as sent.
    expect(at('2024-01-15T10:30:00+08:00')).toMatchObject({ pm25: 35.2, pm10: 68, so2: 8, no2: 32, co: 0.6, temperature: 12.6, noise: 55.3, model: 'HJ212-AQMS', district: 'jinshui' });
    // Flags: T (above the instrument's range) and D (fault) are kept and marked, not dropped.
    expect(at('2024-01-15T11:00:00+08:00')).toMatchObject({ pm25: 512, pm25_flag: 'T', pm10: 0, pm10_flag: 'D', quality: 'D' });
    // CN=2051 minute data: statistics keep the metric's name with a suffix.
    expect(at('2024-01-15T10:20:00+08:00')).toMatchObject({ pm25_min: 30.1, pm25_avg: 34.8, pm25_max: 41, noise_avg: 55 });

    const refused = await metric('citysense_edge_hj212_frames_refused_total');
    expect(refused).toMatch(/reason="HJ212_BAD_CRC"\} 1/);
    expect(refused).toMatch(/reason="HJ212_BAD_LENGTH"\} 1/);
  });

  it('a wrong password is refused with QnRtn 3 and nothing is stored', async () => {
    const { sock, answers } = await station();
    sock.write(v('wrong-password').frame);
    await waitFor('the 9011 refusal', () => answers.length === 1);
    expect(answers[0]).toContain('CN=9011');
    expect(answers[0]).toContain('QnRtn=3');
    sock.end();
    expect(await metric('citysense_edge_hj212_frames_refused_total')).toMatch(/reason="HJ212_BAD_PASSWORD"\} 1/);
  });

  it('behind a DTU over MQTT: the same frames as payloads land too; a frame with another station\'s MN is refused', async () => {
    const c = await mqtt.connectAsync(stack.mqttUrl, { username: 'dtu-hj212-002', password: 'dtu-hj212-002-secret', clientId: 'dtu-hj212-002', reconnectPeriod: 0 });
    const seg = (mn: string) => `QN=20240115120000001;ST=22;CN=2011;PW=123456;MN=${mn};Flag=4;CP=&&DataTime=20240115120000;a34004-Rtd=41.5,a34004-Flag=N;a21004-Rtd=0.040,a21004-Flag=N&&`;
    await c.publishAsync('devices/dtu-hj212-002/telemetry', encodeFrame(seg(DTU_MN)), { qos: 1 });
    await c.publishAsync('devices/dtu-hj212-002/telemetry', encodeFrame(seg(MN)), { qos: 1 });
    await c.endAsync();
    let rows: Record<string, unknown>[] = [];
    await waitFor('the DTU reading', async () => {
      rows = await stack.influx.query(`SELECT * FROM environment WHERE device_id = 'dtu-hj212-002'`);
      return rows.length === 1;
    });
    expect(rows[0]).toMatchObject({ time: Date.parse('2024-01-15T12:00:00+08:00'), pm25: 41.5, no2: 40, district: 'erqi' });
    expect(await metric('citysense_edge_messages_rejected_total')).toMatch(/device="dtu-hj212-002",reason="HJ212_WRONG_MN"\} 1/);
  });
});
