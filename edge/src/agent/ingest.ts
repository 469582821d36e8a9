// One device message through the pipeline's pure stages: decode (by the device's profile: JSON, binary
// layout, HJ 212) → profile (names, units, ranges, value-based events) → normalise (clock skew, names,
// duplicates) → sink. Bad input is counted and logged at a bounded rate, and costs nothing else: the
// valid values and readings around it go on.
import type { DeviceEvent, MetricValue, Reading } from '@citysense/proto';
import type { Device } from '../registry/registry.ts';
import type { EdgeMetrics } from '../metrics.ts';
import type { RateLimitedWarn } from '../log.ts';
import type { Sink } from '../sink.ts';
import type { TopicKind } from '../inputs/mqtt-broker/auth.ts';
import { MESSAGE_REJECT, decodeEvent, decodeTelemetry, type DecodedEvent, type ValueRejection } from '../decoders/json/json.ts';
import { DEFAULT_JSON_LIMITS, type JsonLimits } from '../decoders/json/limits.ts';
import { decodeBinary, DEFAULT_BINARY_LIMITS, type BinaryLimits } from '../decoders/binary/index.ts';
import { frameToReadings, HJ212_MAX_CP_PAIRS, parseFrameBytes, type Hj212Frame } from '../decoders/hj212/index.ts';
import { normaliseEvent, normaliseReading, type NormaliseOptions } from '../processors/normalise.ts';
import type { RawSample } from '../profiles/apply.ts';
import { Gb26875Decoder, Gb26875StreamFramer, type Gb26875Decoded } from '../decoders/gb26875/index.ts';
import { EDGE_NOTIFIED_ATTR } from '../alerts/rules.ts';

/**
 * Edge-local alerting: the `edge_notified` attribute is the edge's word to the cloud (the webhook targets
 * it already alerted of this event, edge/src/alerts/). A device may not say it: it would silence the
 * cloud's webhook to those targets. Removed from what devices send (the event id is left as it was).
 */
function withoutEdgeNotified(e: DeviceEvent): DeviceEvent {
  if (!Object.hasOwn(e.attrs, EDGE_NOTIFIED_ATTR)) return e;
  const attrs = { ...e.attrs };
  delete attrs[EDGE_NOTIFIED_ATTR];
  return { ...e, attrs };
}

/** Where a fire panel's reading comes from, as InfluxDB tags (names and descriptions stay out: free text). */
const COMPONENT_TAGS = ['building', 'floor', 'zone', 'component', 'component_type'];
function pickTags(t: Record<string, string>): Record<string, string> | undefined {
  let out: Record<string, string> | undefined;
  for (const k of COMPONENT_TAGS) if (t[k] !== undefined && t[k] !== '') (out ??= {})[k] = String(t[k]);
  return out;
}

/** An event a decoder produced itself (a GB 26875 state change), before normalising. */
export interface DecodedDeviceEvent extends DecodedEvent {
  priority?: DeviceEvent['priority'];
}

/**
 * A message refused whole (nothing of it reached the sink), for the MQTT input to tell the device
 * (MQTT 5 PUBACK reason code) or apply mqtt.v3RefusalPolicy. `payload`: it did not decode (0x99);
 * `content`: it decoded, but no value, event or time of it was acceptable (0x83).
 */
export interface MessageRefusal {
  refused: string;
  kind: 'payload' | 'content';
}

/** What an MQTT 5 PUBLISH carried besides its payload. */
export interface MessageMeta {
  userProperties?: readonly (readonly [string, string])[] | undefined;
}

