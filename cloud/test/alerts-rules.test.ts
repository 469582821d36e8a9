// Each rule kind firing and clearing, hysteresis, flapping, and rule files refused with the path of the
// mistake. Batches go straight to app.alerts.onBatch (what ingest calls after InfluxDB accepted them).
import type { FastifyInstance } from 'fastify';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { testInflux, type TestInflux } from '../../e2e/setup/influx.ts';
import { stepRate, type SeriesState } from '../src/alerts/evaluate.ts';
import { DEFAULT_RULES_DIR, loadRules, parseRules } from '../src/alerts/rules.ts';
import { seriesJson } from '../src/alerts/state.ts';
import { parseCloudConfig } from '../src/config/load.ts';
import { CloudConfigError } from '../src/errors.ts';
import { alertApp, alertBatch, changeStates, clock, event, reading, type AlertAppOptions } from './alerts-fixtures.ts';

let influx: TestInflux;
let app: FastifyInstance | undefined;
beforeAll(async () => {
  influx = await testInflux('cloud-alerts-rules');
});
afterEach(async () => {
  await app?.close();
  app = undefined;
});

async function start(o: AlertAppOptions) {
  app = alertApp(influx, o);
  await app.ready();
  return app;
}

const T = Date.UTC(2025, 0, 1, 8);
const MIN = 60_000;
const states = (a: FastifyInstance) => changeStates(a).map((c) => `${c.rule}:${c.device_id}:${c.state}`);

