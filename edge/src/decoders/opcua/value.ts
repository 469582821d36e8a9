// OPC-UA value mapping: one DataValue (node-opcua's, or the same shape as plain data) → one metric value
// or a coded refusal. Pure and total: whatever it is given, it returns; nothing throws out of it.
// It does not import node-opcua, so the numbers below are the OPC-UA ones (Part 6 §5.1.2 built-in
// type ids; Part 4 §7.34 StatusCode severity bits).

/** Why one value was refused (its neighbours go on). Stable: metric labels and docs use them. */
export const OPCUA_VALUE_REJECT = {
  badStatus: 'OPCUA_BAD_STATUS',
  unsupportedType: 'OPCUA_UNSUPPORTED_TYPE',
  notFinite: 'OPCUA_NOT_FINITE',
  outOfRange: 'OPCUA_OUT_OF_RANGE',
  noValue: 'OPCUA_NO_VALUE',
  stringTooLong: 'OPCUA_STRING_TOO_LONG',
  malformed: 'OPCUA_MALFORMED',
} as const;
export type OpcuaValueRejectCode = (typeof OPCUA_VALUE_REJECT)[keyof typeof OPCUA_VALUE_REJECT];

export type OpcuaMappedValue =
  | { ok: true; value: number | boolean | string; ts?: number; quality?: 'U' }
  | { ok: false; code: OpcuaValueRejectCode; message: string };

/** The part of a DataValue the mapping reads; node-opcua's DataValue satisfies it. */
export interface DataValueLike {
  value?: { dataType?: unknown; arrayType?: unknown; value?: unknown } | null;
  statusCode?: unknown;
  sourceTimestamp?: unknown;
  serverTimestamp?: unknown;
}

/** Strings longer than this are refused rather than carried into the pipeline. */
export const MAX_STRING_LENGTH = 1024;

// OPC-UA built-in type ids (Part 6 §5.1.2), the values of node-opcua's DataType.
const T = {
  Null: 0,
  Boolean: 1,
  SByte: 2,
  Byte: 3,
  Int16: 4,
  UInt16: 5,
  Int32: 6,
  UInt32: 7,
  Int64: 8,
  UInt64: 9,
  Float: 10,
  Double: 11,
  String: 12,
  LocalizedText: 21,
} as const;

const TYPE_NAMES: Record<number, string> = {
  0: 'Null', 1: 'Boolean', 2: 'SByte', 3: 'Byte', 4: 'Int16', 5: 'UInt16', 6: 'Int32', 7: 'UInt32', 8: 'Int64',
  9: 'UInt64', 10: 'Float', 11: 'Double', 12: 'String', 13: 'DateTime', 14: 'Guid', 15: 'ByteString',
  16: 'XmlElement', 17: 'NodeId', 18: 'ExpandedNodeId', 19: 'StatusCode', 20: 'QualifiedName',
  21: 'LocalizedText', 22: 'ExtensionObject', 23: 'DataValue', 24: 'Variant', 25: 'DiagnosticInfo',
};

const INT_RANGE: Record<number, [number, number]> = {
  [T.SByte]: [-128, 127],
  [T.Byte]: [0, 255],
  [T.Int16]: [-32768, 32767],
  [T.UInt16]: [0, 65535],
  [T.Int32]: [-2147483648, 2147483647],
  [T.UInt32]: [0, 4294967295],
};

// Part 4 §7.34.1: bits 30–31 are the severity: 00 Good, 01 Uncertain, 10 and 11 Bad.
const SEVERITY_MASK = 0xc0000000;
const UNCERTAIN = 0x40000000;

// DateTime values at or before 1601-01-01 mean "no timestamp" in OPC-UA (Part 6 §5.2.2.5).
const OPCUA_EPOCH_MS = Date.UTC(1601, 0, 1);
// Beyond this a timestamp is garbage, not a date (year 9999).
const MAX_TS_MS = Date.UTC(9999, 11, 31);

const refuse = (code: OpcuaValueRejectCode, message: string): OpcuaMappedValue => ({ ok: false, code, message });

function statusNumber(statusCode: unknown): number | undefined {
  if (statusCode === undefined || statusCode === null) return 0; // absent means Good (Part 6 §5.2.2.17)
  if (typeof statusCode === 'number') return Number.isInteger(statusCode) && statusCode >= 0 && statusCode <= 0xffffffff ? statusCode : undefined;
  if (typeof statusCode === 'object') {
    const v = (statusCode as { value?: unknown }).value;
    if (typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 0xffffffff) return v;
  }
  return undefined;
}

