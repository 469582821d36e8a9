// The application data unit of an upstream frame: type flag (1 byte), object count (1 byte), then the
// information objects, each its body followed by a 6-byte time label (GB/T 26875.3-2011 §7, figure
// of the unit's format; clause number not verified). Pure and never throws.
import { refusal, type Gb26875Refusal } from './errors.ts';
import { readTime, type FrameTime } from './frame.ts';

/** Upstream data types decoded (protocols.md: 1, 2, 3, 4, 21; 24 is the device's own operation info). */
export const DATA_TYPES = {
  systemState: 1,
  componentState: 2,
  componentAnalog: 3,
  operation: 4,
  deviceState: 21,
  deviceOperation: 24,
} as const;

/** Body bytes of one object of each type, without its 6-byte time label. */
export const BODY_BYTES: Readonly<Record<number, number>> = {
  1: 4, // system type, system address, state word (2)
  2: 40, // system type, system address, component type, component address (4), state word (2), description (31)
  3: 10, // system type, system address, component type, component address (4), analog type, value (2, signed)
  4: 4, // system type, system address, operation flags, operator number
  21: 1, // state byte
  24: 2, // operation flags, operator number
};
export const TIME_BYTES = 6;
export const DESCRIPTION_BYTES = 31;

/** Names of the types we do not decode, for the refusal message (public implementations; not verified). */
const OTHER_TYPES: Readonly<Record<number, string>> = {
  5: 'system software version',
  6: 'system configuration',
  7: 'component configuration',
  8: 'system time',
  25: 'device software version',
  26: 'device configuration',
  28: 'device time',
};

interface Located {
  /** Index of the object in the unit, from 0. */
  index: number;
  /** Its time label, when the unit carries them. */
  time: FrameTime | undefined;
}
interface SystemRef {
  systemType: number;
  systemAddress: number;
}
interface ComponentRef extends SystemRef {
  componentType: number;
  /** The 4-byte component address, low byte first, as an unsigned integer. */
  componentAddress: number;
}

export type Gb26875Object =
  | (Located & SystemRef & { kind: 'system_state'; state: number })
  | (Located & ComponentRef & { kind: 'component_state'; state: number; description: string })
  | (Located & ComponentRef & { kind: 'analog'; analogType: number; raw: number })
  | (Located & SystemRef & { kind: 'operation'; flags: number; operator: number })
  | (Located & { kind: 'device_state'; state: number })
  | (Located & { kind: 'device_operation'; flags: number; operator: number });

export interface AppDataResult {
  /** The type flag, when the unit had one. */
  type: number | undefined;
  objects: Gb26875Object[];
  refusals: Gb26875Refusal[];
}

// GB 18030 is a superset of GB 2312, so one decoder reads both (GB/T 26875.3-2011: descriptions are GB 18030).
const gb18030 = new TextDecoder('gb18030', { fatal: false });

/** A description field: GB 18030 text, cut at the first NUL (panels leave garbage after it). */
export function decodeDescription(bytes: Uint8Array): string {
  const end = bytes.indexOf(0);
  return gb18030.decode(end === -1 ? bytes : bytes.subarray(0, end)).replace(/[\u0000-\u001f\u007f\ufffd]/g, '').trim();
}

function u16(b: Uint8Array, at: number): number {
  return b[at]! | (b[at + 1]! << 8);
}

function u32(b: Uint8Array, at: number): number {
  return (b[at]! | (b[at + 1]! << 8) | (b[at + 2]! << 16) | (b[at + 3]! << 24)) >>> 0;
}

function i16(b: Uint8Array, at: number): number {
  const v = u16(b, at);
  return v >= 0x8000 ? v - 0x10000 : v;
}

/** Parse the application data unit of a send-data or response frame. */
export function parseAppData(app: Uint8Array): AppDataResult {
  if (app.length < 2) {
    return { type: app[0], objects: [], refusals: [refusal('GB26875_BAD_OBJECT_COUNT', `the application data is ${app.length} byte(s); it needs at least the type flag and the object count`)] };
  }
  const type = app[0]!;
  const count = app[1]!;
  const body = BODY_BYTES[type];
  if (body === undefined) {
    const what = OTHER_TYPES[type] ? ` (${OTHER_TYPES[type]})` : type >= 61 && type <= 90 ? ' (a read request, which flows from the centre to the panel)' : '';
    return { type, objects: [], refusals: [refusal('GB26875_UNSUPPORTED_TYPE', `type ${type}${what}`)] };
  }
  const refusals: Gb26875Refusal[] = [];
  const payload = app.length - 2;
  let size = body + TIME_BYTES;
  // Some panels leave the time labels out ("for some data types this may be empty", GB/T 26875.3-2011
  // §7, not verified): accept that when the length fits untimed objects exactly and not timed ones.
  if (payload !== count * size && payload === count * body && count > 0) size = body;
  let n = count;
  if (payload !== count * size) {
    n = Math.min(count, Math.floor(payload / size));
    refusals.push(
      refusal(
        'GB26875_BAD_OBJECT_COUNT',
        `type ${type} says ${count} object(s) of ${size} bytes (${count * size} bytes), the unit carries ${payload}; ${n} complete object(s) decoded`,
      ),
    );
  }
  const objects: Gb26875Object[] = [];
  for (let i = 0; i < n; i++) {
    const at = 2 + i * size;
    const time = size > body ? readTime(app, at + body) : undefined;
    const o = parseObject(type, app, at, i, time);
    if (o) objects.push(o);
  }
  return { type, objects, refusals };
}

function parseObject(type: number, b: Uint8Array, at: number, index: number, time: FrameTime | undefined): Gb26875Object | undefined {
  switch (type) {
    case DATA_TYPES.systemState:
      return { kind: 'system_state', index, time, systemType: b[at]!, systemAddress: b[at + 1]!, state: u16(b, at + 2) };
    case DATA_TYPES.componentState:
      return {
        kind: 'component_state',
        index,
        time,
        systemType: b[at]!,
        systemAddress: b[at + 1]!,
        componentType: b[at + 2]!,
        componentAddress: u32(b, at + 3),
        state: u16(b, at + 7),
        description: decodeDescription(b.subarray(at + 9, at + 9 + DESCRIPTION_BYTES)),
      };
    case DATA_TYPES.componentAnalog:
      return {
        kind: 'analog',
        index,
        time,
        systemType: b[at]!,
        systemAddress: b[at + 1]!,
        componentType: b[at + 2]!,
        componentAddress: u32(b, at + 3),
        analogType: b[at + 7]!,
        raw: i16(b, at + 8),
      };
    case DATA_TYPES.operation:
      return { kind: 'operation', index, time, systemType: b[at]!, systemAddress: b[at + 1]!, flags: b[at + 2]!, operator: b[at + 3]! };
    case DATA_TYPES.deviceState:
      return { kind: 'device_state', index, time, state: b[at]! };
    case DATA_TYPES.deviceOperation:
      return { kind: 'device_operation', index, time, flags: b[at]!, operator: b[at + 1]! };
    default:
      return undefined;
  }
}
