// Builds InfluxDB line protocol for validated readings and events.
//
// Why by hand and not the `influx` client's writePoints: that client re-serialises every point through
// generic option objects at ~9.5 µs of CPU per point (docs: /work/shared/anchors.md), which on a 2-core
// box comes out of influxd's share and cuts the ceiling by a third. Here a device's measurement and tag
// set are escaped once per batch and reused for all its readings, and the batch is one string.
//
// Escaping follows the InfluxDB 1.x line-protocol reference: measurement names escape comma and space;
// tag keys, tag values and field keys escape comma, equals and space; string field values escape
// backslash and double quote. InfluxDB 1.x does not unescape `\\` in names and tags, so a backslash
// cannot be stored faithfully there: validate.ts refuses such names before they reach this file.
import type { DeviceEvent, MetricValue, Reading } from '@citysense/proto';

export const EVENTS_MEASUREMENT = 'events';
/** The write precision of every point citysense writes (write.ts puts it in the /write URL). */
export const WRITE_PRECISION = 'ns';

/**
 * A point's time in nanoseconds, as text: the millisecond `ms` (the reading's or event's own time) plus
 * `sub` nanoseconds (0 ≤ sub < 1,000,000) inside that millisecond. Text, because ms × 10⁶ is past 2^53.
 * Readings use sub 0; events and alert changes use a sub derived from a sequence so two of them in one
 * millisecond with the same tags stay two points (docs/decisions.md 15).
 */
export function nsTime(ms: number, sub = 0): string {
  const s = String(sub);
  return `${Math.trunc(ms)}${'000000'.slice(s.length)}${s}`;
}

/** Nanoseconds inside a millisecond: a sequence's last six digits (distinct for a million in a row). */
export function subMs(seq: number): number {
  return Math.abs(Math.trunc(seq)) % 1_000_000;
}

/** FNV-1a of a string, for an event without a deviceSeq: its id picks its place inside the millisecond. */
function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}
/** Prefix of the one-string-field-per-attr copy of an event's attrs (e.g. attr_zone). */
export const ATTR_FIELD_PREFIX = 'attr_';

// The non-global twins are for test(): a /g regex carries lastIndex from one call to the next.
const MEASUREMENT_SPECIAL = /[, ]/g;
const HAS_MEASUREMENT_SPECIAL = /[, ]/;
const KEY_SPECIAL = /[,= ]/g;
const STRING_SPECIAL = /["\\]/g;

/** True when s holds a comma, an equals sign or a space (one charCode scan, no regex call). */
function hasKeySpecial(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x20 || c === 0x2c || c === 0x3d) return true;
  }
  return false;
}

/** True when s holds a double quote or a backslash. */
function hasStringSpecial(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x22 || c === 0x5c) return true;
  }
  return false;
}

export function escapeMeasurement(name: string): string {
  return HAS_MEASUREMENT_SPECIAL.test(name) ? name.replace(MEASUREMENT_SPECIAL, '\\$&') : name;
}

/** Tag keys, tag values and field keys. */
export function escapeKey(s: string): string {
  return hasKeySpecial(s) ? s.replace(KEY_SPECIAL, '\\$&') : s;
}

/** A string field value, quotes included. */
export function quoteString(s: string): string {
  return hasStringSpecial(s) ? `"${s.replace(STRING_SPECIAL, '\\$&')}"` : `"${s}"`;
}

/**
 * Numbers are always written as floats (no `i` suffix): a sensor that sends 61 and later 61.5 must not
 * cause a field type conflict. JS prints integral doubles without a point ("61"), which InfluxDB reads as
 * a float; exponents ("1e+21") are accepted too. -0 prints as "0".
 */
export function formatFieldValue(v: MetricValue): string {
  if (typeof v === 'number') return String(v);
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  return quoteString(v);
}

/**
 * Metric names repeat in every reading, so each one's escaped `name=` (first field, after the space)
 * and `,name=` (the others) is made once. Bounded: past MAX_FIELD_KEYS distinct names it starts over.
 */
const MAX_FIELD_KEYS = 4096;
const firstFieldKeys = new Map<string, string>();
const nextFieldKeys = new Map<string, string>();

function firstFieldKey(name: string): string {
  let k = firstFieldKeys.get(name);
  if (k === undefined) {
    if (firstFieldKeys.size >= MAX_FIELD_KEYS) firstFieldKeys.clear();
    k = `${escapeKey(name)}=`;
    firstFieldKeys.set(name, k);
  }
  return k;
}

function nextFieldKey(name: string): string {
  let k = nextFieldKeys.get(name);
  if (k === undefined) {
    if (nextFieldKeys.size >= MAX_FIELD_KEYS) nextFieldKeys.clear();
    k = `,${escapeKey(name)}=`;
    nextFieldKeys.set(name, k);
  }
  return k;
}

