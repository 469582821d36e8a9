// Works out which points InfluxDB refused when it answers a write with 400. InfluxDB 1.x stores the
// other points of the request and reports only the first reason, e.g.
//   partial write: field type conflict: input field "pm25" on measurement "environment" is type string,
//     already exists as type float dropped=3
//   partial write: unable to parse 'environment,device_id=x pm25= 1700000000000': invalid field format dropped=0
// Lines that failed to parse are named (and are not counted in dropped=); a type conflict names one field
// and measurement, which pins down every conflicting point of that field. Drops beyond those cannot be
// attributed to particular points, and the rejection says so.
import type { MetricValue, Rejection } from '@citysense/proto';

export type InfluxFieldType = 'float' | 'integer' | 'string' | 'boolean';

/** One line of a write and the reading or event it came from. */
export interface PointRef {
  kind: Rejection['kind'];
  index: number;
  line: string;
  measurement: string;
  /** Field name → the InfluxDB type this line writes it as. */
  fieldTypes(): Record<string, InfluxFieldType>;
}

export interface Attribution {
  /** Points known to be refused, one rejection each (code INFLUX_REJECTED). */
  rejections: Rejection[];
  /** Points InfluxDB counted as dropped without saying which. */
  unattributed: number;
}

export function fieldTypeOf(v: MetricValue): InfluxFieldType {
  return typeof v === 'number' ? 'float' : typeof v === 'boolean' ? 'boolean' : 'string';
}

const UNPARSABLE = /unable to parse '((?:[^']|'(?!: ))*)': ([^\n]*?)(?= dropped=\d+|\n|$)/g;
const CONFLICT = /field type conflict: input field "((?:[^"\\]|\\.)*)" on measurement "((?:[^"\\]|\\.)*)" is type (\w+), already exists as type (\w+)/;
const DROPPED = /dropped=(\d+)/;

export function attributeRefusal(message: string, refs: readonly PointRef[]): Attribution {
  const refused = new Map<PointRef, string>();
  const byLine = new Map<string, PointRef>();
  for (const r of refs) byLine.set(r.line, r);

  for (const m of message.matchAll(UNPARSABLE)) {
    const ref = byLine.get(m[1]!);
    if (ref) refused.set(ref, `InfluxDB could not parse this point: ${m[2]}`);
  }
  let conflicts = 0;
  const c = CONFLICT.exec(message);
  if (c) {
    const [, field, measurement, , existing] = c;
    for (const r of refs) {
      if (refused.has(r) || r.measurement !== measurement) continue;
      const t = r.fieldTypes()[field!];
      if (t !== undefined && t !== existing) {
        refused.set(r, `InfluxDB refused this point: field ${field} is ${t} here but already ${existing} in ${measurement}`);
        conflicts++;
      }
    }
  }

  let unattributed = 0;
  if (!/partial write/i.test(message)) {
    // A 400 that is not a partial write stored nothing.
    for (const r of refs) if (!refused.has(r)) refused.set(r, `InfluxDB refused the whole write: ${message}`);
  } else {
    const dropped = Number(DROPPED.exec(message)?.[1] ?? 0);
    unattributed = Math.max(0, dropped - conflicts);
  }
  const rejections: Rejection[] = [];
  for (const [r, msg] of refused) rejections.push({ kind: r.kind, index: r.index, code: 'INFLUX_REJECTED', message: msg.slice(0, 1000) });
  rejections.sort((a, b) => (a.kind === b.kind ? a.index - b.index : a.kind === 'reading' ? -1 : 1));
  return { rejections, unattributed };
}
