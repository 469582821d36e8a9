// A fire panel's GB/T 26875.3 frame → readings and events. Events are made here, not by the profile's
// generic value rules, because they come from state-word transitions per component: `fire_alarm` when
// a component's fire bit rises, not again while it stays up, `fire_alarm_cleared` when it falls.
// Pure but for the per-panel state map the caller passes (or Gb26875Decoder keeps). Never throws.
import {
  ANALOG_TYPES,
  COMPONENT_STATE_EVENTS,
  DEVICE_OPERATION_BIT5,
  DEVICE_STATE_EVENTS,
  HYDRANT_SYSTEM,
  OPERATION_BITS,
  SPRINKLER_COMPONENTS,
  SPRINKLER_SYSTEM,
  SYSTEM_STATE_EVENTS,
  WATER_TANK_COMPONENT,
  componentTypeName,
  systemTypeName,
  type AnalogTypeSpec,
  type BitEvent,
  type Priority,
} from './codes.ts';
import { refusal, type Gb26875Refusal } from './errors.ts';
import { COMMANDS, describeTime, parseFrame, timeToEpoch, type FrameTime } from './frame.ts';
import { parseAppData, type Gb26875Object } from './objects.ts';
import type { Gb26875Component, Gb26875Profile } from './profile.ts';

export type Gb26875Value = number | boolean | string;

export interface Gb26875Sample {
  /** The data unit's own time (epoch ms); undefined means the edge's receive time. */
  ts: number | undefined;
  values: Record<string, Gb26875Value>;
  /** Where the value comes from: component, component_type, system_type, building, floor, zone, name. */
  tags: Record<string, string>;
}

export interface Gb26875Event {
  ts: number | undefined;
  type: string;
  priority: Priority;
  /** building, floor, zone, name, component, component_type, system_type, system_address, description (those known). */
  attrs: Record<string, string>;
}

export interface Gb26875FrameSummary {
  serial: number;
  command: number;
  version: string;
  source: string;
  destination: string;
  sentAt: number | undefined;
  /** The data type flag, for send-data and response frames. */
  type?: number;
  /**
   * A send-data frame without application data: the transmission device's heartbeat (the standard's
   * notes: every 20–30 s, every ~5 s while the link is troubled), answered with a confirm like any
   * send-data frame. Not a refusal.
   */
  heartbeat?: true;
}

export interface Gb26875Decoded {
  /** Absent when the frame itself was refused. */
  frame?: Gb26875FrameSummary;
  samples: Gb26875Sample[];
  /** Alarm priority first, then warning, then routine; in frame order within a priority. */
  events: Gb26875Event[];
  refusals: Gb26875Refusal[];
}

/** A panel's remembered state words: key → last word. Create one per panel with `new Map()`. */
export type Gb26875State = Map<string, number>;

const PRIORITY_RANK: Record<Priority, number> = { alarm: 0, warning: 1, routine: 2 };
const FIRE_BIT = 1;
const RESET_BIT = 13;

interface Tables {
  system: Map<number, BitEvent>;
  component: Map<number, BitEvent>;
  device: Map<number, BitEvent>;
  analog: Map<number, AnalogTypeSpec>;
}
const tablesCache = new WeakMap<Gb26875Profile, Tables>();

function merge(defaults: Readonly<Record<number, BitEvent>>, overrides: Record<string, BitEvent | false> | undefined): Map<number, BitEvent> {
  const m = new Map<number, BitEvent>(Object.entries(defaults).map(([k, v]) => [Number(k), v]));
  for (const [k, v] of Object.entries(overrides ?? {})) {
    if (v === false) m.delete(Number(k));
    else m.set(Number(k), v);
  }
  return m;
}