describe('threshold rules', () => {
  it('above … for 1h fires only after an hour of readings above, and clears below the clear threshold', async () => {
    const a = await start({
      rules: [{ id: 'pm25', kind: 'threshold', category: 'environment', severity: 'major', metric: 'pm25', above: 75, for: '1h', clear: { below: 60 }, match: { family: 'environment' } }],
    });
    // 80 µg/m³ for 50 minutes: not yet.
    for (let m = 0; m <= 50; m += 10) a.alerts.onBatch(alertBatch([reading('env-1', T + m * MIN, { pm25: 80 })]));
    expect(states(a)).toEqual([]);
    a.alerts.onBatch(alertBatch([reading('env-1', T + 60 * MIN, { pm25: 81 })]));
    expect(states(a)).toEqual(['pm25:env-1:firing']);
    const [firing] = a.alerts.list({ limit: 10 });
    expect(firing).toMatchObject({ state: 'firing', started_at: T, value: 81, threshold: 75, district: 'jinshui', category: 'environment', severity: 'major' });
    // Between the clear threshold and the firing threshold: still firing (hysteresis).
    a.alerts.onBatch(alertBatch([reading('env-1', T + 70 * MIN, { pm25: 70 })]));
    a.alerts.onBatch(alertBatch([reading('env-1', T + 80 * MIN, { pm25: 64 })]));
    expect(states(a)).toEqual(['pm25:env-1:firing']);
    a.alerts.onBatch(alertBatch([reading('env-1', T + 90 * MIN, { pm25: 55 })]));
    expect(states(a)).toEqual(['pm25:env-1:firing', 'pm25:env-1:resolved']);
    expect(a.alerts.get(firing!.id)).toMatchObject({ state: 'resolved', resolved_reason: 'condition cleared', value: 55 });
  });

  it('a dip below the threshold restarts the `for` count', async () => {
    const a = await start({ rules: [{ id: 'pm25', kind: 'threshold', category: 'environment', severity: 'major', metric: 'pm25', above: 75, for: '30m' }] });
    a.alerts.onBatch(alertBatch([reading('env-1', T, { pm25: 80 }), reading('env-1', T + 20 * MIN, { pm25: 70 }), reading('env-1', T + 25 * MIN, { pm25: 90 })]));
    a.alerts.onBatch(alertBatch([reading('env-1', T + 50 * MIN, { pm25: 90 })]));
    expect(states(a)).toEqual([]);
    a.alerts.onBatch(alertBatch([reading('env-1', T + 55 * MIN, { pm25: 90 })]));
    expect(states(a)).toEqual(['pm25:env-1:firing']);
  });

  it('hysteresis: a value hovering around the threshold fires once, not at every crossing', async () => {
    const rule = { id: 'gas', kind: 'threshold' as const, category: 'safety' as const, severity: 'critical' as const, metric: 'gas_lel', above: 25 };
    const a = await start({ rules: [{ ...rule, clear: { below: 20 } }] });
    const values = [24, 26, 24.5, 25.5, 24, 26, 23, 27, 22, 26];
    a.alerts.onBatch(alertBatch(values.map((v, i) => reading('gas-1', T + i * 1000, { gas_lel: v }, 'nbiot'))));
    expect(states(a)).toEqual(['gas:gas-1:firing']);
    a.alerts.onBatch(alertBatch([reading('gas-1', T + 20_000, { gas_lel: 19 }, 'nbiot')]));
    expect(states(a)).toEqual(['gas:gas-1:firing', 'gas:gas-1:resolved']);

    // Without a clear threshold the same values fire and clear at every crossing: what hysteresis prevents.
    await app!.close();
    const b = await start({ rules: [rule] });
    b.alerts.onBatch(alertBatch(values.map((v, i) => reading('gas-1', T + i * 1000, { gas_lel: v }, 'nbiot'))));
    expect(states(b).filter((s) => s.endsWith(':firing')).length).toBeGreaterThan(2);
  });

  it('below, outside and equals', async () => {
    const a = await start({
      rules: [
        { id: 'sprinkler', kind: 'threshold', category: 'fire', severity: 'major', metric: 'sprinkler_pressure', below: 0.1, clear: { above: 0.12 }, match: { family: 'fire' } },
        { id: 'temp', kind: 'threshold', category: 'environment', severity: 'minor', metric: 'temperature', outside: [-10, 40] },
        { id: 'gas-state', kind: 'threshold', category: 'safety', severity: 'major', metric: 'state', equals: 'alarm' },
      ],
    });
    a.alerts.onBatch(
      alertBatch([
        reading('fire-1', T, { sprinkler_pressure: 0.08 }, 'fire'),
        reading('env-1', T, { temperature: 45 }),
        reading('gas-1', T, { state: 'alarm' }, 'nbiot'),
        reading('env-2', T, { temperature: -12 }),
      ]),
    );
    expect(states(a).sort()).toEqual(['gas-state:gas-1:firing', 'sprinkler:fire-1:firing', 'temp:env-1:firing', 'temp:env-2:firing']);
    a.alerts.onBatch(
      alertBatch([
        reading('fire-1', T + 1000, { sprinkler_pressure: 0.11 }, 'fire'), // between: stays
        reading('env-1', T + 1000, { temperature: 30 }),
        reading('gas-1', T + 1000, { state: 'normal' }, 'nbiot'),
      ]),
    );
    expect(states(a).filter((s) => s.endsWith('resolved')).sort()).toEqual(['gas-state:gas-1:resolved', 'temp:env-1:resolved']);
    a.alerts.onBatch(alertBatch([reading('fire-1', T + 2000, { sprinkler_pressure: 0.13 }, 'fire')]));
    expect(states(a)).toContain('sprinkler:fire-1:resolved');
  });

  it('matches by family, district, device, profile (model tag) and tags', async () => {
    const base = { kind: 'threshold' as const, category: 'environment' as const, severity: 'minor' as const, metric: 'pm25', above: 10 };
    const a = await start({
      rules: [
        { ...base, id: 'by-district', match: { district: 'erqi' } },
        { ...base, id: 'by-device', match: { device: ['env-9'] } },
        { ...base, id: 'by-profile', match: { profile: 'AQM-9' } },
        { ...base, id: 'by-family', match: { family: 'fire' } },
        { ...base, id: 'by-tag', match: { tags: { model: 'other' } } },
      ],
    });
    a.alerts.onBatch(alertBatch([reading('env-1', T, { pm25: 20 }, 'environment', 'erqi'), reading('env-9', T, { pm25: 20 })]));
    expect(states(a).sort()).toEqual(['by-device:env-9:firing', 'by-district:env-1:firing', 'by-profile:env-1:firing', 'by-profile:env-9:firing']);
  });
});

