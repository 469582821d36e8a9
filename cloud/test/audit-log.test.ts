// app.audit (cloud/src/audit/log.ts): entries commit with the change they describe, or not at all;
// filters and paging of the list.
import { describe, expect, it } from 'vitest';
import { AuditLog } from '../src/audit/log.ts';
import { openCloudStore } from '../src/store/db.ts';

describe('audit log', () => {
  it('an entry written in a transaction that fails is gone with it', () => {
    const store = openCloudStore(':memory:');
    const audit = new AuditLog(store, () => 1000);
    expect(() =>
      store.transaction(() => {
        audit.record({ actor: 'duty', action: 'alert.ack', target: 'alert:al_1' });
        throw new Error('the change failed');
      }),
    ).toThrow('the change failed');
    expect(audit.list({ limit: 10 })).toEqual([]);
    const e = audit.record({ actor: 'duty', action: 'alert.resolve', target: 'alert:al_1', details: { reason: 'fixed' } });
    expect(e).toEqual({ seq: expect.any(Number), ts: 1000, actor: 'duty', action: 'alert.resolve', target: 'alert:al_1', details: { reason: 'fixed' } });
    expect(() => audit.record({ actor: '', action: 'x', target: 'y' })).toThrow(TypeError);
    store.close();
  });

  it('filters by actor, action (exact or prefix), target, time, and pages newest first', () => {
    const store = openCloudStore(':memory:');
    let t = 0;
    const audit = new AuditLog(store, () => (t += 10));
    audit.record({ actor: 'admin', action: 'device.create', target: 'device:a' });
    audit.record({ actor: 'admin', action: 'device.update', target: 'device:a' });
    audit.record({ actor: 'duty', action: 'alert.ack', target: 'alert:x' });
    audit.record({ actor: 'duty', action: 'alert.resolve', target: 'alert:x' });
    audit.record({ actor: 'admin', action: 'device.delete', target: 'device:a' });
    const actions = (f: Parameters<AuditLog['list']>[0]) => audit.list(f).map((e) => e.action);
    expect(actions({ limit: 10 })).toEqual(['device.delete', 'alert.resolve', 'alert.ack', 'device.update', 'device.create']);
    expect(actions({ limit: 10, actor: 'duty' })).toEqual(['alert.resolve', 'alert.ack']);
    expect(actions({ limit: 10, action: 'device.*' })).toEqual(['device.delete', 'device.update', 'device.create']);
    expect(actions({ limit: 10, action: 'alert.' })).toEqual(['alert.resolve', 'alert.ack']);
    expect(actions({ limit: 10, action: 'device' })).toEqual([]);
    expect(actions({ limit: 10, target: 'device:a', from: 20, to: 50 })).toEqual(['device.update']);
    const page = audit.list({ limit: 2 });
    expect(actions({ limit: 10, before: page[1]!.seq })).toEqual(['alert.ack', 'device.update', 'device.create']);
    store.close();
  });
});