function statusName(statusCode: unknown, n: number): string {
  const name = typeof statusCode === 'object' && statusCode !== null ? (statusCode as { name?: unknown }).name : undefined;
  const hex = `0x${n.toString(16).padStart(8, '0')}`;
  return typeof name === 'string' && name.length > 0 && name.length < 100 ? `${name} (${hex})` : hex;
}

/** A DataValue timestamp as Unix ms, or undefined when absent or meaningless. */
export function timestampMs(t: unknown): number | undefined {
  let ms: number;
  if (t instanceof Date) ms = t.getTime();
  else if (typeof t === 'number') ms = t;
  else return undefined;
  if (!Number.isFinite(ms) || ms <= OPCUA_EPOCH_MS || ms > MAX_TS_MS) return undefined;
  return Math.trunc(ms);
}

/**
 * node-opcua carries 64-bit integers as [high, low] pairs of 32-bit words; other sources may give a
 * bigint or a number. JavaScript numbers are exact up to 2^53, so anything beyond is refused rather
 * than silently rounded.
 */
function int64(v: unknown, signed: boolean): OpcuaMappedValue {
  let big: bigint;
  if (typeof v === 'bigint') big = v;
  else if (typeof v === 'number') {
    if (!Number.isInteger(v)) return refuse(OPCUA_VALUE_REJECT.malformed, `${signed ? 'Int64' : 'UInt64'} value is not an integer`);
    big = BigInt(v);
  } else if (Array.isArray(v) && v.length === 2 && v.every((w) => typeof w === 'number' && Number.isInteger(w) && w >= 0 && w <= 0xffffffff)) {
    const [hi, lo] = v as [number, number];
    big = (BigInt(hi) << 32n) | BigInt(lo);
    if (signed) big = BigInt.asIntN(64, big);
  } else {
    return refuse(OPCUA_VALUE_REJECT.malformed, `${signed ? 'Int64' : 'UInt64'} value is neither [high, low], a bigint nor a number`);
  }
  const [lo, hi] = signed ? [-(2n ** 63n), 2n ** 63n - 1n] : [0n, 2n ** 64n - 1n];
  if (big < lo || big > hi) return refuse(OPCUA_VALUE_REJECT.outOfRange, `${big} is outside the ${signed ? 'Int64' : 'UInt64'} range`);
  if (big > BigInt(Number.MAX_SAFE_INTEGER) || big < BigInt(Number.MIN_SAFE_INTEGER)) {
    return refuse(OPCUA_VALUE_REJECT.outOfRange, `${big} cannot be carried exactly as a number (beyond ±2^53)`);
  }
  return { ok: true, value: Number(big) };
}