describe('rate rules', () => {
  it('fire when a value rises by more than `rise` within the window and clear when the window is calm', async () => {
    const a = await start({ rules: [{ id: 'pm25-rise', kind: 'rate', category: 'environment', severity: 'minor', metric: 'pm25', rise: 50, window: '30m', clear: { rise: 25 } }] });
    a.alerts.onBatch(alertBatch([reading('env-1', T, { pm25: 20 }), reading('env-1', T + 10 * MIN, { pm25: 45 }), reading('env-1', T + 20 * MIN, { pm25: 65 })]));
    expect(states(a)).toEqual([]); // +45
    a.alerts.onBatch(alertBatch([reading('env-1', T + 25 * MIN, { pm25: 75 })]));
    expect(states(a)).toEqual(['pm25-rise:env-1:firing']); // +55 within 30 min
    expect(a.alerts.list({ limit: 1 })[0]).toMatchObject({ value: 55, threshold: 50 });
    a.alerts.onBatch(alertBatch([reading('env-1', T + 40 * MIN, { pm25: 76 })]));
    expect(states(a)).toEqual(['pm25-rise:env-1:firing']); // window [10..40]: +31 > 25
    a.alerts.onBatch(alertBatch([reading('env-1', T + 60 * MIN, { pm25: 77 })]));
    expect(states(a)).toEqual(['pm25-rise:env-1:firing', 'pm25-rise:env-1:resolved']);
  });

  it('a slow rise over more than the window does not fire; a fall does when asked', async () => {
    const a = await start({ rules: [{ id: 'pressure-drop', kind: 'rate', category: 'fire', severity: 'major', metric: 'p', fall: 0.2, rise: 100, window: '10m' }] });
    a.alerts.onBatch(alertBatch([0, 1, 2, 3].map((i) => reading('fire-1', T + i * 10 * MIN, { p: 1 - i * 0.1 }, 'fire'))));
    expect(states(a)).toEqual([]);
    a.alerts.onBatch(alertBatch([reading('fire-1', T + 35 * MIN, { p: 0.4 })]));
    expect(states(a)).toEqual(['pressure-drop:fire-1:firing']);
    expect(a.alerts.list({ limit: 1 })[0]).toMatchObject({ threshold: -0.2 });
  });

  it('a rate series is stored as JSON.stringify would store it, also after its samples were thinned and reused', () => {
    const [rule] = parseRules({ rules: [{ id: 'r', kind: 'rate', category: 'environment', severity: 'minor', metric: 'pm25', rise: 50, window: '30m' }] }, 'inline');
    const s: SeriesState = { phase: 'ok', lastTs: -Infinity, firings: [T] };
    for (let i = 0; i < 40; i++) {
      stepRate(rule as never, s, T + i * 1000, Math.round(Math.sin(i) * 300) / 10, 8, 0);
      expect(JSON.parse(seriesJson(s))).toEqual(JSON.parse(JSON.stringify(s)));
    }
    expect(seriesJson({ phase: 'ok', lastTs: 5, samples: [] })).toBe(JSON.stringify({ phase: 'ok', lastTs: 5, samples: [] }));
  });
});

