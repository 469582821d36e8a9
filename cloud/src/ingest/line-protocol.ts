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
/** Prefix of the one-string-field-per-attr copy of an event's attrs (e.g. attr_zone). */
export const ATTR_FIELD_PREFIX = 'attr_';

// The non-global twins are for test(): a /g regex carries lastIndex from one call to the next.
const MEASUREMENT_SPECIAL = /[, ]/g;
const HAS_MEASUREMENT_SPECIAL = /[, ]/;
const KEY_SPECIAL = /[,= ]/g;
const HAS_KEY_SPECIAL = /[,= ]/;
const STRING_SPECIAL = /["\\]/g;
const HAS_STRING_SPECIAL = /["\\]/;

export function escapeMeasurement(name: string): string {
  return HAS_MEASUREMENT_SPECIAL.test(name) ? name.replace(MEASUREMENT_SPECIAL, '\\$&') : name;
}

/** Tag keys, tag values and field keys. */
export function escapeKey(s: string): string {
  return HAS_KEY_SPECIAL.test(s) ? s.replace(KEY_SPECIAL, '\\$&') : s;
}

/** A string field value, quotes included. */
export function quoteString(s: string): string {
  return HAS_STRING_SPECIAL.test(s) ? `"${s.replace(STRING_SPECIAL, '\\$&')}"` : `"${s}"`;
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

  forReading(r: Reading): string {
    const hit = this.byDevice.get(r.deviceId);
    // The decoder hands every reading of a device the same tags object, so identity is the cheap test.
    if (hit && hit.tags === r.tags && hit.family === r.family) return hit.prefix;
    const tags: Record<string, string> = { ...r.tags, device_id: r.deviceId };
    const prefix = `${escapeMeasurement(r.family)}${tagSet(tags)} `;
    this.byDevice.set(r.deviceId, { tags: r.tags, family: r.family, prefix });
    return prefix;
  }
}

/** One line for a reading: fields are its metrics plus `quality`; time is the reading's own, in ms. */
export function readingLine(r: Reading, prefixes: SeriesPrefixes): string {
  let fields = '';
  for (const name in r.values) {
    fields += `${fields ? ',' : ''}${escapeKey(name)}=${formatFieldValue(r.values[name]!)}`;
  }
  if (r.quality) fields += `${fields ? ',' : ''}quality=${quoteString(r.quality)}`;
  return `${prefixes.forReading(r)}${fields} ${Math.trunc(r.ts)}`;
}

/** attrs keys made safe as field-key suffixes; the full attrs also travel as JSON in `attrs`. */
export function attrFieldKey(key: string): string {
  return ATTR_FIELD_PREFIX + key.replace(/[^A-Za-z0-9_.-]/g, '_').slice(0, 128);
}

/** One line in `events`: tags device_id, district, family, type; fields id, priority, attrs, attr_*. */
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
  return `${EVENTS_MEASUREMENT}${tagSet(tags)} ${fields} ${Math.trunc(e.ts)}`;
}
