// Alert state changes as InfluxDB points: measurement `alerts` (contracts.md), tags rule, device_id,
// district, category, severity, state; time = the change's own time.
import { escapeKey, nsTime, quoteString, subMs } from '../ingest/line-protocol.ts';
import type { AlertChangeBody } from './engine.ts';

export const ALERTS_MEASUREMENT = 'alerts';

/**
 * Fields: id, event_id, reason, started_at (ms), flapping; `value` / `threshold` when numeric, else
 * `value_text` / `threshold_text` (JSON) so one field never changes type; by, type, attrs (JSON), source_event_id
 * when present.
 */
/**
 * `seq` is the change's own number (alert_changes.seq): its last six digits are the ns inside the
 * change's millisecond, so two changes with the same tags in one ms (one rule firing for two zones of a
 * panel) are two points, and a change written again after a failed write lands on itself.
 */
export function alertChangeLine(c: AlertChangeBody, seq: number): string {
  const tags: [string, string][] = [
    ['category', c.category],
    ['device_id', c.device_id],
    ['district', c.district],
    ['rule', c.rule],
    ['severity', c.severity],
    ['state', c.state],
  ];
  let line = ALERTS_MEASUREMENT;
  for (const [k, v] of tags) if (v) line += `,${k}=${escapeKey(v)}`;
  const fields: string[] = [`id=${quoteString(c.id)}`, `event_id=${quoteString(c.event_id)}`, `reason=${quoteString(c.reason)}`, `started_at=${c.started_at}`, `flapping=${c.flapping ? 'true' : 'false'}`];
  const num = (name: string, v: unknown) => {
    if (v === null || v === undefined) return;
    if (typeof v === 'number' && Number.isFinite(v)) fields.push(`${name}=${v}`);
    else fields.push(`${name}_text=${quoteString(JSON.stringify(v))}`);
  };
  num('value', c.value);
  num('threshold', c.threshold);
  if (c.by) fields.push(`by=${quoteString(c.by)}`);
  if (c.type) fields.push(`type=${quoteString(c.type)}`);
  if (c.attrs) fields.push(`attrs=${quoteString(JSON.stringify(c.attrs))}`);
  if (c.source_event_id) fields.push(`source_event_id=${quoteString(c.source_event_id)}`);
  return `${line} ${fields.join(',')} ${nsTime(c.ts, subMs(seq))}`;
}
