// What every platform module hands to the shared store step: reports parsed from one push, each naming
// its device by platform identity and carrying the key that recognises a repeated push.
import type { EdgeErrorCode } from '../../errors.ts';
import type { PushedReport } from '../../agent/ingest.ts';
import type { PushKey } from '../../registry/registry.ts';

export const PLATFORMS = ['ctwing', 'onenet', 'onenet-studio'] as const;
export type Platform = (typeof PLATFORMS)[number];

export interface PushItem {
  /** The message type as the platform names it (dataReport, type 1, notify/property, ...): a metric label. */
  message: string;
  /** Registry keys to try, in order (platform device id first, then IMEI). */
  lookup: PushKey[];
  /** Only devices whose registered productId (when given) equals this one are matched. */
  productId?: string | undefined;
  /** Same device + same key = the same report pushed again; undefined = nothing to recognise it by. */
  dedupeKey: string | undefined;
  report: PushedReport;
}

export type Refusal = { ok: false; code: EdgeErrorCode; detail: string };
export type Parsed = { ok: true; items: PushItem[] } | Refusal;

export const refuse = (code: EdgeErrorCode, detail: string): Refusal => ({ ok: false, code, detail });

/** A JSON scalar as a metric value (null, objects, arrays are not values). */
export function scalar(v: unknown): number | boolean | string | undefined {
  if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'string') return v;
  return undefined;
}

/** Milliseconds since the epoch from a number or numeric text; undefined for anything else (-1, "", junk). */
export function msTime(v: unknown): number | undefined {
  const n = typeof v === 'number' ? v : typeof v === 'string' && /^\d{10,16}$/.test(v.trim()) ? Number(v) : NaN;
  if (!Number.isFinite(n) || n <= 0) return undefined;
  // Seconds (10 digits) arrive from some platform versions; milliseconds from the rest.
  return n < 1e11 ? n * 1000 : Math.trunc(n);
}

/** An id-like field that arrives as text or number (serviceId "" or 1, dev_id 123 or "123"); "" / -1 / null = absent. */
export function idText(v: unknown): string | undefined {
  if (typeof v === 'number' && Number.isFinite(v) && v >= 0) return String(v);
  if (typeof v === 'string' && v !== '' && v !== '-1' && v !== 'undefined' && v !== 'null') return v;
  return undefined;
}

export const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
