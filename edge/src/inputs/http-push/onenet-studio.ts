// OneNET Studio HTTP push (docs/protocols/onenet.md lists the sources): POST bodies
// `{msg, signature, nonce, time, id}` where msg is a JSON string (or, in secure mode, that string
// AES-encrypted and base64-encoded), signed as Base64(MD5(token + nonce + msg)). Device notifications:
// messageType "notify", notifyType "property" (data.params: {name: {value, time}}) or "event"
// (data.params: {eventName: {value: {...}, time}}). The push's `id` recognises a repeat.
import type { MetricValue } from '@citysense/proto';
import type { DecodedDeviceEvent } from '../../agent/ingest.ts';
import type { PushKey } from '../../registry/registry.ts';
import { checkOnenetSignature, decryptStudioMsg } from './sign.ts';
import { idText, isObject, msTime, refuse, scalar, type Parsed, type PushItem } from './types.ts';

export interface StudioKeys {
  token: string;
  aesKey?: string | undefined;
}

/** An event identifier as a citysense event type (lower-case letters, digits, _). */
function eventType(identifier: string): string | undefined {
  const t = identifier
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .toLowerCase()
    .replace(/[^a-z0-9_]+/g, '_')
    .replace(/^_+|_+$/g, '')
    .slice(0, 64);
  return /^[a-z]/.test(t) ? t : undefined;
}

export function parseOnenetStudio(body: unknown, keys: StudioKeys): Parsed {
  if (!isObject(body)) return refuse('PUSH_BAD_JSON', 'the body is not a JSON object');
  const { msg, signature, nonce } = body;
  if (typeof msg !== 'string') return refuse('PUSH_BAD_MESSAGE', 'msg is not a JSON string');
  if (typeof signature !== 'string' || typeof nonce !== 'string') return refuse('PUSH_BAD_SIGNATURE', 'no signature or nonce');
  if (!checkOnenetSignature(keys.token, nonce, msg, signature)) return refuse('PUSH_BAD_SIGNATURE', 'signature does not match msg');
  let text = msg;
  if (!msg.trimStart().startsWith('{')) {
    if (!keys.aesKey) return refuse('PUSH_DECRYPT_FAILED', 'msg is not JSON and httpPush.onenetStudio.aesKey is not configured');
    const plain = decryptStudioMsg(msg, keys.aesKey);
    if (plain === undefined) return refuse('PUSH_DECRYPT_FAILED', 'msg did not decrypt with the configured aesKey');
    text = plain;
  }
  let m: unknown;
  try {
    m = JSON.parse(text);
  } catch {
    return refuse(text === msg ? 'PUSH_BAD_MESSAGE' : 'PUSH_DECRYPT_FAILED', 'msg is not JSON');
  }
  if (!isObject(m)) return refuse('PUSH_BAD_MESSAGE', 'msg is not a JSON object');
  const productId = idText(m.productId);
  const deviceName = idText(m.deviceName);
  if (!productId || !deviceName) return refuse('PUSH_BAD_MESSAGE', 'msg without productId or deviceName');
  const lookup: PushKey[] = [`onenet:name:${productId}/${deviceName}`];
  const id = idText(body.id);
  const dedupeKey = id === undefined ? undefined : `id|${id}`;
  if (m.messageType !== 'notify') return refuse('PUSH_UNSUPPORTED_MESSAGE', `messageType ${String(m.messageType).slice(0, 32)}`);
  const data = isObject(m.data) ? m.data : undefined;
  const params = data && isObject(data.params) ? data.params : undefined;
  if (!params) return refuse('PUSH_BAD_MESSAGE', 'notify without data.params');
  const pushTime = msTime(body.time);
  const item = (message: string, report: PushItem['report']): Parsed => ({ ok: true, items: [{ message, lookup, dedupeKey, report }] });

  if (m.notifyType === 'property') {
    // One reading at the newest time among the properties (a device reports them together).
    const values: Record<string, MetricValue> = {};
    let ts: number | undefined;
    for (const [name, p] of Object.entries(params)) {
      const v = isObject(p) ? scalar(p.value) : scalar(p);
      if (v === undefined) continue;
      values[name] = v;
      const t = isObject(p) ? msTime(p.time) : undefined;
      if (t !== undefined && (ts === undefined || t > ts)) ts = t;
    }
    return item('property', { ts: ts ?? pushTime, values });
  }
  if (m.notifyType === 'event') {
    const events: DecodedDeviceEvent[] = [];
    for (const [name, p] of Object.entries(params)) {
      const type = eventType(name);
      if (!type) return refuse('PUSH_BAD_MESSAGE', `event identifier ${name.slice(0, 64)} is not usable as an event type`);
      const attrs: Record<string, string> = { platform: 'onenet-studio' };
      const value = isObject(p) ? p.value : undefined;
      if (isObject(value)) {
        for (const [k, v] of Object.entries(value)) {
          const s = scalar(v);
          if (s !== undefined && /^[A-Za-z_][A-Za-z0-9_]{0,63}$/.test(k)) attrs[k] = String(s);
        }
      }
      events.push({ ts: (isObject(p) ? msTime(p.time) : undefined) ?? pushTime, type, attrs });
    }
    if (events.length === 0) return refuse('PUSH_BAD_MESSAGE', 'event notify without events');
    return item('event', { ts: pushTime, events });
  }
  return refuse('PUSH_UNSUPPORTED_MESSAGE', `notifyType ${String(m.notifyType).slice(0, 32)}`);
}
