// Scenarios against a throwaway broker: a pollution episode over simulated hours, faulty sensors
// (each fault counted in the report and found in what the broker received), and the fire and
// entrapment scenarios that need parts built elsewhere.
import { afterEach, describe, expect, it } from 'vitest';
import { decodeBinary } from '@citysense/edge/binary';
import { frameToReadings, parseFrame } from '@citysense/edge/hj212';
import { main } from '../src/cli.ts';
import { loadNbProfile } from '../src/nbiot/profiles.ts';
import { CLOCK_SKEW_MS } from '../src/scenarios/control.ts';
import { EPISODE_DURATION_MS, type ElevatorHooks, type FirePanelHooks } from '../src/scenarios/index.ts';
import { generateProfileDevices, runSim, runSucceeded, type ProfiledDevice, type SimOptions } from '../src/sim.ts';
import { generateDevices } from '../src/registry.ts';
import { startBroker, type TestBroker } from './helpers/broker.ts';

const WINTER = Date.parse('2026-01-10T00:00:00+08:00');
const HOUR = 3_600_000;

let cleanup: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanup.reverse()) await c();
  cleanup = [];
});

async function broker(): Promise<TestBroker> {
  const b = await startBroker();
  cleanup.push(() => b.close());
  return b;
}

/** PM2.5 by simulated time from a DTU station's real-time frames. */
function stationPm25(b: TestBroker, id: string): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  for (const r of b.received) {
    if (r.topic !== `devices/${id}/telemetry`) continue;
    const p = parseFrame(r.payload);
    if (!p.ok || p.frame.cn !== '2011') continue;
    out.push([p.frame.dataTimeMs!, frameToReadings(p.frame).readings[0]!.values['a34004']!]);
  }
  return out;
}

describe('scenario pollution-episode', () => {
  it('takes PM2.5 above 75 µg/m³ for more than a simulated hour, then back to the everyday values', async () => {
    const b = await broker();
    const devices: ProfiledDevice[] = [
      ...generateProfileDevices({ profiles: ['hj212-air-station-dtu'], perProfile: 1, seed: 21 }),
      ...generateDevices({ families: ['environment'], perFamily: 1, seed: 21 }),
    ];
    const station = devices[0]!.id;
    const lines: string[] = [];
    const base: SimOptions = { url: b.url, devices, seed: 21, startTs: WINTER, intervalMs: 2, simStepMs: 5 * 60_000, log: (l) => lines.push(l) };
    const stats = await runSim({ ...base, scenario: 'pollution-episode' });
    expect(runSucceeded(stats)).toBe(true);
    const episode = stationPm25(b, station);
    b.received.length = 0;
    const everydayStats = await runSim({ ...base, count: episode.length, log: () => undefined });
    const everyday = stationPm25(b, station);

    // It played to its end on its own: 8 simulated hours at 5 minutes, every step run.
    expect(episode.length).toBe(EPISODE_DURATION_MS / (5 * 60_000) + 1);
    expect(stats.scenario!.pending).toEqual([]);
    expect(stats.scenario!.executed.map((s) => s.at)).toEqual([...stats.scenario!.executed.map((s) => s.at)].sort((x, y) => x - y));
    expect(lines.some((l) => /^\[scenario pollution-episode\] \+2h00m stagnant air: PM2\.5 \+100/.test(l))).toBe(true);

    // Longest run of readings above 75 µg/m³, in simulated time.
    let longest = 0;
    let from: number | undefined;
    for (const [ts, pm] of episode) {
      if (pm > 75) {
        from ??= ts;
        longest = Math.max(longest, ts - from);
      } else from = undefined;
    }
    expect(longest).toBeGreaterThan(HOUR);
    expect(Math.max(...episode.map(([, pm]) => pm))).toBeGreaterThan(150);
    // Before the onset and after the front the air is the everyday air of the same seed, reading for reading.
    const start = episode[0]![0];
    const quiet = (ts: number) => ts - start < HOUR || ts - start >= 7 * HOUR;
    expect(episode.filter(([ts]) => quiet(ts))).toEqual(everyday.filter(([ts]) => quiet(ts)));
    const during = everyday.filter(([ts]) => !quiet(ts));
    expect(episode.filter(([ts]) => !quiet(ts)).every(([, pm], i) => pm > during[i]![1])).toBe(true);

    // The JSON environment device lived through the same episode: about 3.5 h × 12 readings × ~140 µg/m³ more.
    const env = devices[1]!.id;
    expect(stats.perDevice[env]!.sums['pm25']! - everydayStats.perDevice[env]!.sums['pm25']!).toBeGreaterThan(4000);
  });
});