describe('offline rules', () => {
  it('fire after 3 expected intervals of silence (wall clock) and clear when the device reports', async () => {
    const now = clock(T);
    const a = await start({
      now,
      rules: [{ id: 'offline', kind: 'offline', category: 'device', severity: 'minor', intervals: 3 }],
      extra: { alerts: { expectedIntervalMs: { environment: 60_000 } } },
    });
    a.alerts.onBatch(alertBatch([reading('env-1', T, { pm25: 10 })]));
    now.add(2 * MIN);
    a.alerts.tick();
    expect(states(a)).toEqual([]);
    now.add(MIN + 1);
    a.alerts.tick();
    a.alerts.tick(); // once only
    expect(states(a)).toEqual(['offline:env-1:firing']);
    expect(a.alerts.list({ limit: 1 })[0]).toMatchObject({ value: 180, threshold: 180, category: 'device' });
    a.alerts.onBatch(alertBatch([reading('env-1', now(), { pm25: 10 })]));
    expect(states(a)).toEqual(['offline:env-1:firing', 'offline:env-1:resolved']);
  });

  it('`after` overrides the window; the rule may also give the expected interval', async () => {
    const now = clock(T);
    const a = await start({
      now,
      rules: [
        { id: 'fast', kind: 'offline', category: 'device', severity: 'minor', after: '30s', match: { device: 'a' } },
        { id: 'slow', kind: 'offline', category: 'device', severity: 'minor', intervals: 2, expectedInterval: '1m', match: { device: 'b' } },
      ],
    });
    a.alerts.onBatch(alertBatch([reading('a', T, { x: 1 }), reading('b', T, { x: 1 })]));
    now.add(31_000);
    a.alerts.tick();
    expect(states(a)).toEqual(['fast:a:firing']);
    now.add(MIN);
    a.alerts.tick();
    expect(states(a)).toEqual(['fast:a:firing']); // 91 s of 2 × 1 min
    now.add(30_000);
    a.alerts.tick();
    expect(states(a)).toEqual(['fast:a:firing', 'slow:b:firing']);
  });
});

describe('event rules', () => {
  it('fire at once with the event type and attrs, one alert per key, and clear on <type>_cleared', async () => {
    const a = await start({ rules: [{ id: 'fire-alarm', kind: 'event', category: 'fire', severity: 'critical', types: 'fire_alarm', keyAttrs: ['zone'] }] });
    const e1 = event('panel-1', T, 'fire_alarm', { zone: 'F2-Z1', floor: '2' });
    a.alerts.onBatch(alertBatch([], [e1, event('panel-1', T + 1, 'fire_alarm', { zone: 'F2-Z1' }), event('panel-1', T + 2, 'fire_alarm', { zone: 'F3-Z2' })]));
    expect(states(a)).toEqual(['fire-alarm:panel-1:firing', 'fire-alarm:panel-1:firing']);
    const [first] = changeStates(a);
    expect(a.alerts.get(first!.id)).toMatchObject({ type: 'fire_alarm', attrs: { zone: 'F2-Z1', floor: '2' }, source_event_id: e1.id, district: 'zhongyuan' });
    // The same event again (a retry that slipped past dedupe) fires nothing, even after the alert resolved.
    a.alerts.onBatch(alertBatch([], [event('panel-1', T + 10, 'fire_alarm_cleared', { zone: 'F2-Z1' })]));
    a.alerts.onBatch(alertBatch([], [e1]));
    expect(states(a)).toEqual(['fire-alarm:panel-1:firing', 'fire-alarm:panel-1:firing', 'fire-alarm:panel-1:resolved']);
  });

  it('entrapment and gas_alarm fire at once; clearTypes and autoResolveAfter resolve', async () => {
    const now = clock(T);
    const a = await start({
      now,
      rules: [
        { id: 'entrapment', kind: 'event', category: 'elevator', severity: 'critical', types: 'entrapment' },
        { id: 'gas-alarm', kind: 'event', category: 'safety', severity: 'critical', types: 'gas_alarm', clearTypes: 'gas_ok', autoResolveAfter: '1h' },
      ],
    });
    a.alerts.onBatch(alertBatch([], [event('lift-1', T, 'entrapment', { floor: '7' }, 'elevator'), event('gas-1', T, 'gas_alarm', {}, 'nbiot')]));
    expect(states(a).sort()).toEqual(['entrapment:lift-1:firing', 'gas-alarm:gas-1:firing']);
    a.alerts.onBatch(alertBatch([], [event('lift-1', T + 5 * MIN, 'entrapment_cleared', {}, 'elevator'), event('gas-1', T + 5 * MIN, 'gas_alarm_cleared', {}, 'nbiot')]));
    expect(states(a)).toContain('entrapment:lift-1:resolved');
    expect(states(a)).not.toContain('gas-alarm:gas-1:resolved');
    now.add(61 * MIN);
    a.alerts.tick();
    expect(states(a)).toContain('gas-alarm:gas-1:resolved');
  });
});