function tables(p: Gb26875Profile): Tables {
  let t = tablesCache.get(p);
  if (!t) {
    const analog = new Map<number, AnalogTypeSpec>(Object.entries(ANALOG_TYPES).map(([k, v]) => [Number(k), v]));
    for (const [k, v] of Object.entries(p.analogTypes ?? {})) analog.set(Number(k), v);
    t = {
      system: merge(SYSTEM_STATE_EVENTS, p.stateEvents?.system),
      component: merge(COMPONENT_STATE_EVENTS, p.stateEvents?.component),
      device: merge(DEVICE_STATE_EVENTS, p.stateEvents?.device),
      analog,
    };
    tablesCache.set(p, t);
  }
  return t;
}

/** Decode one frame with a panel's profile section (as loadGb26875Profile returned it). */
export function decodeGb26875(payload: Uint8Array, section: Gb26875Profile, state: Gb26875State = new Map()): Gb26875Decoded {
  try {
    return decodeFrame(payload, section, state);
  } catch (err) {
    // Only a section that skipped validation can get here; still no throw.
    return { samples: [], events: [], refusals: [refusal('GB26875_BAD_PROFILE', `decoding failed: ${(err as Error)?.message ?? String(err)}; validate the section with loadGb26875Profile`)] };
  }
}

function decodeFrame(payload: Uint8Array, section: Gb26875Profile, state: Gb26875State): Gb26875Decoded {
  const offset = section.timezoneOffsetMinutes ?? 480;
  const parsed = parseFrame(payload, offset);
  if (!parsed.ok) return { samples: [], events: [], refusals: [parsed.refusal] };
  const { frame } = parsed;
  const out: Gb26875Decoded = {
    frame: {
      serial: frame.serial,
      command: frame.command,
      version: `${frame.version.major}.${frame.version.minor}`,
      source: frame.source,
      destination: frame.destination,
      sentAt: frame.sentAt,
    },
    samples: [],
    events: [],
    refusals: [...parsed.refusals],
  };
  if (frame.command === COMMANDS.confirm || frame.command === COMMANDS.deny) return out; // an answer carries no data
  if (frame.command !== COMMANDS.send && frame.command !== COMMANDS.response) {
    out.refusals.push(refusal('GB26875_UNSUPPORTED_COMMAND', `command ${frame.command}${frame.command === COMMANDS.control || frame.command === COMMANDS.request ? ' flows from the monitoring centre to the panel' : ' is not defined'}`));
    return out;
  }
  if (frame.command === COMMANDS.send && frame.appData.length === 0) {
    out.frame!.heartbeat = true;
    return out;
  }
  const unit = parseAppData(frame.appData);
  if (unit.type !== undefined) out.frame!.type = unit.type;
  out.refusals.push(...unit.refusals);
  const ctx: Ctx = { section, tables: tables(section), state, out, frameTs: frame.sentAt, offset };
  for (const o of unit.objects) handleObject(ctx, o);
  out.events = out.events
    .map((e, i) => ({ e, i }))
    .sort((a, b) => PRIORITY_RANK[a.e.priority] - PRIORITY_RANK[b.e.priority] || a.i - b.i)
    .map((x) => x.e);
  return out;
}

interface Ctx {
  section: Gb26875Profile;
  tables: Tables;
  state: Gb26875State;
  out: Gb26875Decoded;
  frameTs: number | undefined;
  offset: number;
}

function objectTs(ctx: Ctx, time: FrameTime | undefined, index: number): number | undefined {
  if (time === undefined) return ctx.frameTs;
  const ts = timeToEpoch(time, ctx.offset);
  if (ts !== undefined) return ts;
  ctx.out.refusals.push(refusal('GB26875_BAD_TIME', `object ${index}'s time is ${describeTime(time)}`, index));
  return ctx.frameTs;
}

function componentOf(section: Gb26875Profile, systemAddress: number, componentAddress: number): Gb26875Component | undefined {
  const c = section.components ?? {};
  return c[`${systemAddress}:${componentAddress}`] ?? c[String(componentAddress)];
}