function scalar(dataType: number, v: unknown): OpcuaMappedValue {
  const typeName = TYPE_NAMES[dataType] ?? `type ${dataType}`;
  if (v === null || v === undefined) return refuse(OPCUA_VALUE_REJECT.noValue, `${typeName} variant without a value`);
  switch (dataType) {
    case T.Boolean:
      return typeof v === 'boolean' ? { ok: true, value: v } : refuse(OPCUA_VALUE_REJECT.malformed, 'Boolean variant holds a non-boolean');
    case T.SByte:
    case T.Byte:
    case T.Int16:
    case T.UInt16:
    case T.Int32:
    case T.UInt32: {
      // Enumerations travel as Int32 (Part 6 §5.1.4), so they land here and stay numbers; the
      // profile gives the numbers their meaning.
      if (typeof v !== 'number') return refuse(OPCUA_VALUE_REJECT.malformed, `${typeName} variant holds a ${typeof v}`);
      if (!Number.isFinite(v)) return refuse(OPCUA_VALUE_REJECT.notFinite, `${typeName} variant holds ${v}`);
      const [lo, hi] = INT_RANGE[dataType] as [number, number];
      if (!Number.isInteger(v) || v < lo || v > hi) return refuse(OPCUA_VALUE_REJECT.outOfRange, `${v} is not a ${typeName}`);
      return { ok: true, value: v };
    }
    case T.Int64:
    case T.UInt64:
      return int64(v, dataType === T.Int64);
    case T.Float:
    case T.Double:
      if (typeof v !== 'number') return refuse(OPCUA_VALUE_REJECT.malformed, `${typeName} variant holds a ${typeof v}`);
      // NaN and ±Inf are legal IEEE values on the wire but cannot be stored as a reading.
      if (!Number.isFinite(v)) return refuse(OPCUA_VALUE_REJECT.notFinite, `${typeName} variant holds ${v}`);
      return { ok: true, value: v };
    case T.String:
      if (typeof v !== 'string') return refuse(OPCUA_VALUE_REJECT.malformed, `String variant holds a ${typeof v}`);
      if (v.length > MAX_STRING_LENGTH) return refuse(OPCUA_VALUE_REJECT.stringTooLong, `string of ${v.length} characters (max ${MAX_STRING_LENGTH})`);
      return { ok: true, value: v };
    case T.LocalizedText: {
      if (typeof v !== 'object') return refuse(OPCUA_VALUE_REJECT.malformed, 'LocalizedText variant holds no object');
      const text = (v as { text?: unknown }).text;
      if (text === null || text === undefined) return refuse(OPCUA_VALUE_REJECT.noValue, 'LocalizedText without text');
      if (typeof text !== 'string') return refuse(OPCUA_VALUE_REJECT.malformed, 'LocalizedText text is not a string');
      if (text.length > MAX_STRING_LENGTH) return refuse(OPCUA_VALUE_REJECT.stringTooLong, `text of ${text.length} characters (max ${MAX_STRING_LENGTH})`);
      return { ok: true, value: text };
    }
    default:
      return refuse(OPCUA_VALUE_REJECT.unsupportedType, `OPC-UA type ${typeName} is not mapped to a reading`);
  }
}

function mapUnsafe(dv: unknown): OpcuaMappedValue {
  if (typeof dv !== 'object' || dv === null) return refuse(OPCUA_VALUE_REJECT.malformed, 'not a DataValue');
  const d = dv as DataValueLike;
  const status = statusNumber(d.statusCode);
  if (status === undefined) return refuse(OPCUA_VALUE_REJECT.malformed, 'unreadable status code');
  const severity = (status & SEVERITY_MASK) >>> 0;
  // Bad: the value is not to be used (Part 4 §7.34); the status names why, e.g. BadNodeIdUnknown.
  if (severity !== 0 && severity !== UNCERTAIN) return refuse(OPCUA_VALUE_REJECT.badStatus, `status ${statusName(d.statusCode, status)}`);
  const variant = d.value;
  if (variant === undefined || variant === null) return refuse(OPCUA_VALUE_REJECT.noValue, 'DataValue without a value');
  if (typeof variant !== 'object') return refuse(OPCUA_VALUE_REJECT.malformed, 'DataValue value is not a Variant');
  const dataType = variant.dataType;
  if (typeof dataType !== 'number' || !Number.isInteger(dataType)) return refuse(OPCUA_VALUE_REJECT.malformed, 'Variant without a numeric dataType');
  if (dataType === T.Null) return refuse(OPCUA_VALUE_REJECT.noValue, 'Null variant');
  // node-opcua's VariantArrayType: 0 Scalar, 1 Array, 2 Matrix.
  const arrayType = variant.arrayType;
  const isArray = (arrayType !== undefined && arrayType !== 0) || ((dataType !== T.Int64 && dataType !== T.UInt64) && (Array.isArray(variant.value) || ArrayBuffer.isView(variant.value)));
  if (isArray) return refuse(OPCUA_VALUE_REJECT.unsupportedType, `arrays of ${TYPE_NAMES[dataType] ?? `type ${dataType}`} are not mapped to a reading`);
  const r = scalar(dataType, variant.value);
  if (!r.ok) return r;
  const ts = timestampMs(d.sourceTimestamp);
  return {
    ok: true,
    value: r.value,
    ...(ts !== undefined ? { ts } : {}),
    ...(severity === UNCERTAIN ? { quality: 'U' as const } : {}),
  };
}

/** Map one DataValue. Total: refusals come back coded, never thrown. */
export function mapDataValue(dv: unknown): OpcuaMappedValue {
  try {
    return mapUnsafe(dv);
  } catch (err) {
    // Getters on a foreign object may throw; that is a malformed input, not a crash.
    return refuse(OPCUA_VALUE_REJECT.malformed, `unreadable DataValue: ${(err as Error)?.message ?? String(err)}`.slice(0, 200));
  }
}