describe('scenario faulty-sensors', () => {
  it('sends each kind of fault, counts them, and the far end sees exactly those', async () => {
    const b = await broker();
    const devices: ProfiledDevice[] = [
      ...generateProfileDevices({ profiles: ['hj212-air-station-dtu', 'nb-smoke-detector'], perProfile: 1, seed: 5 }),
      ...generateDevices({ families: ['environment'], perFamily: 1, seed: 5 }),
    ];
    const [dtu, nb, env] = devices.map((d) => d.id) as [string, string, string];
    const stats = await runSim({ url: b.url, devices, seed: 5, startTs: WINTER, intervalMs: 2, simStepMs: 60_000, scenario: 'faulty-sensors', nbHex: true, log: () => undefined });
    expect(runSucceeded(stats)).toBe(true);
    expect(stats.scenario!.faults).toEqual({
      'bad-crc': 2,
      stuck: 15,
      'out-of-range': 3,
      'clock-skew-future': 2,
      'clock-skew-past': 2,
      'malformed-json': 2,
      nan: 2,
    });
    expect(stats.perDevice[nb]!.faults).toEqual({ stuck: 5, 'out-of-range': 1 });

    const of = (id: string) => b.received.filter((r) => r.topic === `devices/${id}/telemetry`).map((r) => r.payload);
    // HJ 212 station over DTU.
    const frames = of(dtu).map((t) => parseFrame(t));
    expect(frames.filter((p) => !p.ok && p.code === 'HJ212_BAD_CRC')).toHaveLength(2);
    const rt = frames.flatMap((p) => (p.ok && p.frame.cn === '2011' ? [p.frame] : []));
    const now = rt[0]!.dataTimeMs!;
    expect(rt.filter((f) => f.dataTimeMs! > now + CLOCK_SKEW_MS / 2)).toHaveLength(1);
    expect(rt.filter((f) => f.dataTimeMs! < now - CLOCK_SKEW_MS / 2)).toHaveLength(1);
    expect(rt.filter((f) => f.items['a34004']!['Rtd'] === '5432.1')).toHaveLength(1);
    expect(rt.flatMap((f) => frameToReadings(f).refusals.map((r) => r.item))).toEqual(['a21004']);
    const pm = rt.map((f) => f.items['a34004']!['Rtd']);
    expect(pm.some((v, i) => i >= 4 && pm.slice(i - 4, i + 1).every((x) => x === v))).toBe(true);
    // Generic JSON device.
    const json = of(env);
    const bad = json.filter((t) => {
      try {
        JSON.parse(t);
        return false;
      } catch {
        return true;
      }
    });
    expect(bad).toHaveLength(2);
    const parsed = json.filter((t) => !bad.includes(t)).map((t) => JSON.parse(t) as { ts: number; metrics: Record<string, unknown> });
    expect(parsed.filter((p) => p.metrics['pm25'] === 'NaN')).toHaveLength(1);
    expect(parsed.filter((p) => p.metrics['pm25'] === 99_999)).toHaveLength(1);
    expect(parsed.filter((p) => p.ts > WINTER + CLOCK_SKEW_MS / 2)).toHaveLength(1);
    expect(parsed.filter((p) => p.ts < WINTER - CLOCK_SKEW_MS / 2)).toHaveLength(1);
    // NB-IoT (hex text): one frame whose battery the edge refuses, the rest clean.
    const { layout } = loadNbProfile('nb-smoke-detector');
    const refusals = of(nb).flatMap((t) => decodeBinary(t, layout).refusals.map((r) => `${r.code} ${r.field}`));
    expect(refusals).toEqual(['BINARY_OUT_OF_RANGE battery']);
  });

  it('refuses to start without devices that can show the faults', async () => {
    const b = await broker();
    await expect(runSim({ url: b.url, families: ['fire'], seed: 1, scenario: 'faulty-sensors', log: () => undefined })).rejects.toThrow(
      /scenario "faulty-sensors" needs devices that can show bad-crc: run an HJ 212 station/,
    );
  });
});

