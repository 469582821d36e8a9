// China Mobile OneNET's side of an HTTP push, simulated (docs/protocols/onenet.md): the URL check a
// platform makes when the push is configured, and signed data pushes — OneNET (older): `{msg,
// msg_signature, nonce}` or the encrypted `{enc_msg, msg_signature, nonce}`; OneNET Studio: `{msg,
// signature, nonce, time, id}` with msg a JSON string, optionally AES-encrypted. Signature =
// Base64(MD5(token + nonce + msg)). Any non-200 is retried. Written from the formats, not the receiver.
import { createCipheriv, createHash, randomBytes } from 'node:crypto';
import { postWithRetry, type PushAttempt, type PushCounts, type PushTransportOptions } from './ctwing-push.ts';

export function onenetSign(token: string, nonce: string, msg: string): string {
  return createHash('md5').update(token + nonce + msg, 'utf8').digest('base64');
}

const nonce = () => randomBytes(6).toString('base64url');

/** The URL check: GET ?msg&nonce&signature; a subscriber that verifies answers msg itself. */
export async function onenetUrlCheck(url: string, token: string): Promise<{ ok: boolean; status: number; body: string }> {
  const msg = randomBytes(9).toString('base64');
  const n = nonce();
  const sig = onenetSign(token, n, msg);
  // The platform puts the values into the query unescaped ('+' stays '+'), as receivers report.
  const res = await fetch(`${url}?msg=${msg}&nonce=${n}&signature=${sig}`, { signal: AbortSignal.timeout(5000) });
  const body = await res.text();
  return { ok: res.status === 200 && body === msg, status: res.status, body };
}

/** OneNET encrypted mode: AES-256-CBC, key = Base64-decode(encodeKey + "="), IV = its first 16 bytes. */
export function onenetEncrypt(text: string, encodeKey: string): string {
  const key = Buffer.from(encodeKey + '=', 'base64');
  const body = Buffer.from(text, 'utf8');
  const len = Buffer.alloc(4);
  len.writeUInt32BE(body.length);
  const plain = Buffer.concat([randomBytes(16), len, body]);
  const pad = 32 - (plain.length % 32);
  const c = createCipheriv('aes-256-cbc', key, key.subarray(0, 16));
  c.setAutoPadding(false);
  return Buffer.concat([c.update(Buffer.concat([plain, Buffer.alloc(pad, pad)])), c.final()]).toString('base64');
}

export interface OnenetDevice {
  devId: number;
  imei?: string;
}

/** The older OneNET platform pushing one device's data points and status. */
export class OnenetPush {
  readonly counts: PushCounts = { delivered: 0, retried: 0, failed: 0 };
  constructor(
    readonly opts: PushTransportOptions & { token: string; encodeKey?: string },
    readonly device: OnenetDevice,
  ) {}

  dataPoint(dsId: string, value: unknown, at = Date.now()): Promise<PushAttempt> {
    return this.send({ type: 1, dev_id: this.device.devId, ...(this.device.imei ? { imei: this.device.imei } : {}), ds_id: dsId, at, value });
  }

  status(online: boolean, at = Date.now()): Promise<PushAttempt> {
    return this.send({ type: 2, dev_id: this.device.devId, status: online ? 1 : 0, login_type: 10, at });
  }

  send(msg: unknown): Promise<PushAttempt> {
    const n = nonce();
    const text = JSON.stringify(msg);
    const body = this.opts.encodeKey
      ? (() => {
          const enc = onenetEncrypt(text, this.opts.encodeKey!);
          return JSON.stringify({ enc_msg: enc, msg_signature: onenetSign(this.opts.token, n, enc), nonce: n });
        })()
      : `{"msg":${text},"msg_signature":"${onenetSign(this.opts.token, n, text)}","nonce":"${n}"}`;
    return postWithRetry(this.opts, body, this.counts);
  }
}

export interface StudioDevice {
  productId: string;
  deviceName: string;
}

/** OneNET Studio pushing one device's thing-model notifications. */
export class OnenetStudioPush {
  readonly counts: PushCounts = { delivered: 0, retried: 0, failed: 0 };
  private seq = 0;
  constructor(
    readonly opts: PushTransportOptions & { token: string; aesKey?: string },
    readonly device: StudioDevice,
  ) {}

  property(params: Record<string, number | boolean | string>, time = Date.now()): Promise<PushAttempt> {
    const p: Record<string, { value: unknown; time: number }> = {};
    for (const [k, v] of Object.entries(params)) p[k] = { value: v, time };
    return this.notify('property', p);
  }

  event(identifier: string, value: Record<string, number | string | boolean>, time = Date.now()): Promise<PushAttempt> {
    return this.notify('event', { [identifier]: { value, time } });
  }

  private notify(notifyType: string, params: Record<string, unknown>): Promise<PushAttempt> {
    this.seq++;
    return this.send(
      { deviceName: this.device.deviceName, productId: this.device.productId, messageType: 'notify', notifyType, data: { id: String(this.seq), version: '1.0', params } },
      `${this.device.productId}-${this.device.deviceName}-${Date.now()}-${this.seq}`,
    );
  }

  /** One push with its id (the same id again is the platform's retry of it). */
  send(msg: Record<string, unknown>, id: string): Promise<PushAttempt> {
    let text = JSON.stringify(msg);
    if (this.opts.aesKey) {
      const k = Buffer.from(this.opts.aesKey, 'utf8');
      const c = createCipheriv('aes-128-cbc', k, k);
      text = Buffer.concat([c.update(text, 'utf8'), c.final()]).toString('base64');
    }
    const n = nonce();
    return postWithRetry(this.opts, JSON.stringify({ msg: text, signature: onenetSign(this.opts.token, n, text), nonce: n, time: Date.now(), id }), this.counts);
  }
}
