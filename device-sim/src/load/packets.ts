// Hand-encoded MQTT 3.1.1 and 5 packets for the load generator: CONNECT, PUBLISH (QoS 0/1), PINGREQ,
// DISCONNECT, and a parser for what a broker sends back (CONNACK, PUBACK, PINGRESP).
//
// Why not mqtt.js: it costs ~27 µs of CPU per QoS 1 message (/work/shared/anchors.md). On a 2-core box
// a load generator built on it eats the core the edge needs, and the benchmark then measures the load
// generator. Here a PUBLISH is encoded once per in-flight slot, and sending one is patching a packet id,
// a 13-digit timestamp and a few fixed-width values in place, then a write on a corked socket.

/** MQTT's variable-length "Remaining Length" (1-4 bytes). */
export function encodeRemainingLength(n: number): Buffer {
  const out: number[] = [];
  do {
    let b = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) b |= 0x80;
    out.push(b);
  } while (n > 0);
  return Buffer.from(out);
}

function str(s: string | Buffer): Buffer {
  const b = typeof s === 'string' ? Buffer.from(s, 'utf8') : s;
  const len = Buffer.alloc(2);
  len.writeUInt16BE(b.length);
  return Buffer.concat([len, b]);
}

export interface ConnectOptions {
  clientId: string;
  username?: string;
  password?: string;
  keepaliveS?: number;
  clean?: boolean;
  /** Protocol level: 4 (MQTT 3.1.1, default) or 5. MQTT 5 packets carry an empty property list. */
  version?: 4 | 5;
}

export function encodeConnect(o: ConnectOptions): Buffer {
  let flags = o.clean === false ? 0 : 0x02;
  if (o.username !== undefined) flags |= 0x80;
  if (o.password !== undefined) flags |= 0x40;
  const ka = Buffer.alloc(2);
  ka.writeUInt16BE(o.keepaliveS ?? 60);
  const body = Buffer.concat([
    str('MQTT'),
    Buffer.from([o.version ?? 4, flags]),
    ka,
    ...(o.version === 5 ? [Buffer.from([0])] : []),
    str(o.clientId),
    ...(o.username !== undefined ? [str(o.username)] : []),
    ...(o.password !== undefined ? [str(o.password)] : []),
  ]);
  return Buffer.concat([Buffer.from([0x10]), encodeRemainingLength(body.length), body]);
}

export interface PublishTemplate {
  /** The whole packet; the slots below are patched in place before each send. */
  packet: Buffer;
  /** Offset of the 2-byte packet id (QoS 1), or -1. */
  idOffset: number;
  /** Offset of the 13 ASCII digits of `"ts":`, or -1 when the payload has none. */
  tsOffset: number;
  /** Offsets of fixed-width "dd.d" values in the payload. */
  valueOffsets: number[];
}

/**
 * A PUBLISH whose payload is `payload`; `tsMarker` / `valueMarker` (e.g. "9999999999999", "88.8") are
 * found in the payload and remembered as patchable slots.
 */
export function encodePublishTemplate(topic: string, payload: string, qos: 0 | 1, markers: { ts?: string; values?: string[] } = {}, version: 4 | 5 = 4): PublishTemplate {
  const t = str(topic);
  const p = Buffer.from(payload, 'utf8');
  // MQTT 5: the packet id is followed by the Property Length, 0 here.
  const idLen = (qos > 0 ? 2 : 0) + (version === 5 ? 1 : 0);
  const remaining = t.length + idLen + p.length;
  const rl = encodeRemainingLength(remaining);
  const packet = Buffer.alloc(1 + rl.length + remaining);
  packet[0] = 0x30 | (qos << 1);
  rl.copy(packet, 1);
  let o = 1 + rl.length;
  t.copy(packet, o);
  o += t.length;
  const idOffset = qos > 0 ? o : -1;
  o += idLen;
  const payloadOffset = o;
  p.copy(packet, o);
  const find = (m: string, from = 0) => {
    const i = payload.indexOf(m, from);
    if (i < 0) throw new Error(`marker ${m} not in payload ${payload}`);
    return payloadOffset + Buffer.byteLength(payload.slice(0, i));
  };
  const tsOffset = markers.ts ? find(markers.ts) : -1;
  const valueOffsets: number[] = [];
  let from = 0;
  for (const m of markers.values ?? []) {
    const i = payload.indexOf(m, from);
    if (i < 0) throw new Error(`marker ${m} not in payload ${payload}`);
    valueOffsets.push(payloadOffset + Buffer.byteLength(payload.slice(0, i)));
    from = i + m.length;
  }
  return { packet, idOffset, tsOffset, valueOffsets };
}

const ZERO = 0x30;

/** Writes `n` (a non-negative integer) as exactly 13 ASCII digits at `off`. */
export function writeTs13(buf: Buffer, off: number, n: number): void {
  for (let i = 12; i >= 0; i--) {
    buf[off + i] = ZERO + (n % 10);
    n = Math.floor(n / 10);
  }
}

/** Writes tenths (100..999) as "dd.d" at `off`. */
export function writeTenths4(buf: Buffer, off: number, tenths: number): void {
  buf[off] = ZERO + Math.floor(tenths / 100);
  buf[off + 1] = ZERO + (Math.floor(tenths / 10) % 10);
  buf[off + 2] = 0x2e;
  buf[off + 3] = ZERO + (tenths % 10);
}

export const PINGREQ = Buffer.from([0xc0, 0x00]);
export const DISCONNECT = Buffer.from([0xe0, 0x00]);

export type BrokerPacket =
  | { type: 'connack'; returnCode: number }
  | { type: 'puback'; id: number }
  | { type: 'pingresp' }
  | { type: 'other'; byte0: number };

/**
 * Splits a broker's byte stream into packets. Only the few packets a publisher receives are decoded;
 * anything else is skipped by its length. `onPuback` is the hot path and gets the id without an object.
 */
export class BrokerParser {
  private pending: Buffer | undefined;

  constructor(
    private readonly onPuback: (id: number) => void,
    private readonly onOther: (p: BrokerPacket) => void,
  ) {}

  push(chunk: Buffer): void {
    let buf = chunk;
    if (this.pending) {
      buf = Buffer.concat([this.pending, chunk]);
      this.pending = undefined;
    }
    let o = 0;
    const n = buf.length;
    while (o < n) {
      const b0 = buf[o]!;
      // Fast path: PUBACK is always 0x40 0x02 id id.
      if (b0 === 0x40 && o + 4 <= n && buf[o + 1] === 0x02) {
        this.onPuback((buf[o + 2]! << 8) | buf[o + 3]!);
        o += 4;
        continue;
      }
      // General: fixed header + remaining length.
      let len = 0;
      let mult = 1;
      let i = o + 1;
      let complete = false;
      for (let k = 0; k < 4 && i < n; k++, i++) {
        const b = buf[i]!;
        len += (b & 0x7f) * mult;
        mult *= 128;
        if ((b & 0x80) === 0) {
          complete = true;
          i++;
          break;
        }
      }
      if (!complete || i + len > n) {
        this.pending = Buffer.from(buf.subarray(o));
        return;
      }
      const type = b0 >> 4;
      if (type === 2) this.onOther({ type: 'connack', returnCode: buf[i + 1] ?? 255 });
      else if (type === 4) this.onPuback((buf[i]! << 8) | buf[i + 1]!);
      else if (type === 13) this.onOther({ type: 'pingresp' });
      else this.onOther({ type: 'other', byte0: b0 });
      o = i + len;
    }
  }
}
