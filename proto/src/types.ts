// The plain objects that edge and cloud exchange through codec.ts.

export const FAMILIES = ['environment', 'elevator', 'fire', 'nbiot'] as const;
export type Family = (typeof FAMILIES)[number];

export const PRIORITIES = ['routine', 'warning', 'alarm'] as const;
export type Priority = (typeof PRIORITIES)[number];

export type MetricValue = number | boolean | string;

export interface Reading {
  deviceId: string;
  family: Family;
  /** The reading's own time, ms since the Unix epoch. */
  ts: number;
  values: Record<string, MetricValue>;
  /** Data-quality flag (HJ 212's N/F/M/S/D/C/T/B, or one the edge set); absent = normal. */
  quality?: string;
  /** Per-device sequence stamped by the edge. */
  deviceSeq?: number;
  /** InfluxDB tags besides device_id: district, site, model, ... */
  tags?: Record<string, string>;
}

export interface DeviceEvent {
  deviceId: string;
  family: Family;
  ts: number;
  /** fire_alarm, entrapment, gas_alarm, fault, ... */
  type: string;
  attrs: Record<string, string>;
  priority: Priority;
  /** Stable id given by the edge: the same happening keeps it across retries. */
  id: string;
  deviceSeq?: number;
  tags?: Record<string, string>;
}

export interface DropReport {
  deviceId: string;
  dataClass: 'telemetry' | 'alarm';
  /** Stable reason code, e.g. QUEUE_FULL. */
  reason: string;
  count: number;
  oldestTsMs: number;
}

export type Lane = 'telemetry' | 'alarm';

export interface Batch {
  edgeId: string;
  /** Per-edge, strictly increasing, never reused. */
  seq: number;
  createdMs: number;
  readings: Reading[];
  events: DeviceEvent[];
  /** Loss the edge reports since its last report (absent or empty: none). */
  drops?: DropReport[];
  /** The lane the batch travelled in (absent: telemetry). */
  lane?: Lane;
}

export interface Rejection {
  kind: 'reading' | 'event';
  index: number;
  code: string;
  message: string;
}

export interface Ack {
  seq: number;
  accepted: number;
  rejected: number;
  rejections: Rejection[];
  duplicate: boolean;
}