export interface Ingest {
  /**
   * A message an authenticated device published on its own topic. Resolves once the sink holds it, or
   * with a refusal when nothing of it was kept (counted already); rejects when the sink refused it.
   */
  mqtt(device: Device, kind: TopicKind, payload: Buffer, receivedAt: number, meta?: MessageMeta): Promise<MessageRefusal | undefined>;
  /** Samples from an input that decoded them itself (HJ 212 over TCP, OPC-UA). */
  samples(device: Device, samples: readonly RawSample[], receivedAt: number, events?: readonly DecodedDeviceEvent[]): Promise<void>;
  /**
   * An HJ 212 frame whose MN and password the caller has checked; refusals of single values are counted
   * here. Resolves once the sink holds what was kept, and says whether anything was: the listener sends
   * its 9014 data answer only for a frame kept (or already kept: `duplicate`).
   */
  hj212Frame(device: Device, frame: Hj212Frame, receivedAt: number): Promise<ReportOutcome>;
  /**
   * A report a platform pushed for this device (CTWing, OneNET): the device's raw frame (decoded with its
   * profile), or values the platform decoded (named by the profile's `source` names), plus events. Resolves
   * once the sink holds what was kept, and says whether anything was: a push receiver answers its platform
   * 200 only for a report kept (or already kept: `duplicate`).
   */
  report(device: Device, report: PushedReport, receivedAt: number): Promise<ReportOutcome>;
  /**
   * One whole GB/T 26875.3 frame (as Gb26875StreamFramer cut it) of a device the caller identified.
   * Resolves once what it carried is held by the sink (nothing for an answer or a heartbeat not
   * forwarded), with the decoder's result; `frame` is absent when the frame itself was refused.
   */
  gb26875Frame(device: Device, frame: Uint8Array, receivedAt: number, input: 'mqtt' | 'tcp'): Promise<Gb26875Decoded>;
}

export interface Gb26875IngestOptions {
  /** At most one `heartbeat` reading per device per this many ms (0: none). Default 60 000. */
  heartbeatReadingIntervalMs?: number;
  /** Largest application data unit accepted in an MQTT message's frames. Default 1024. */
  maxAppData?: number;
}

export interface PushedReport {
  ts?: number | undefined;
  /** The device's own frame (CTWing APPdata, an NB-IoT data point's hex): decoded by the profile's format. */
  frame?: Buffer | undefined;
  /** Values decoded by the platform, by their platform names. */
  values?: Record<string, MetricValue> | undefined;
  events?: readonly DecodedDeviceEvent[] | undefined;
}

export type ReportOutcome =
  | { kept: true; readings: number; events: number }
  /** Nothing kept: `duplicate` (the same reading was already kept) or a refusal reason with its detail. */
  | { kept: false; duplicate: boolean; reason: string; detail: string };

interface Delivered {
  readings: number;
  events: number;
  /** Readings dropped as exact repeats of the previous one. */
  duplicates: number;
  /** The last refusal of a whole reading, when nothing was kept. */
  refusal: { reason: string; detail: string } | undefined;
}

function hasKeys(o: object): boolean {
  for (const _ in o) return true;
  return false;
}

/** The user properties a profile lists (`userProperties.tags`), first value of each; others are ignored. */
function pickUserProperties(props: readonly (readonly [string, string])[], spec: { tags: readonly string[]; maxValueLength: number }): Record<string, string> | undefined {
  let out: Record<string, string> | undefined;
  for (const [k, v] of props) {
    if (v === '' || v.length > spec.maxValueLength || !spec.tags.includes(k) || (out && k in out)) continue;
    (out ??= {})[k] = v;
  }
  return out;
}

/** A message's outcome from what deliver() kept: a repeat counts as kept (it was, the first time). */
function outcomeOf(d: Delivered): MessageRefusal | undefined {
  if (d.readings + d.events + d.duplicates > 0 || !d.refusal) return undefined;
  return { refused: d.refusal.reason, kind: 'content' };
}

const HEX_TEXT = /^(?:0x)?[0-9A-Fa-f]{2}(?:[\s:]*(?:0x)?[0-9A-Fa-f]{2})*\s*$/;
/** NB-IoT platforms and DTUs often forward a frame as hex text; raw frames are rarely all hex digits. */
function looksLikeHex(payload: Buffer): boolean {
  return payload.length >= 2 && payload.length <= 4096 && HEX_TEXT.test(payload.toString('latin1'));
}