/** `,k=v` pairs for tags, sorted by key (InfluxDB's canonical order); empty values are left out. */
function tagSet(tags: Record<string, string>): string {
  const keys = Object.keys(tags).sort();
  let out = '';
  for (const k of keys) {
    const v = tags[k]!;
    // InfluxDB has no empty tag value: a series without the tag is what an empty value means.
    if (v !== '') out += `,${escapeKey(k)}=${escapeKey(v)}`;
  }
  return out;
}

interface PrefixEntry {
  tags: Record<string, string> | undefined;
  family: string;
  prefix: string;
}

/** Per-batch cache of `measurement,tags ` for each device. */
export class SeriesPrefixes {
  private readonly byDevice = new Map<string, PrefixEntry>();
  // The last device asked for: readings of one device come one after another (codec.ts series).
  private lastId: string | undefined;
  private last: PrefixEntry | undefined;

  forReading(r: Reading): string {
    const last = this.last;
    if (last !== undefined && this.lastId === r.deviceId && last.tags === r.tags && last.family === r.family) return last.prefix;
    let hit = this.byDevice.get(r.deviceId);
    // The decoder hands every reading of a device the same tags object, so identity is the cheap test.
    if (!hit || hit.tags !== r.tags || hit.family !== r.family) {
      const tags: Record<string, string> = { ...r.tags, device_id: r.deviceId };
      hit = { tags: r.tags, family: r.family, prefix: `${escapeMeasurement(r.family)}${tagSet(tags)} ` };
      this.byDevice.set(r.deviceId, hit);
    }
    this.lastId = r.deviceId;
    this.last = hit;
    return hit.prefix;
  }
}

/**
 * One line for a reading: fields are its metrics plus `quality`; time is the reading's own ms (in ns, no
 * offset). A reading's point key is (family, tags, ms) on purpose: a reading sent twice (an MQTT retry, a
 * batch redelivered) overwrites itself, and two sources reporting one device in the same ms merge their
 * metrics into one row (docs/decisions.md 15).
 */
export function readingLine(r: Reading, prefixes: SeriesPrefixes): string {
  let line = prefixes.forReading(r);
  let first = true;
  const values = r.values;
  for (const name in values) {
    line += first ? firstFieldKey(name) : nextFieldKey(name);
    first = false;
    const v = values[name]!;
    // `+=` of a number is String(v): the same text formatFieldValue gives, without the call.
    if (typeof v === 'number') line += v;
    else if (typeof v === 'boolean') line += v ? 'true' : 'false';
    else line += quoteString(v);
  }
  if (r.quality) {
    line += first ? 'quality=' : ',quality=';
    line += quoteString(r.quality);
  }
  return `${line} ${Math.trunc(r.ts)}000000`;
}

/** attrs keys made safe as field-key suffixes; the full attrs also travel as JSON in `attrs`. */
export function attrFieldKey(key: string): string {
  return ATTR_FIELD_PREFIX + key.replace(/[^A-Za-z0-9_.-]/g, '_').slice(0, 128);
}

/**
 * One line in `events`: tags device_id, district, family, type; fields id, priority, attrs, attr_*.
 * The time is the event's ms plus its deviceSeq's last six digits in ns (the id's hash when the edge did
 * not stamp one): two events of one device and type in the same millisecond are two points, and a batch
 * sent again writes each event onto itself.
 */
export function eventLine(e: DeviceEvent): string {
  const tags: Record<string, string> = {
    device_id: e.deviceId,
    family: e.family,
    type: e.type,
  };
  const district = e.tags?.district;
  if (district) tags.district = district;
  let fields = `attrs=${quoteString(JSON.stringify(e.attrs ?? {}))},id=${quoteString(e.id)},priority=${quoteString(e.priority)}`;
  const seen = new Set<string>();
  for (const k of Object.keys(e.attrs ?? {}).sort()) {
    const field = attrFieldKey(k);
    // Two attrs that sanitise to one key: the first wins here, the JSON copy keeps both.
    if (seen.has(field)) continue;
    seen.add(field);
    fields += `,${escapeKey(field)}=${quoteString(e.attrs[k]!)}`;
  }
  return `${EVENTS_MEASUREMENT}${tagSet(tags)} ${fields} ${nsTime(e.ts, eventSubMs(e))}`;
}

/** Where an event sits inside its millisecond (ns): see eventLine. */
export function eventSubMs(e: DeviceEvent): number {
  return e.deviceSeq ? subMs(e.deviceSeq) : fnv1a(e.id) % 1_000_000;
}
