// OneNET (China Mobile, the older multi-protocol platform and its NB-IoT suite) HTTP push
// (docs/protocols/onenet.md lists the sources): the URL check, then POSTs of `{msg, msg_signature, nonce}`
// or, in encrypted mode, `{enc_msg, msg_signature, nonce}`. msg is one message or a list of them:
// type 1 a data point (dev_id, ds_id, at, value), type 2 online/offline (status, login_type),
// type 7 the result of a cached command (NB-IoT).
import type { MetricValue } from '@citysense/proto';
import type { PushedReport } from '../../agent/ingest.ts';
import type { PushKey } from '../../registry/registry.ts';
import { checkOnenetSignature, decryptOnenetMsg } from './sign.ts';
import { rawMember } from './raw-json.ts';
import { idText, isObject, msTime, refuse, scalar, type Parsed, type PushItem } from './types.ts';
import { frameFromText } from './frame-text.ts';

const IMEI = /^\d{15}$/;
const LOGIN_TYPES: Record<string, string> = { '1': 'edp', '6': 'modbus', '7': 'mqtt', '10': 'nb-iot' };

export interface OnenetKeys {
  token: string;
  encodeKey?: string | undefined;
}

/**
 * The signed text: msg exactly as the body carried it. Platforms that re-serialise compactly produce the
 * same text as JSON.stringify, which is tried second (a body pretty-printed by a proxy would differ).
 */
function signedTexts(raw: string, key: string, value: unknown): string[] {
  const out: string[] = [];
  const r = rawMember(raw, key);
  if (r !== undefined) out.push(typeof value === 'string' ? value : r);
  const s = typeof value === 'string' ? value : JSON.stringify(value);
  if (!out.includes(s)) out.push(s);
  return out;
}

function item(m: Record<string, unknown>): PushItem | string {
  const type = idText(m.type);
  const devId = idText(m.dev_id);
  const imei = typeof m.imei === 'string' && IMEI.test(m.imei) ? m.imei : undefined;
  if (!devId && !imei) return `type ${type ?? '?'} without dev_id or imei`;
  const lookup: PushKey[] = [];
  if (devId) lookup.push(`onenet:id:${devId}`);
  if (imei) lookup.push(`onenet:imei:${imei}`);
  const ts = msTime(m.at);
  const at = ts ?? '';
  const make = (message: string, dedupeKey: string | undefined, report: PushedReport): PushItem => ({ message, lookup, dedupeKey, report });
  switch (type) {
    case '1': {
      const ds = typeof m.ds_id === 'string' && m.ds_id !== '' ? m.ds_id : undefined;
      if (!ds) return 'type 1 without ds_id';
      const v = m.value;
      const s = scalar(v);
      let report: PushedReport;
      if (s !== undefined) {
        // A string value may be the device's own frame (NB-IoT transparent data): the store step decodes it
        // with a binary profile; other profiles take it as the value it is.
        const frame = typeof s === 'string' ? frameFromText(s) : undefined;
        report = { ts, values: { [ds]: s }, frame };
      } else if (isObject(v)) {
        const values: Record<string, MetricValue> = {};
        for (const [k, x] of Object.entries(v)) {
          const sx = scalar(x);
          if (sx !== undefined) values[k] = sx;
        }
        report = { ts, values };
      } else return `type 1 data point ${ds.slice(0, 64)} has no usable value`;
      return make('type1', ts === undefined ? undefined : `point|${ds}|${at}`, report);
    }
    case '2': {
      const status = idText(m.status);
      if (status !== '0' && status !== '1') return 'type 2 with status neither 0 nor 1';
      const attrs: Record<string, string> = { platform: 'onenet' };
      const login = idText(m.login_type);
      if (login) attrs.login_type = LOGIN_TYPES[login] ?? login;
      const online = status === '1';
      return make('type2', `online|${status}|${at}`, { ts, events: [{ ts, type: online ? 'device_online' : 'device_offline', attrs, priority: online ? 'routine' : 'warning' }] });
    }
    case '7': {
      const cmdId = idText(m.cmd_id);
      if (!cmdId) return 'type 7 without cmd_id';
      const cmdType = idText(m.cmd_type) ?? '';
      return make('type7', `command|${cmdId}|${cmdType}`, { ts, events: [{ ts, type: 'command_response', attrs: { platform: 'onenet', task_id: cmdId, result: cmdType === '2' ? 'CONFIRMED' : 'ACKNOWLEDGED' } }] });
    }
    default:
      return `unsupported:type ${String(type).slice(0, 16)}`;
  }
}

/** A POST body: signature checked over msg (or enc_msg) as sent, then decrypted when needed. */
export function parseOnenet(raw: string, body: unknown, keys: OnenetKeys): Parsed {
  if (!isObject(body)) return refuse('PUSH_BAD_JSON', 'the body is not a JSON object');
  const nonce = typeof body.nonce === 'string' ? body.nonce : undefined;
  const signature = typeof body.msg_signature === 'string' ? body.msg_signature : undefined;
  if (nonce === undefined || signature === undefined) return refuse('PUSH_BAD_SIGNATURE', 'no msg_signature or nonce');
  let msg: unknown;
  if (body.enc_msg !== undefined) {
    if (typeof body.enc_msg !== 'string') return refuse('PUSH_BAD_MESSAGE', 'enc_msg is not text');
    if (!checkOnenetSignature(keys.token, nonce, body.enc_msg, signature)) return refuse('PUSH_BAD_SIGNATURE', 'msg_signature does not match enc_msg');
    if (!keys.encodeKey) return refuse('PUSH_DECRYPT_FAILED', 'an encrypted push, but httpPush.onenet.encodeKey is not configured');
    const plain = decryptOnenetMsg(body.enc_msg, keys.encodeKey);
    if (plain === undefined) return refuse('PUSH_DECRYPT_FAILED', 'enc_msg did not decrypt with the configured encodeKey');
    try {
      msg = JSON.parse(plain);
    } catch {
      return refuse('PUSH_DECRYPT_FAILED', 'enc_msg decrypted to something that is not JSON (wrong encodeKey?)');
    }
  } else {
    if (body.msg === undefined) return refuse('PUSH_BAD_MESSAGE', 'neither msg nor enc_msg');
    if (!signedTexts(raw, 'msg', body.msg).some((t) => checkOnenetSignature(keys.token, nonce, t, signature))) {
      return refuse('PUSH_BAD_SIGNATURE', 'msg_signature does not match msg');
    }
    msg = body.msg;
    // Some platform versions send msg as a JSON string.
    if (typeof msg === 'string') {
      try {
        msg = JSON.parse(msg);
      } catch {
        return refuse('PUSH_BAD_MESSAGE', 'msg is text but not JSON');
      }
    }
  }
  const list = Array.isArray(msg) ? msg : [msg];
  if (list.length === 0) return refuse('PUSH_BAD_MESSAGE', 'msg is an empty list');
  const items: PushItem[] = [];
  for (const m of list) {
    if (!isObject(m)) return refuse('PUSH_BAD_MESSAGE', 'a msg entry is not an object');
    const it = item(m);
    if (typeof it === 'string') return it.startsWith('unsupported:') ? refuse('PUSH_UNSUPPORTED_MESSAGE', it.slice(12)) : refuse('PUSH_BAD_MESSAGE', it);
    items.push(it);
  }
  return { ok: true, items };
}
