// The tables and grouping of a batch before its bytes are written (proto/src/encode/layout.ts writes
// them): the device table and the metric-name table in order of first appearance, which readings travel
// in row form (a device's lone reading) and which in column form (a Series per device, shape and extra
// tags), and the device of each event. The choices are those of the protobufjs path the encoder replaced
// (proto/test/encode-batch-reference.ts), so the bytes stay the same.
//
// Everything here is module state reused across calls, read by layout.ts through the exports (encodeBatch
// is synchronous): no Map, object or array per batch on the edge's hot path.
import type { DeviceEvent, Family, MetricValue, Reading } from '../types.ts';
import { FAMILY_CODE } from './schema.ts';

const EMPTY_TAGS: Record<string, string> = {};

function fit(a: Int32Array<ArrayBuffer>, n: number): Int32Array<ArrayBuffer> {
  if (a.length >= n) return a;
  let size = a.length * 2;
  while (size < n) size *= 2;
  const b = new Int32Array(size);
  b.set(a);
  return b;
}

/** Device index per reading. */
export let readingDevice = new Int32Array(1024);
/** Next reading of the same series (valid for readings in column form). */
export let nextInGroup = new Int32Array(1024);
/** Key index per value of the row-form readings, in order. */
export let rowKeys = new Int32Array(4096);
/** Device index per event. */
export let eventDevice = new Int32Array(64);
/** Readings in row form. */
export let nRows = 0;

/**
 * Index tables (device ids, metric names) without a Map per batch: a slot per name, kept across calls and
 * valid only in the call (`epoch`) that set it.
 */
interface Slot {
  epoch: number;
  index: number;
}
const MAX_SLOTS = 100_000;
const deviceSlots = new Map<string, Slot>();
const keySlots = new Map<string, Slot>();
let epoch = 0;

/** The slot of `name`, or undefined when this call has not tabled it yet. */
function lookup(slots: Map<string, Slot>, name: string): Slot | undefined {
  const s = slots.get(name);
  return s !== undefined && s.epoch === epoch ? s : undefined;
}

function assign(slots: Map<string, Slot>, name: string, index: number): void {
  const s = slots.get(name);
  if (s === undefined) slots.set(name, { epoch, index });
  else {
    s.epoch = epoch;
    s.index = index;
  }
}

// Tables of the batch being encoded; entries beyond the counts are stale.
export const devIds: string[] = [];
export const devFamily: number[] = [];
export const devTags: Record<string, string>[] = [];
/** Readings per device: 1 means row form. */
export const devCount: number[] = [];
const devGroups: (Group | undefined)[] = [];
export let nDev = 0;
export const keys: string[] = [];
export let nKeys = 0;
export const groups: Group[] = [];
export let nGroups = 0;

function deviceRef(id: string, family: Family, tags: Record<string, string> | undefined): number {
  const s = lookup(deviceSlots, id);
  if (s !== undefined) return s.index;
  const d = nDev++;
  assign(deviceSlots, id, d);
  devIds[d] = id;
  devFamily[d] = FAMILY_CODE[family] ?? 0;
  devTags[d] = tags ?? EMPTY_TAGS;
  devCount[d] = 0;
  devGroups[d] = undefined;
  return d;
}

function keyRef(name: string): number {
  const s = lookup(keySlots, name);
  if (s !== undefined) return s.index;
  const k = nKeys++;
  assign(keySlots, name, k);
  keys[k] = name;
  return k;
}

const NUM = 0;
const BOOL = 1;
const OTHER = 2;

function kindOf(v: MetricValue): number {
  return typeof v === 'number' ? NUM : typeof v === 'boolean' ? BOOL : OTHER;
}

/** Metric names and value kinds of a reading, in order. Consecutive series share one when equal. */
interface Shape {
  names: string[];
  kinds: number[];
  /** Key indices of the names (set once the key table has them). */
  keys: number[] | undefined;
}

/** The readings of one device with one shape and the same extra tags: one Series. */
export interface Group {
  dev: number;
  shape: Shape;
  /** Whether the readings have tags beyond their device's (the old encoder's `extra` object existed). */
  hasExtra: boolean;
  /** Those tags as [key, value, key, value, ...]. */
  extra: string[] | undefined;
  /** First and last reading (indices into batch.readings); the rest are linked through `nextInGroup`. */
  head: number;
  tail: number;
  count: number;
  /** The device's next group. */
  sibling: Group | undefined;
}

const NO_SHAPE: Shape = { names: [], kinds: [], keys: [] };

function newGroup(dev: number, shape: Shape, head: number): Group {
  let g = groups[nGroups];
  if (g === undefined) groups[nGroups] = g = { dev, shape, hasExtra: false, extra: undefined, head, tail: head, count: 0, sibling: undefined };
  else {
    g.dev = dev;
    g.shape = shape;
    g.hasExtra = false;
    g.extra = undefined;
    g.head = head;
    g.tail = head;
    g.count = 0;
    g.sibling = undefined;
  }
  nGroups++;
  return g;
}