/** Decoder limits (config `decoders`), checked before a payload's per-item structures are built. */
export interface DecoderLimits {
  json: JsonLimits;
  binary: BinaryLimits;
  hj212: { maxCpPairs: number };
}

export function createIngest(o: { sink: Sink; metrics: EdgeMetrics; warn: RateLimitedWarn; normalise: NormaliseOptions; gb26875?: Gb26875IngestOptions; decoders?: DecoderLimits }): Ingest {
  const { metrics, warn } = o;
  const lim = o.decoders ?? { json: DEFAULT_JSON_LIMITS, binary: DEFAULT_BINARY_LIMITS, hj212: { maxCpPairs: HJ212_MAX_CP_PAIRS } };
  /** The last reading accepted per device, to drop exact repeats (a QoS 1 redelivery, a DTU resend). */
  const last = new Map<string, { ts: number; values: Record<string, MetricValue> }>();

  const countValues = (device: Device, rejected: readonly { name: string; reason: string }[]) => {
    for (const r of rejected) {
      metrics.valuesRejected.inc({ device: device.id, reason: r.reason });
      warn(`value_${r.reason}`, { device: device.id, metric: r.name.slice(0, 64) }, `value refused: ${r.reason}`);
    }
  };
  const rejectMessage = (device: Device, kind: string, reason: string, detail: string) => {
    metrics.messagesRejected.inc({ device: device.id, reason });
    warn(`message_${reason}`, { device: device.id, kind, detail: detail.slice(0, 200) }, `message refused: ${reason}`);
  };

  // Counter children per label value: inc() with a label object hashes the labels on every call.
  const readingsBy = new Map<string, { inc(n?: number): void }>();
  const countReadings = (family: string, n: number) => {
    let c = readingsBy.get(family);
    if (!c) readingsBy.set(family, (c = metrics.readingsReceived.labels({ family })));
    c.inc(n);
  };

  const isRepeat = (device: Device, r: Reading): boolean => {
    const prev = last.get(device.id);
    if (!prev || prev.ts !== r.ts) return false;
    const a = Object.keys(prev.values);
    if (a.length !== Object.keys(r.values).length) return false;
    return a.every((k) => Object.is(prev.values[k], r.values[k]));
  };

  /** Profile → normalise → sink for one device's samples and events, in one hand-off. */
  async function deliver(device: Device, samples: readonly RawSample[], decodedEvents: readonly DecodedDeviceEvent[], receivedAt: number, kind: string): Promise<Delivered> {
    const readings: Reading[] = [];
    let duplicates = 0;
    let lastRefusal: { reason: string; detail: string } | undefined;
    const events: DeviceEvent[] = [];
    for (const s of samples) {
      const out = device.profile.apply(device.id, s);
      countValues(device, out.rejected);
      let ts = s.ts ?? receivedAt;
      if (hasKeys(out.values)) {
        const n = normaliseReading(device, { ts: s.ts, values: out.values, rejected: [], quality: out.quality, tags: out.tags }, receivedAt, o.normalise);
        countValues(device, n.rejected);
        if (!n.ok) {
          rejectMessage(device, kind, n.reason, n.detail);
          lastRefusal = { reason: n.reason, detail: n.detail };
          continue;
        }
        if (isRepeat(device, n.item)) {
          rejectMessage(device, kind, MESSAGE_REJECT.duplicate, `same time and values as the previous reading (ts ${n.item.ts})`);
          duplicates++;
          continue;
        }
        ts = n.item.ts;
        readings.push(n.item);
      } else if (out.rejected.length > 0 && out.events.length === 0) {
        rejectMessage(device, kind, MESSAGE_REJECT.noValidValues, 'every value of the message was refused');
        lastRefusal = { reason: MESSAGE_REJECT.noValidValues, detail: `every value was refused (${out.rejected.map((r) => `${r.name}: ${r.reason}`).join(', ').slice(0, 200)})` };
      }
      for (const e of out.events) {
        const n = normaliseEvent(device, { ts, type: e.type, attrs: e.attrs }, receivedAt, o.normalise, e.priority);
        if (n.ok) events.push(withoutEdgeNotified(n.item));
        else {
          rejectMessage(device, 'event', n.reason, n.detail);
          lastRefusal = { reason: n.reason, detail: n.detail };
        }
      }
    }
    for (const d of decodedEvents) {
      const n = normaliseEvent(device, d, receivedAt, o.normalise, d.priority);
      if (n.ok) events.push(withoutEdgeNotified(n.item));
      else {
        rejectMessage(device, 'event', n.reason, n.detail);
        lastRefusal = { reason: n.reason, detail: n.detail };
      }
    }
    if (readings.length === 0 && events.length === 0) return { readings: 0, events: 0, duplicates, refusal: lastRefusal };
    await o.sink.accept(readings, events);
    const lastReading = readings[readings.length - 1];
    if (lastReading) {
      const prev = last.get(device.id);
      if (prev) {
        prev.ts = lastReading.ts;
        prev.values = lastReading.values;
      } else last.set(device.id, { ts: lastReading.ts, values: lastReading.values });
    }
    if (readings.length) countReadings(device.family, readings.length);
    for (const e of events) metrics.eventsReceived.inc({ type: e.type });
    return { readings: readings.length, events: events.length, duplicates, refusal: lastRefusal };
  }

  /** A pushed frame or platform values as samples, or why they decode to nothing. */
  function reportSamples(device: Device, r: PushedReport): { samples: RawSample[] } | { reason: string; detail: string } {
    const p = device.profile.profile;
    // A frame is decoded by a binary profile; another profile takes the platform's values instead (a OneNET
    // data point's text may look like hex without being a frame).
    if (r.frame && p.format !== 'binary' && !r.values) {
      return { reason: MESSAGE_REJECT.undecodable, detail: `profile ${p.id} (format ${p.format}) does not decode a raw frame` };
    }
    if (r.frame && p.format === 'binary') {
      const d = decodeBinary(r.frame, p.binary!);
      countValues(device, d.refusals.filter((x) => x.field !== undefined).map((x) => ({ name: x.field!, reason: x.code })));
      const whole = d.refusals.find((x) => x.field === undefined);
      if (Object.keys(d.values).length === 0) return { reason: whole?.code ?? MESSAGE_REJECT.noValidValues, detail: whole?.message ?? 'no value decoded' };
      return { samples: [{ ts: r.ts, values: d.values }] };
    }
    if (r.values && hasKeys(r.values)) return { samples: [{ ts: r.ts, values: r.values }] };
    return { samples: [] };
  }

  // One decoder per profile: it remembers each panel's last state words to see alarms rise and clear.
  const gb26875Decoders = new Map<string, Gb26875Decoder>();
  const gb26875For = (device: Device): Gb26875Decoder => {
    const p = device.profile.profile;
    let d = gb26875Decoders.get(p.id);
    if (!d) gb26875Decoders.set(p.id, (d = new Gb26875Decoder(p.gb26875!)));
    return d;
  };

  const heartbeatEvery = o.gb26875?.heartbeatReadingIntervalMs ?? 60_000;
  /** When each device's last heartbeat reading was stored (bounded by the registry's size). */
  const heartbeatStored = new Map<string, number>();

  async function gb26875Frame(device: Device, bytes: Uint8Array, receivedAt: number, input: 'mqtt' | 'tcp'): Promise<Gb26875Decoded> {
    const d = gb26875For(device).decode(device.id, bytes);
    if (!d.frame) {
      rejectMessage(device, input, d.refusals[0]?.code ?? MESSAGE_REJECT.undecodable, d.refusals[0]?.message ?? 'not a GB/T 26875.3 frame');
      return d;
    }
    for (const r of d.refusals) countValues(device, [{ name: r.object === undefined ? 'frame' : `object ${r.object}`, reason: r.code }]);
    if (d.frame.heartbeat) {
      // A heartbeat is the link being alive, not a refusal: counted, and now and then stored as a
      // `heartbeat` reading so the cloud sees the device online between its (rare) reports.
      metrics.gb26875Heartbeats.inc({ input });
      const last = heartbeatStored.get(device.id);
      if (heartbeatEvery === 0 || (last !== undefined && receivedAt - last < heartbeatEvery)) return d;
      heartbeatStored.set(device.id, receivedAt);
      await deliver(device, [{ ts: receivedAt, values: { heartbeat: true } }], [], receivedAt, 'gb26875_heartbeat');
      return d;
    }
    const samples: RawSample[] = d.samples.map((s) => ({ ts: s.ts, values: s.values, tags: pickTags(s.tags) }));
    // The panel's own state changes are its events (fire alarm first): they bypass the value rules.
    await deliver(device, samples, d.events, receivedAt, input);
    return d;
  }

  function hj212Delivered(device: Device, frame: Hj212Frame, receivedAt: number): Promise<Delivered> {
    const r = frameToReadings(frame);
    for (const refusal of r.refusals) countValues(device, [{ name: refusal.item ?? frame.cn, reason: refusal.code }]);
    return deliver(device, r.readings, [], receivedAt, 'hj212');
  }
  async function hj212Frame(device: Device, frame: Hj212Frame, receivedAt: number): Promise<ReportOutcome> {
    const r = frameToReadings(frame);
    for (const refusal of r.refusals) countValues(device, [{ name: refusal.item ?? frame.cn, reason: refusal.code }]);
    const d = await deliver(device, r.readings, [], receivedAt, 'hj212');
    if (d.readings + d.events > 0) return { kept: true, readings: d.readings, events: d.events };
    if (d.duplicates > 0) return { kept: false, duplicate: true, reason: MESSAGE_REJECT.duplicate, detail: 'the same reading was already kept' };
    // Nothing kept: a frame without DataTime, or every value refused (already counted, by item).
    const first = r.refusals[0];
    const why = d.refusal ?? (first ? { reason: first.code, detail: first.message } : { reason: MESSAGE_REJECT.noValidValues, detail: 'the frame held no value' });
    return { kept: false, duplicate: false, ...why };
  }

  async function mqtt(device: Device, kind: TopicKind, payload: Buffer, receivedAt: number, meta?: MessageMeta): Promise<MessageRefusal | undefined> {
    const refuse = (reason: string, detail: string, why: MessageRefusal['kind'] = 'payload'): MessageRefusal => {
      rejectMessage(device, kind, reason, detail);
      return { refused: reason, kind: why };
    };
    const p = device.profile.profile;
    // MQTT 5 user properties the profile names become reading tags and event attributes.
    const props = meta?.userProperties && p.userProperties ? pickUserProperties(meta.userProperties, p.userProperties) : undefined;
    if (kind === 'events') {
      const d = decodeEvent(payload, lim.json);
      if (!d.ok) return refuse(d.reason, d.detail);
      const e = props ? { ...d.value, attrs: { ...props, ...d.value.attrs } } : d.value;
      return outcomeOf(await deliver(device, [], [e], receivedAt, kind));
    }
    switch (p.format) {
      case 'json': {
        const d = decodeTelemetry(payload, p.json ?? undefined, lim.json);
        if (!d.ok) return refuse(d.reason, d.detail);
        countValues(device, d.value.rejected);
        if (!hasKeys(d.value.values)) return refuse(MESSAGE_REJECT.noMetrics, 'no usable metric value in the message', d.value.rejected.length > 0 ? 'content' : 'payload');
        return outcomeOf(await deliver(device, [{ ts: d.value.ts, values: d.value.values, tags: props }], [], receivedAt, kind));
      }
      case 'binary': {
        const hex = p.binaryEncoding === 'hex' || (p.binaryEncoding === 'auto' && looksLikeHex(payload));
        const d = decodeBinary(hex ? payload.toString('latin1') : payload, p.binary!, lim.binary);
        countValues(device, d.refusals.filter((r) => r.field !== undefined).map((r) => ({ name: r.field!, reason: r.code })));
        const whole = d.refusals.find((r) => r.field === undefined);
        if (Object.keys(d.values).length === 0) return refuse(whole?.code ?? MESSAGE_REJECT.noValidValues, whole?.message ?? 'no value decoded', whole ? 'payload' : 'content');
        return outcomeOf(await deliver(device, [{ values: d.values, tags: props }], [], receivedAt, kind));
      }
      case 'hj212': {
        // An HJ 212 station behind a DTU: the frame is the payload; the MQTT login already authenticated it.
        const r = parseFrameBytes(payload, { maxCpPairs: lim.hj212.maxCpPairs });
        if (!r.ok) return refuse(r.code, r.message);
        if (device.hj212 && r.frame.mn !== device.hj212.mn) return refuse('HJ212_WRONG_MN', `frame MN ${r.frame.mn} is not this device's`, 'content');
        return outcomeOf(await hj212Delivered(device, r.frame, receivedAt));
      }
      case 'gb26875': {
        // A DTU forwards what it read from the device's serial line: one frame, two joined, a frame and
        // a CRLF, or part of one. Every valid frame in the message is taken, in order; the rest is
        // counted with its reason. The PUBACK follows once all of them are held.
        const framer = new Gb26875StreamFramer({ maxAppData: o.gb26875?.maxAppData });
        // Refused whole when no frame of the message was taken (an answer or heartbeat counts as taken).
        let taken = 0;
        let refusal: MessageRefusal | undefined;
        for (const item of [...framer.push(payload), ...framer.end()]) {
          if ('garbage' in item) {
            refusal ??= refuse(item.code, item.message);
            continue;
          }
          const source = Buffer.from(item.frame.subarray(12, 18)).toString('hex');
          if (device.gb26875 && source !== device.gb26875.address) {
            refusal ??= refuse('GB26875_WRONG_SOURCE', `frame source ${source} is not this device's (${device.gb26875.address})`, 'content');
            continue;
          }
          const d = await gb26875Frame(device, item.frame, receivedAt, 'mqtt');
          if (d.frame) taken++;
          else refusal ??= { refused: d.refusals[0]?.code ?? MESSAGE_REJECT.undecodable, kind: 'payload' };
        }
        if (taken > 0) return undefined;
        // A message with no frame start at all (empty, or noise the framer keeps waiting on) is refused too.
        return refusal ?? refuse(MESSAGE_REJECT.undecodable, 'no GB/T 26875.3 frame in the message');
      }
      default:
        return refuse(MESSAGE_REJECT.undecodable, `profile ${p.id} (format ${p.format}) does not arrive over MQTT`);
    }
  }

  return {
    mqtt,
    samples: async (device, samples, receivedAt, events = []) => void (await deliver(device, samples, events, receivedAt, 'samples')),
    hj212Frame,
    gb26875Frame,
    async report(device, r, receivedAt) {
      const s = reportSamples(device, r);
      if ('reason' in s) {
        rejectMessage(device, 'push', s.reason, s.detail);
        return { kept: false, duplicate: false, reason: s.reason, detail: s.detail };
      }
      const d = await deliver(device, s.samples, r.events ?? [], receivedAt, 'push');
      if (d.readings + d.events > 0) return { kept: true, readings: d.readings, events: d.events };
      if (d.duplicates > 0) return { kept: false, duplicate: true, reason: MESSAGE_REJECT.duplicate, detail: 'the same reading was already kept' };
      const why = d.refusal ?? { reason: MESSAGE_REJECT.noValidValues, detail: 'the report held no value or event' };
      return { kept: false, duplicate: false, ...why };
    },
  };
}