describe('scenarios that need parts built elsewhere', () => {
  it('fire and entrapment refuse clearly without their parts, in the library and on the command line', async () => {
    const b = await broker();
    const opts: SimOptions = { url: b.url, profiles: ['nb-smoke-detector'], seed: 1, log: () => undefined };
    await expect(runSim({ ...opts, scenario: 'fire' })).rejects.toThrow(/scenario "fire" needs a fire panel: /);
    await expect(runSim({ ...opts, scenario: 'entrapment' })).rejects.toThrow(/scenario "entrapment" needs an elevator server: /);
    const err: string[] = [];
    const code = await main(['--url', b.url, '--profiles', 'nb-smoke-detector', '--scenario', 'fire', '--quiet'], {
      stdout: () => undefined,
      stderr: (t) => err.push(t),
    });
    expect(code).toBe(2);
    expect(err.join('')).toMatch(/device-sim: scenario "fire" needs a fire panel: the GB 26875 fire-panel simulator is not plugged in/);
    expect(b.received).toEqual([]);
  });

  it('with hooks plugged in, fire and entrapment call them in order and the NB smoke detector sees the smoke', async () => {
    const b = await broker();
    const calls: string[] = [];
    const firePanel: FirePanelHooks = {
      smoke: (d) => void calls.push(`smoke ${d}`),
      fireAlarm: async (z) => void calls.push(`fireAlarm ${z}`),
      sprinklerPressureDrop: (p) => void calls.push(`sprinkler ${p}`),
      detectors: () => ['D-07'],
      zones: () => ['B2-07'],
    };
    const elevators: ElevatorHooks = {
      triggerFault: (car, code) => void calls.push(`fault ${car} ${code}`),
      setPassenger: (car, p) => void calls.push(`passenger ${car} ${p}`),
    };
    const devices = generateProfileDevices({ profiles: ['nb-smoke-detector'], perProfile: 1, seed: 2 });
    const base: SimOptions = { url: b.url, devices, seed: 2, startTs: WINTER, intervalMs: 2, simStepMs: 1000, nbHex: true, parts: { firePanel, elevators }, log: () => undefined };
    const fire = await runSim({ ...base, scenario: 'fire' });
    expect(calls).toEqual(['smoke D-07', 'fireAlarm B2-07', 'sprinkler 0.08']);
    expect(fire.scenario!.executed.map((s) => [s.at, s.notes, s.error])).toEqual([
      [5000, ['detector D-07'], undefined],
      [15000, ['zone B2-07'], undefined],
      [40000, [], undefined],
    ]);
    const { layout } = loadNbProfile('nb-smoke-detector');
    const alarm = b.received.filter((r) => r.topic.endsWith('/telemetry')).map((r) => decodeBinary(r.payload, layout).values['alarm']);
    // Clear until the smoke at +5 s, then in alarm.
    expect(alarm.slice(0, 5).every((a) => a === false)).toBe(true);
    expect(alarm.slice(5).every((a) => a === true)).toBe(true);

    calls.length = 0;
    const ent = await runSim({ ...base, scenario: 'entrapment' });
    expect(calls).toEqual(['passenger 1 true', 'fault 1 1']);
    expect(ent.scenario!.pending).toEqual([]);
  });
});
