// storeBatch: the body is one string and lines are cut out of it only when InfluxDB refuses some; a
// refusal that names a line must land on that reading or event, whichever position it has.
import type { Batch, DeviceEvent, Reading } from '@citysense/proto';
import { describe, expect, it } from 'vitest';
import { eventLine, readingLine, SeriesPrefixes } from '../src/ingest/line-protocol.ts';
import { storeBatch } from '../src/ingest/store-batch.ts';
import { BatchValidator } from '../src/ingest/validate.ts';
import type { InfluxWriter, WriteOutcome } from '../src/ingest/write.ts';
import type { CloudMetrics } from '../src/plugins/metrics.ts';

const metrics = { influxWriteSeconds: { startTimer: () => () => undefined }, influxUp: { set: () => undefined }, eventTypeLabel: (t: string) => t } as unknown as CloudMetrics;

const reading = (i: number, family: Reading['family'] = 'environment'): Reading => ({ deviceId: `d${i % 3}`, family, ts: 1_700_000_000_000 + i, values: { v: i, s: `a "${i}"` }, tags: { site: 's 1' } });
const event = (i: number): DeviceEvent => ({ deviceId: 'f1', family: 'fire', ts: 1_700_000_000_000 + i, type: 'fire_alarm', attrs: { zone: `z${i}` }, priority: 'alarm', id: `e${i}` });

function run(batch: Batch, answer: (body: string) => WriteOutcome) {
  const validator = new BatchValidator({ maxStringBytes: 1000, minTimestampMs: 0, maxFutureSkewMs: 1e12 }, () => 1_700_000_000_000);
  const bodies: string[] = [];
  const writer = { write: async (body: string) => (bodies.push(body), answer(body)) } as unknown as InfluxWriter;
  return storeBatch(batch, validator.validate(batch), { writer, metrics }).then((r) => ({ ...r, bodies }));
}

describe('storeBatch', () => {
  const readings = [reading(0), reading(1), { ...reading(2), values: {} }, reading(3, 'nbiot'), reading(4)];
  const events = [event(0), event(1)];
  const batch: Batch = { edgeId: 'e', seq: 1, createdMs: 0, readings, events };

  it('writes the lines of the valid readings, then the events, one per line', async () => {
    const r = await run(batch, () => ({ kind: 'written', attempts: 1 }));
    const p = new SeriesPrefixes();
    const expected = [0, 1, 3, 4].map((i) => readingLine(readings[i]!, p)).concat(events.map(eventLine));
    expect(r.bodies).toEqual([expected.join('\n')]);
    expect(r.ack).toMatchObject({ accepted: 6, rejected: 1 });
    expect(r.stored.readings.map((x) => x.index)).toEqual([0, 1, 3, 4]);
    expect(r.tally.readingsByFamily).toEqual(new Map([['environment', 3], ['nbiot', 1]]));
    expect(r.tally.eventsByType).toEqual(new Map([['fire_alarm', 2]]));
  });

  for (const [what, pick] of [
    ['the first line', 0],
    ['a middle line', 2],
    ['the last reading line', 3],
    ['an event line', 4],
    ['the last line', 5],
  ] as const) {
    it(`pins an unparsable ${what} on its point`, async () => {
      const r = await run(batch, (body) => ({ kind: 'refused', status: 400, attempts: 1, message: `partial write: unable to parse '${body.split('\n')[pick]}': invalid field format dropped=0` }));
      const refused = r.ack.rejections.filter((x) => x.code === 'INFLUX_REJECTED');
      expect(refused).toHaveLength(1);
      const want = pick < 4 ? { kind: 'reading', index: [0, 1, 3, 4][pick] } : { kind: 'event', index: pick - 4 };
      expect(refused[0]).toMatchObject(want);
      expect(r.stored.readings.length + r.stored.events.length).toBe(5);
      expect(r.ack).toMatchObject({ accepted: 5, rejected: 2 });
    });
  }
});