describe('flapping', () => {
  it('an alert that fires maxFirings times within the window is flapping and resolves only after quietMs of calm', async () => {
    const a = await start({
      rules: [{ id: 'x', kind: 'threshold', category: 'environment', severity: 'minor', metric: 'v', above: 10 }],
      extra: { alerts: { flapping: { maxFirings: 3, windowMs: '1h', quietMs: '10m' } } },
    });
    let t = T;
    const send = (v: number) => a.alerts.onBatch(alertBatch([reading('d', (t += MIN), { v })]));
    for (const v of [11, 9, 11, 9, 11]) send(v);
    expect(states(a)).toEqual(['x:d:firing', 'x:d:resolved', 'x:d:firing', 'x:d:resolved', 'x:d:firing']);
    expect(a.alerts.list({ limit: 1 })[0]!.flapping).toBe(true);
    for (const v of [9, 11, 9, 9, 9]) send(v); // calm keeps being interrupted, then 3 minutes of calm: not enough
    expect(states(a).length).toBe(5);
    for (let i = 0; i < 8; i++) send(9);
    expect(states(a)).toEqual(['x:d:firing', 'x:d:resolved', 'x:d:firing', 'x:d:resolved', 'x:d:firing', 'x:d:resolved']);
  });
});

describe('rules as data', () => {
  it('the default rules load and cover the four families', () => {
    const rules = loadRules([DEFAULT_RULES_DIR]);
    const ids = rules.map((r) => r.id);
    for (const id of ['pm25-above-24h-limit', 'smoke-obscuration-high', 'sprinkler-pressure-low', 'elevator-entrapment', 'gas-lel-high', 'device-offline', 'fire-alarm', 'gas-alarm']) {
      expect(ids).toContain(id);
    }
    const pm25 = rules.find((r) => r.id === 'pm25-above-24h-limit');
    expect(pm25).toMatchObject({ kind: 'threshold', above: 75, for: 3_600_000 });
  });

  it('refuses mistakes with the source and path', () => {
    const mistake = (raw: unknown) => {
      try {
        parseRules(raw, 'rules.yaml');
      } catch (err) {
        expect(err).toBeInstanceOf(CloudConfigError);
        return (err as CloudConfigError).issues.join('\n');
      }
      throw new Error('accepted');
    };
    expect(mistake({ rules: [{ id: 'a', kind: 'threshold', category: 'fire', severity: 'major', metric: 'x', above: 'high' }] })).toMatch(/rules\.yaml: rules\[0\]\.above/);
    expect(mistake({ rules: [{ id: 'a', kind: 'threshold', category: 'fire', severity: 'major', metric: 'x', above: 1, for: 'an hour' }] })).toMatch(/rules\[0\]\.for: "an hour" is not a duration/);
    expect(mistake({ rules: [{ id: 'a', kind: 'threshold', category: 'fire', severity: 'major', metric: 'x', above: 1, below: 0 }] })).toMatch(/exactly one of above, below/);
    expect(mistake({ rules: [{ id: 'a', kind: 'threshold', category: 'fire', severity: 'major', metric: 'x', above: 10, clear: { below: 12 } }] })).toMatch(/rules\[0\]\.clear\.below/);
    expect(mistake({ rules: [{ id: 'a', kind: 'event', category: 'fires', severity: 'major', types: 'x' }] })).toMatch(/rules\[0\]\.category/);
    expect(mistake({ rules: [{ id: 'a', kind: 'event', category: 'fire', severity: 'major', types: 'x', typo: 1 }] })).toMatch(/rules\[0\]/);
    expect(mistake({ rules: [{ id: 'a', kind: 'sometimes', category: 'fire', severity: 'major' }] })).toMatch(/rules\[0\]\.kind/);
    expect(mistake([{ id: 'a', kind: 'rate', category: 'fire', severity: 'major', metric: 'x', window: '5m' }])).toMatch(/\[0\].*rise, fall or both/);
  });

  it('inline rules in the config are checked with the config path', () => {
    expect(() => parseCloudConfig({ alerts: { rules: [{ id: 'a', kind: 'offline', category: 'device', severity: 'minor', after: 'soon' }] } })).toThrow(/alerts\.rules\[0\]\.after/);
  });
});
