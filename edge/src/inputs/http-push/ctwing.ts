// CTWing AEP (China Telecom) subscription push: one JSON message per POST, told apart by messageType
// (docs/protocols/ctwing.md lists the sources). Field types vary between products and platform versions
// (upPacketSN -1 or "", serviceId "" or a number, IMSI "undefined"): every field is read leniently, and
// only what identifies the device and carries the data is required. IMSI is never read (personal, unused).
import type { MetricValue } from '@citysense/proto';
import type { DecodedDeviceEvent, PushedReport } from '../../agent/ingest.ts';
import type { PushKey } from '../../registry/registry.ts';
import { idText, isObject, msTime, refuse, scalar, type Parsed, type PushItem } from './types.ts';

const IMEI = /^\d{15}$/;
const BASE64 = /^[A-Za-z0-9+/\s]*={0,2}$/;

/** Values the platform decoded: `{serviceId, serviceData: {...}}` or plain properties; APPdata is the raw frame. */
function payloadOf(payload: unknown): Pick<PushedReport, 'frame' | 'values'> | string {
  const parts = Array.isArray(payload) ? payload : [payload];
  const values: Record<string, MetricValue> = {};
  for (const part of parts) {
    if (!isObject(part)) return 'payload is not an object';
    if (typeof part.APPdata === 'string') {
      if (parts.length > 1) return 'APPdata inside a list of payloads';
      if (!BASE64.test(part.APPdata)) return 'APPdata is not base64';
      const frame = Buffer.from(part.APPdata, 'base64');
      if (frame.length === 0) return 'APPdata is empty';
      return { frame };
    }
    const data = isObject(part.serviceData) ? part.serviceData : part;
    for (const [k, v] of Object.entries(data)) {
      if (data === part && k === 'serviceId') continue;
      const s = scalar(v);
      if (s !== undefined) values[k] = s;
    }
  }
  return { values };
}

/** 1 = information, 2 = warning, 3 = fault (CTWing eventReport.eventType). */
function eventPriority(t: string | undefined): DecodedDeviceEvent['priority'] {
  return t === '2' || t === '3' ? 'warning' : 'routine';
}

export function parseCtwing(body: unknown): Parsed {
  if (!isObject(body)) return refuse('PUSH_BAD_JSON', 'the body is not a JSON object');
  const type = body.messageType;
  if (typeof type !== 'string') return refuse('PUSH_BAD_MESSAGE', 'no messageType');
  const deviceId = idText(body.deviceId);
  const imei = typeof body.IMEI === 'string' && IMEI.test(body.IMEI) ? body.IMEI : undefined;
  if (!deviceId && !imei) return refuse('PUSH_BAD_MESSAGE', `${type} without deviceId or IMEI`);
  const lookup: PushKey[] = [];
  if (deviceId) lookup.push(`ctwing:id:${deviceId}`);
  if (imei) lookup.push(`ctwing:imei:${imei}`);
  const ts = msTime(body.timestamp);
  const productId = idText(body.productId);
  const item = (dedupeKey: string | undefined, report: PushedReport): Parsed => ({ ok: true, items: [{ message: type, lookup, productId, dedupeKey, report } satisfies PushItem] });
  // A report's identity on the platform: its packet and data sequence numbers and time (any may be absent).
  const seq = [idText(body.upPacketSN), idText(body.upDataSN), ts].map((x) => x ?? '').join('|');
  const reportKey = seq === '||' ? undefined : `report|${seq}`;

  switch (type) {
    case 'dataReport':
    case 'dataReportTupUnion': {
      const p = payloadOf(body.payload);
      if (typeof p === 'string') return refuse('PUSH_BAD_MESSAGE', `${type}: ${p}`);
      return item(reportKey, { ts, ...p });
    }
    case 'eventReport': {
      const p = payloadOf(body.payload);
      if (typeof p === 'string') return refuse('PUSH_BAD_MESSAGE', `${type}: ${p}`);
      const eventType = idText(body.eventType);
      const attrs: Record<string, string> = { platform: 'ctwing' };
      if (eventType) attrs.event_type = eventType;
      const serviceId = idText(body.serviceId);
      if (serviceId) attrs.service_id = serviceId;
      return item(reportKey && `event|${seq}`, { ts, ...p, events: [{ ts, type: 'platform_event', attrs, priority: eventPriority(eventType) }] });
    }
    case 'deviceOnlineOfflineReport': {
      const t = idText(body.eventType);
      if (t !== '0' && t !== '1') return refuse('PUSH_BAD_MESSAGE', 'deviceOnlineOfflineReport: eventType is neither 1 (online) nor 0 (offline)');
      const online = t === '1';
      return item(`online|${t}|${ts ?? ''}`, {
        ts,
        events: [{ ts, type: online ? 'device_online' : 'device_offline', attrs: { platform: 'ctwing' }, priority: online ? 'routine' : 'warning' }],
      });
    }
    case 'commandResponse': {
      const taskId = idText(body.taskId);
      const result = isObject(body.result) ? body.result : {};
      const code = typeof result.resultCode === 'string' ? result.resultCode : undefined;
      if (!taskId || !code) return refuse('PUSH_BAD_MESSAGE', 'commandResponse without taskId or result.resultCode');
      return item(`command|${taskId}|${code}`, { ts, events: [{ ts, type: 'command_response', attrs: { platform: 'ctwing', task_id: taskId, result: code } }] });
    }
    default:
      return refuse('PUSH_UNSUPPORTED_MESSAGE', `messageType ${type.slice(0, 64)}`);
  }
}