function place(section: Gb26875Profile, c: Gb26875Component | undefined): Record<string, string> {
  const a: Record<string, string> = {};
  const building = c?.building ?? section.building;
  if (building !== undefined) a['building'] = building;
  if (c?.floor !== undefined) a['floor'] = c.floor;
  if (c?.zone !== undefined) a['zone'] = c.zone;
  if (c?.name !== undefined) a['name'] = c.name;
  return a;
}

function handleObject(ctx: Ctx, o: Gb26875Object): void {
  const ts = objectTs(ctx, o.time, o.index);
  switch (o.kind) {
    case 'system_state': {
      const attrs = { ...place(ctx.section, undefined), system_type: systemTypeName(o.systemType), system_address: String(o.systemAddress) };
      const key = `s:${o.systemType}:${o.systemAddress}`;
      const before = ctx.state.get(key) ?? 0;
      transitions(ctx, key, o.state, ctx.tables.system, ts, attrs);
      // A panel reset may clear its components without reporting each one again. Forget what we knew of
      // them, so that a detector going into alarm again is a new fire_alarm rather than "still set".
      const fell = (before >> FIRE_BIT) & 1 && !((o.state >> FIRE_BIT) & 1);
      const reset = !((before >> RESET_BIT) & 1) && (o.state >> RESET_BIT) & 1;
      if (fell || reset) forgetComponents(ctx.state, o.systemAddress);
      return;
    }
    case 'component_state': {
      const c = componentOf(ctx.section, o.systemAddress, o.componentAddress);
      const attrs: Record<string, string> = {
        ...place(ctx.section, c),
        component: String(o.componentAddress),
        component_type: c?.kind ?? componentTypeName(o.componentType),
        system_type: systemTypeName(o.systemType),
        system_address: String(o.systemAddress),
      };
      if (o.description !== '') attrs['description'] = o.description;
      transitions(ctx, `c:${o.systemAddress}:${o.componentAddress}`, o.state, ctx.tables.component, ts, attrs);
      return;
    }
    case 'analog':
      analog(ctx, o, ts);
      return;
    case 'operation':
    case 'device_operation': {
      const attrs: Record<string, string> = { ...place(ctx.section, undefined), operator: String(o.operator) };
      if (o.kind === 'operation') {
        attrs['system_type'] = systemTypeName(o.systemType);
        attrs['system_address'] = String(o.systemAddress);
      } else attrs['source'] = 'transmission_device';
      for (let bit = 0; bit < 8; bit++) {
        if (!((o.flags >> bit) & 1)) continue;
        const e = o.kind === 'device_operation' && bit === 5 ? DEVICE_OPERATION_BIT5 : OPERATION_BITS[bit];
        if (e) ctx.out.events.push({ ts, type: e.type, priority: e.priority, attrs: { ...attrs } });
      }
      return;
    }
    case 'device_state':
      transitions(ctx, 'd', o.state, ctx.tables.device, ts, { ...place(ctx.section, undefined), source: 'transmission_device' });
      return;
  }
}

function transitions(ctx: Ctx, key: string, word: number, table: Map<number, BitEvent>, ts: number | undefined, attrs: Record<string, string>): void {
  const before = ctx.state.get(key) ?? 0;
  for (const [bit, e] of table) {
    const now = (word >> bit) & 1;
    const was = (before >> bit) & 1;
    if (now && !was) ctx.out.events.push({ ts, type: e.type, priority: e.priority, attrs: { ...attrs } });
    else if (!now && was && e.cleared !== false) ctx.out.events.push({ ts, type: `${e.type}_cleared`, priority: 'routine', attrs: { ...attrs } });
  }
  remember(ctx, key, word);
}

function remember(ctx: Ctx, key: string, word: number): void {
  const s = ctx.state;
  if (s.has(key)) s.delete(key); // re-insert: the Map's order is then least recently reported first
  else if (s.size >= (ctx.section.maxTrackedStates ?? 10_000)) {
    const oldest = s.keys().next();
    if (!oldest.done) s.delete(oldest.value);
  }
  s.set(key, word);
}

