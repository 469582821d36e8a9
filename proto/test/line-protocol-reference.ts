// A plain line-protocol rendering used only to compare sizes (the cloud has the real writer).
import type { Batch } from '../src/index.ts';

export function lineProtocolOf(batch: Batch): string {
  const lines: string[] = [];
  for (const r of batch.readings) {
    const tags = Object.entries({ device_id: r.deviceId, ...(r.tags ?? {}) })
      .sort(([a], [b]) => (a < b ? -1 : 1))
      .map(([k, v]) => `${k}=${v}`)
      .join(',');
    const fields = Object.entries(r.values)
      .map(([k, v]) => `${k}=${typeof v === 'string' ? JSON.stringify(v) : v}`)
      .join(',');
    lines.push(`${r.family},${tags} ${fields} ${r.ts}`);
  }
  return lines.join('\n');
}
