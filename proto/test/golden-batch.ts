// The batch pinned by vectors/batch-v1.hex: row form (a lone reading), column form (a device with
// several readings, decimal and double columns, a flag and a text column, quality, device_seq) and an event.
import type { Ack, Batch } from '../src/index.ts';

export const goldenBatch: Batch = {
  edgeId: 'edge-zz-01',
  seq: 4_294_967_301,
  createdMs: 1763900001000,
  readings: [
    { deviceId: 'demo-nb-001', family: 'nbiot', ts: 1763900000500, values: { battery_pct: 87, rsrp: -95.5, alarm: false }, tags: { district: 'guancheng' }, deviceSeq: 42 },
    { deviceId: 'demo-env-001', family: 'environment', ts: 1763900000000, values: { pm25: 35.2, pm10: 61, co: 0.71, raw: Math.PI, door: true, state: 'ok' }, quality: 'N', tags: { district: 'jinshui', site: 'S-1' }, deviceSeq: 7 },
    { deviceId: 'demo-env-001', family: 'environment', ts: 1763900010000, values: { pm25: 36.0, pm10: 60.5, co: 0.7, raw: Math.E, door: false, state: 'ok' }, quality: 'F', tags: { district: 'jinshui', site: 'S-1' }, deviceSeq: 8 },
  ],
  events: [
    { deviceId: 'demo-fire-001', family: 'fire', ts: 1763900000900, type: 'fire_alarm', attrs: { zone: 'B2-07' }, priority: 'alarm', id: 'ev-1', tags: { district: 'zhongyuan' }, deviceSeq: 3 },
  ],
};

export const goldenAck: Ack = {
  seq: 4_294_967_301,
  accepted: 3,
  rejected: 1,
  rejections: [{ kind: 'reading', index: 2, code: 'VALUE_NOT_FINITE', message: 'pm25 is not a finite number' }],
  duplicate: false,
};

/** v1.1: readings with tags of their own beyond their device's (a fire panel's components). */
export const goldenBatchTags: Batch = {
  edgeId: 'edge-zz-01',
  seq: 77,
  createdMs: 1763900002000,
  readings: [
    { deviceId: 'fire-panel-1', family: 'fire', ts: 1763900000000, values: { sprinkler_pressure: 0.42 }, tags: { district: 'zhongyuan', component: '1:3001', zone: 'Z-B1' } },
    { deviceId: 'fire-panel-1', family: 'fire', ts: 1763900000000, values: { tank_level: 3.2 }, tags: { district: 'zhongyuan', component: '1:4001', zone: 'Z-B2' } },
    { deviceId: 'fire-panel-1', family: 'fire', ts: 1763900060000, values: { tank_level: 3.1 }, tags: { district: 'zhongyuan', component: '1:4001', zone: 'Z-B2' } },
  ],
  events: [],
};

/** v1.1: an alarm-lane batch that also reports readings the edge dropped. */
export const goldenBatchDrops: Batch = {
  edgeId: 'edge-zz-01',
  seq: 78,
  createdMs: 1763900003000,
  readings: [],
  events: [{ deviceId: 'demo-fire-001', family: 'fire', ts: 1763900002000, type: 'fire_alarm', attrs: { zone: 'F2-Z1' }, priority: 'alarm', id: 'ev-2', tags: { district: 'zhongyuan' } }],
  drops: [{ deviceId: 'sim-env-0007', dataClass: 'telemetry', reason: 'QUEUE_FULL', count: 1234, oldestTsMs: 1763800000000 }],
  lane: 'alarm',
};
