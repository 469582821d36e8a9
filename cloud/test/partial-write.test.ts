// Which points an InfluxDB 400 refers to, from the messages InfluxDB 1.x actually sends.
import { describe, expect, it } from 'vitest';
import { attributeRefusal, type InfluxFieldType, type PointRef } from '../src/ingest/partial-write.ts';

const ref = (index: number, line: string, measurement: string, types: Record<string, InfluxFieldType>): PointRef => ({
  kind: 'reading',
  index,
  line,
  measurement,
  fieldTypes: () => types,
});

const refs = [
  ref(0, 'environment,device_id=a mode="x" 1', 'environment', { mode: 'string' }),
  ref(1, 'environment,device_id=b mode=3 2', 'environment', { mode: 'float' }),
  ref(2, 'elevator,device_id=c mode=3 3', 'elevator', { mode: 'float' }),
  ref(3, 'environment,device_id=d pm25=1 4', 'environment', { pm25: 'float' }),
];

describe('attributeRefusal', () => {
  it('pins a field type conflict to the points of that field and measurement with the other type', () => {
    const a = attributeRefusal('partial write: field type conflict: input field "mode" on measurement "environment" is type float, already exists as type string dropped=1', refs);
    expect(a.rejections.map((r) => r.index)).toEqual([1]);
    expect(a.rejections[0]).toMatchObject({ code: 'INFLUX_REJECTED', kind: 'reading' });
    expect(a.unattributed).toBe(0);
  });

  it('counts drops it cannot pin down as unattributed', () => {
    const a = attributeRefusal('partial write: field type conflict: input field "mode" on measurement "environment" is type float, already exists as type string dropped=3', refs);
    expect(a.rejections.map((r) => r.index)).toEqual([1]);
    expect(a.unattributed).toBe(2);
    expect(attributeRefusal('partial write: points beyond retention policy dropped=2', refs)).toEqual({ rejections: [], unattributed: 2 });
  });

  it('names lines InfluxDB could not parse (which dropped= does not count)', () => {
    const a = attributeRefusal(`partial write: unable to parse '${refs[3]!.line}': invalid field format dropped=0`, refs);
    expect(a.rejections.map((r) => [r.index, r.message])).toEqual([[3, 'InfluxDB could not parse this point: invalid field format']]);
    expect(a.unattributed).toBe(0);
  });

  it('treats a 400 that is not a partial write as refusing every point', () => {
    const a = attributeRefusal(`unable to parse '${refs[0]!.line}': bad timestamp`, refs);
    expect(a.rejections.map((r) => r.index)).toEqual([0, 1, 2, 3]);
  });
});