function forgetComponents(s: Gb26875State, systemAddress: number): void {
  const prefix = `c:${systemAddress}:`;
  for (const k of [...s.keys()]) if (k.startsWith(prefix)) s.delete(k);
}

function analog(ctx: Ctx, o: Extract<Gb26875Object, { kind: 'analog' }>, ts: number | undefined): void {
  const spec = ctx.tables.analog.get(o.analogType);
  if (!spec) {
    ctx.out.refusals.push(refusal('GB26875_UNKNOWN_ANALOG_TYPE', `object ${o.index}: analog type ${o.analogType} from component ${o.componentAddress}; name it in the profile's gb26875.analogTypes`, o.index));
    return;
  }
  const value = scaled(o.raw, spec.scale);
  if ((spec.min !== undefined && value < spec.min) || (spec.max !== undefined && value > spec.max)) {
    ctx.out.refusals.push(refusal('GB26875_BAD_ANALOG', `object ${o.index}: ${value} ${spec.unit} from component ${o.componentAddress}, valid ${spec.min ?? '-∞'}..${spec.max ?? '∞'}`, o.index));
    return;
  }
  const c = componentOf(ctx.section, o.systemAddress, o.componentAddress);
  const tags: Record<string, string> = {
    ...place(ctx.section, c),
    component: String(o.componentAddress),
    component_type: c?.kind ?? componentTypeName(o.componentType),
    system_type: systemTypeName(o.systemType),
  };
  ctx.out.samples.push({ ts, values: { [metricName(ctx.section, c, o, spec)]: value }, tags });
}

function metricName(section: Gb26875Profile, c: Gb26875Component | undefined, o: Extract<Gb26875Object, { kind: 'analog' }>, spec: AnalogTypeSpec): string {
  if (c?.metric) return c.metric;
  for (const r of section.analogMetrics ?? []) {
    if (r.analogType !== o.analogType) continue;
    if (r.systemType !== undefined && r.systemType !== o.systemType) continue;
    if (r.componentType !== undefined && r.componentType !== o.componentType) continue;
    return r.metric;
  }
  if (spec.metric === 'pressure') {
    if (SPRINKLER_COMPONENTS.has(o.componentType) || o.systemType === SPRINKLER_SYSTEM) return 'sprinkler_pressure';
    if (o.systemType === HYDRANT_SYSTEM) return 'hydrant_pressure';
  }
  if (spec.metric === 'level' && o.componentType === WATER_TANK_COMPONENT) return 'tank_level';
  return spec.metric;
}

/** raw × scale, rounded to the scale's decimals so 253 × 0.1 is 25.3, not 25.299999999999997. */
function scaled(raw: number, scale: number): number {
  const v = raw * scale;
  const s = String(scale);
  const e = s.indexOf('e-');
  const decimals = e >= 0 ? Number(s.slice(e + 2)) + Math.max(0, s.slice(0, e).split('.')[1]?.length ?? 0) : (s.split('.')[1]?.length ?? 0);
  if (decimals === 0 || decimals > 15) return v;
  const r = Number(v.toFixed(decimals));
  return Object.is(r, -0) ? 0 : r;
}

/**
 * Keeps each panel's state map, bounded by the profile's maxTrackedStates per panel. One per profile
 * section; `decode(panelId, payload)`.
 */
export class Gb26875Decoder {
  private readonly panels = new Map<string, Gb26875State>();

  constructor(readonly section: Gb26875Profile) {}

  decode(panelId: string, payload: Uint8Array): Gb26875Decoded {
    let s = this.panels.get(panelId);
    if (!s) this.panels.set(panelId, (s = new Map()));
    return decodeGb26875(payload, this.section, s);
  }

  /** Forget a panel's remembered states (it was removed, or restarted and will report afresh). */
  forget(panelId: string): void {
    this.panels.delete(panelId);
  }

  /** The remembered state words of a panel, for diagnostics. */
  stateOf(panelId: string): ReadonlyMap<string, number> | undefined {
    return this.panels.get(panelId);
  }
}