function sameShape(values: Record<string, MetricValue>, shape: Shape): boolean {
  const names = shape.names;
  const kinds = shape.kinds;
  let i = 0;
  for (const name in values) {
    if (i >= names.length || names[i] !== name || kinds[i] !== kindOf(values[name]!)) return false;
    i++;
  }
  return i === names.length;
}

function shapeOf(values: Record<string, MetricValue>): Shape {
  const names: string[] = [];
  const kinds: number[] = [];
  for (const name in values) {
    names.push(name);
    kinds.push(kindOf(values[name]!));
  }
  return { names, kinds, keys: undefined };
}

/**
 * Whether a reading's tags beyond its device's (`dev`) equal a group's: the same keys with the same values
 * in the same order. The old encoder compared JSON.stringify of an object built from them, in which a
 * `__proto__` key does not survive, so such a key only makes the extra "exist".
 */
function sameExtra(tags: Record<string, string> | undefined, dev: Record<string, string>, g: Group): boolean {
  if (!tags || tags === dev) return !g.hasExtra;
  const ex = g.extra;
  const n = ex === undefined ? 0 : ex.length;
  let any = false;
  let j = 0;
  for (const k in tags) {
    const v = tags[k]!;
    if (dev[k] !== v) {
      any = true;
      if (k === '__proto__') continue;
      if (j >= n || ex![j] !== k || ex![j + 1] !== v) return false;
      j += 2;
    }
  }
  return any === g.hasExtra && j === n;
}

function setExtra(g: Group, tags: Record<string, string> | undefined, dev: Record<string, string>): void {
  if (!tags || tags === dev) return;
  for (const k in tags) {
    const v = tags[k]!;
    if (dev[k] !== v) {
      g.hasExtra = true;
      if (k === '__proto__') continue;
      (g.extra ??= []).push(k, v);
    }
  }
}

/**
 * Tables and groups of a batch. Devices are tabled by id in order of first appearance (readings, then
 * events): the family and tags of a device's first reading or event stand for all of them. Keys: the
 * row-form readings' names in order, then each series' names. A device's lone reading goes in row form;
 * otherwise a series per device, extra tags and shape.
 */
export function groupBatch(readings: Reading[], events: DeviceEvent[]): void {
  const nR = readings.length;
  const nE = events.length;
  if (++epoch > 0x3fffffff || deviceSlots.size > MAX_SLOTS || keySlots.size > MAX_SLOTS) {
    epoch = 1;
    deviceSlots.clear();
    keySlots.clear();
  }
  nDev = 0;
  nKeys = 0;
  nGroups = 0;

  const rDev = (readingDevice = fit(readingDevice, nR));
  for (let i = 0; i < nR; i++) {
    const r = readings[i]!;
    const d = deviceRef(r.deviceId, r.family, r.tags);
    devCount[d]!++;
    rDev[i] = d;
  }

  const next = (nextInGroup = fit(nextInGroup, nR));
  let rk = rowKeys;
  let nRowKeys = 0;
  nRows = 0;
  let lastShape: Shape = NO_SHAPE;
  for (let i = 0; i < nR; i++) {
    const r = readings[i]!;
    const d = rDev[i]!;
    if (devCount[d] === 1) {
      nRows++;
      for (const name in r.values) {
        if (nRowKeys === rk.length) rowKeys = rk = fit(rk, nRowKeys + 1);
        rk[nRowKeys++] = keyRef(name);
      }
      continue;
    }
    const dev = devTags[d]!;
    let g = devGroups[d];
    let last: Group | undefined;
    while (g !== undefined && !(sameExtra(r.tags, dev, g) && sameShape(r.values, g.shape))) {
      last = g;
      g = g.sibling;
    }
    if (g === undefined) {
      if (!sameShape(r.values, lastShape)) lastShape = shapeOf(r.values);
      g = newGroup(d, lastShape, i);
      setExtra(g, r.tags, dev);
      if (last === undefined) devGroups[d] = g;
      else last.sibling = g;
    } else next[g.tail] = i;
    g.tail = i;
    g.count++;
  }
  for (let s = 0; s < nGroups; s++) {
    const shape = groups[s]!.shape;
    if (shape.keys === undefined) {
      const ks = new Array<number>(shape.names.length);
      for (let c = 0; c < ks.length; c++) ks[c] = keyRef(shape.names[c]!);
      shape.keys = ks;
    }
  }

  const evDev = (eventDevice = fit(eventDevice, nE));
  for (let i = 0; i < nE; i++) {
    const e = events[i]!;
    evDev[i] = deviceRef(e.deviceId, e.family, e.tags);
  }
}
