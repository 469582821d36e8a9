// device-sim command line. Usage and options: device-sim/README.md, or `--help`.
import { realpathSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { familyNames, getFamily } from './families/index.ts';
import { readFile } from 'node:fs/promises';
import { generateDevices, parseDeviceSpec } from './registry.ts';
import { scenarioNames } from './scenarios/index.ts';
import {
  DEFAULT_URL,
  generateProfileDevices,
  parseProfiledRegistry,
  profiledRegistryYaml,
  runSim,
  runSucceeded,
  SIM_PROFILE_NAMES,
  type ProfiledDevice,
  type SimOptions,
  type SimStats,
} from './sim.ts';
import { DEFAULT_HJ212_HOST, DEFAULT_HJ212_PORT } from './transports/hj212-tcp.ts';
import { startElevatorServer } from './transports/opcua-server.ts';
import { setWarningLogger } from 'node-opcua';
import { startFirePanel, startFirePanelTcp, type FirePanel } from './fire-panel/index.ts';
import { startCtwingSmokeDetector, startOnenetStudioGasDetector, type PushDevice } from './nbiot/push-devices.ts';
import type { ScenarioParts } from './scenarios/types.ts';

export const EXIT_OK = 0;
/** The run happened but something was refused, unreachable or unacknowledged. */
export const EXIT_RUN_FAILED = 1;
export const EXIT_USAGE = 2;

export interface CliIo {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  signal?: AbortSignal;
}

const defaultIo: CliIo = {
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
};

function positiveNumber(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError('expected a positive number');
  return n;
}

function mqttVersion(value: string): 4 | 5 {
  if (value === '5') return 5;
  if (value === '3.1.1' || value === '4') return 4;
  throw new InvalidArgumentError("expected '3.1.1' or '5'");
}

function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError('expected a positive whole number');
  return n;
}

function nonNegativeInt(value: string): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 0) throw new InvalidArgumentError('expected a whole number ≥ 0');
  return n;
}

function timestamp(value: string): number {
  const n = /^\d+$/.test(value) ? Number(value) : Date.parse(value);
  if (!Number.isFinite(n)) throw new InvalidArgumentError('expected milliseconds since the epoch or an ISO 8601 time');
  return n;
}

function familyList(value: string): string[] {
  const names = value.split(',').map((s) => s.trim()).filter((s) => s !== '');
  if (names.length === 0) throw new InvalidArgumentError('expected at least one family');
  for (const name of names) {
    try {
      getFamily(name);
    } catch (err) {
      throw new InvalidArgumentError((err as Error).message);
    }
  }
  return names;
}

function profileList(value: string): string[] {
  const names = value.split(',').map((s) => s.trim()).filter((s) => s !== '');
  if (names.length === 0) throw new InvalidArgumentError('expected at least one profile');
  for (const name of names) {
    if (!SIM_PROFILE_NAMES.includes(name)) throw new InvalidArgumentError(`unknown profile "${name}" (known: ${SIM_PROFILE_NAMES.join(', ')})`);
  }
  return names;
}

function hostPort(value: string): { host: string; port: number } {
  const m = /^(?:(.*):)?(\d{1,5})$/.exec(value.trim());
  const port = m ? Number(m[2]) : NaN;
  if (!m || !(port > 0 && port < 65536)) throw new InvalidArgumentError('expected host:port (or a port)');
  return { host: m[1] || DEFAULT_HJ212_HOST, port };
}

function deviceSpec(value: string, previous: ProfiledDevice[] = []): ProfiledDevice[] {
  try {
    return [...previous, parseDeviceSpec(value)];
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
}

interface CliOptions {
  url: string;
  families?: string[];
  profiles?: string[];
  devices?: number;
  intervalMs?: number;
  rate?: number;
  duration?: number;
  count?: number;
  forever?: boolean;
  seed?: number;
  startTs?: number;
  simStepMs?: number;
  qos: string;
  idPrefix: string;
  registry?: string;
  writeRegistry?: string;
  device?: ProfiledDevice[];
  events?: boolean;
  hj212: { host: string; port: number };
  hj212TimeoutMs: number;
  hj212Retries: number;
  nbHex?: boolean;
  nbHeartbeatMs?: number;
  scenario?: string;
  firePanel?: string;
  firePanelTcp?: string;
  fireHeartbeatMs: number;
  fireReportMs: number;
  elevatorPort?: number;
  elevatorHost: string;
  ctwing?: string[];
  onenetStudio?: string[];
  onenetToken?: string;
  pushIntervalMs: number;
  elevatorCars: number;
  elevatorSecurity: string;
  elevatorPki: string;
  elevatorCert?: string;
  elevatorKey?: string;
  elevatorTrust: string[];
  jsonSummary?: boolean;
  quiet?: boolean;
  progressMs: number;
  connectConcurrency: number;
  connectTimeoutMs: number;
  maxInflight: number;
  drainTimeoutMs: number;
  mqttVersion: 4 | 5;
}

function buildProgram(io: CliIo): Command {
  return new Command('device-sim')
    .description('Simulated citysense sensors publishing the MQTT generic JSON profile.')
    .option('--url <url>', 'broker (the edge) to connect to', DEFAULT_URL)
    .option('--families <list>', `comma-separated families (${familyNames.join(', ')})`, familyList)
    .option('--profiles <list>', `comma-separated device models (${SIM_PROFILE_NAMES.join(', ')})`, profileList)
    .option('--devices <n>', 'devices per family (default 1)', positiveInt)
    .option('--interval-ms <ms>', 'period of each device (default 1000)', positiveNumber)
    .option('--rate <msgs/s>', 'total telemetry messages per second over all devices', positiveNumber)
    .option('--duration <s>', 'stop after this many seconds', positiveNumber)
    .option('--count <n>', 'stop each device after n telemetry messages (default 10 when no other stop is given)', positiveInt)
    .option('--forever', 'run until interrupted (Ctrl-C prints the summary)')
    .option('--seed <n>', 'seed for every generated value (default: random, printed in the summary)', nonNegativeInt)
    .option('--start-ts <time>', 'timestamp of the first reading, ms or ISO 8601 (default: now)', timestamp)
    .option('--sim-step-ms <ms>', 'simulated time between readings (default: the interval)', positiveInt)
    .addOption(new Option('--qos <qos>', 'MQTT QoS for publishes').choices(['0', '1']).default('1'))
    .option('--id-prefix <prefix>', 'prefix of generated device ids', 'sim-')
    .option('--registry <file>', 'take devices (ids, secrets, families) from an edge registry YAML/JSON')
    .option('--write-registry <file>', "write the registry for this run's devices ('-' for stdout) and exit")
    .option('--device <id:secret:family>', 'an explicit device (repeatable)', deviceSpec)
    .option('--mqtt-version <version>', "MQTT protocol of the devices: '3.1.1' or '5'", mqttVersion, 4 as 4 | 5)
    .option('--events', 'also publish events (fire alarms, faults, low battery) to devices/{id}/events')
    .option('--hj212 <host:port>', "the edge's HJ 212 TCP listener for hj212-air-station devices", hostPort, {
      host: DEFAULT_HJ212_HOST,
      port: DEFAULT_HJ212_PORT,
    })
    .option('--hj212-timeout-ms <ms>', 'HJ 212: wait this long for the 9014 answer before sending again', positiveInt, 10_000)
    .option('--hj212-retries <n>', 'HJ 212: times a frame is sent again before it counts as failed', nonNegativeInt, 3)
    .option('--nb-hex', 'NB-IoT devices send their frames as hex text instead of raw bytes')
    .option('--nb-heartbeat-ms <ms>', 'NB-IoT: simulated time between heartbeats (default: every step); alarms go at once', positiveInt)
    .addOption(new Option('--scenario <name>', 'play a scenario against the devices').choices([...scenarioNames]))
    .option('--fire-panel <id:secret>', 'also run a building fire-alarm panel speaking GB/T 26875.3 over MQTT (the fire scenario drives it)')
    .option(
      '--fire-panel-tcp <id:address@host:port>',
      "also run a fire-alarm transmission device speaking GB/T 26875.3 over TCP to the edge's listener (address: its 6-byte source address, 12 hex digits); the fire scenario drives it too",
    )
    .option('--ctwing <id:imei:productId@url>', "also run an NB-IoT smoke detector reporting through CTWing AEP: the platform's pushes to the edge's receiver URL (repeatable; the fire scenario drives it)", collect, [])
    .option('--onenet-studio <id:productId@url>', 'also run a gas detector on OneNET Studio (deviceName = id), pushed signed to the URL (repeatable)', collect, [])
    .option('--onenet-token <token>', 'OneNET Studio: the push token the signatures use')
    .option('--push-interval-ms <ms>', 'platform-pushed devices: time between heartbeat reports', positiveInt, 60_000)
    .option('--fire-heartbeat-ms <ms>', 'fire transmission device over TCP: heartbeat period', positiveInt, 25_000)
    .option('--fire-report-ms <ms>', 'fire panel: period of its analog reports (sprinkler pressure, tank level)', positiveInt, 10_000)
    .option('--elevator-port <port>', 'also run a simulated elevator controller: an OPC-UA server on this port (the entrapment scenario drives it)', nonNegativeInt)
    .option('--elevator-host <address>', 'elevator controller: the address it listens on (0.0.0.0: every interface)', '127.0.0.1')
    .option('--elevator-cars <n>', 'elevator controller: number of cars', positiveInt, 4)
    .option('--elevator-security <mode>', "elevator controller: 'sign-and-encrypt' (Basic256Sha256) or 'none'", 'sign-and-encrypt')
    .option('--elevator-pki <dir>', 'elevator controller: its PKI folder (own certificate, trusted/)', '.data/elevator-sim-pki')
    .option('--elevator-cert <file>', 'elevator controller: use this certificate (PEM) instead of generating one')
    .option('--elevator-key <file>', 'elevator controller: the private key of --elevator-cert')
    .option('--elevator-trust <file>', 'elevator controller: trust this client certificate (repeatable); no other client gets in', collect, [])
    .option('--json-summary', 'print the final statistics as JSON on stdout')
    .option('--quiet', 'no progress line and no summary line on stderr (errors are still printed)')
    .option('--progress-ms <ms>', 'period of the progress line', positiveInt, 1000)
    .option('--connect-concurrency <n>', 'connection attempts in flight at once', positiveInt, 50)
    .option('--connect-timeout-ms <ms>', 'give up on a device that has no CONNACK after this long', positiveInt, 10_000)
    .option('--max-inflight <n>', 'unacknowledged messages per device before it waits', positiveInt, 100)
    .option('--drain-timeout-ms <ms>', 'wait this long at the end for outstanding acknowledgements', positiveInt, 10_000)
    .configureOutput({ writeOut: io.stdout, writeErr: io.stderr })
    .exitOverride();
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

/** The fire scenario drives every simulated panel: the MQTT one and the TCP one see the same fire. */
function bothPanels(a: FirePanel, b: FirePanel): NonNullable<ScenarioParts['firePanel']> {
  return {
    smoke: async (d) => void (await Promise.all([a.smoke(d), b.smoke(d)])),
    fireAlarm: async (z) => void (await Promise.all([a.fireAlarm(z), b.fireAlarm(z)])),
    sprinklerPressureDrop: async (p) => void (await Promise.all([a.sprinklerPressureDrop(p), b.sprinklerPressureDrop(p)])),
    detectors: () => a.detectors().filter((d) => b.detectors().includes(d)),
    zones: () => a.zones().filter((z) => b.zones().includes(z)),
  };
}

interface RunningParts {
  parts: ScenarioParts;
  stop(): Promise<void>;
}

/** Starts the simulated fire panel and elevator controller the options ask for. */
async function startParts(opts: CliOptions, seed: number, io: CliIo): Promise<RunningParts> {
  const parts: ScenarioParts = {};
  const stops: Array<() => Promise<void>> = [];
  if (opts.firePanel) {
    const i = opts.firePanel.indexOf(':');
    if (i <= 0) throw new Error('--fire-panel takes id:secret');
    const panel = await startFirePanel({ url: opts.url, id: opts.firePanel.slice(0, i), secret: opts.firePanel.slice(i + 1), seed, reportIntervalMs: opts.fireReportMs });
    parts.firePanel = panel;
    stops.push(() => panel.stop());
    if (!opts.quiet) io.stderr(`[device-sim] fire panel ${panel.id} publishing GB/T 26875.3 frames to ${opts.url}\n`);
  }
  if (opts.firePanelTcp) {
    const m = /^([^:@]+):([0-9a-fA-F]{12})@(.+):(\d+)$/.exec(opts.firePanelTcp);
    if (!m) throw new Error('--fire-panel-tcp takes id:address@host:port (address: 12 hex digits)');
    const panel = await startFirePanelTcp({ id: m[1]!, address: m[2]!, host: m[3]!, port: Number(m[4]), seed, reportIntervalMs: opts.fireReportMs, heartbeatMs: opts.fireHeartbeatMs });
    parts.firePanel = parts.firePanel ? bothPanels(parts.firePanel as FirePanel, panel) : panel;
    stops.push(() => panel.stop());
    if (!opts.quiet) io.stderr(`[device-sim] fire transmission device ${panel.id} (address ${m[2]}) sending GB/T 26875.3 frames to tcp://${m[3]}:${m[4]}\n`);
  }
  const detectors: PushDevice[] = [];
  for (const spec of opts.ctwing ?? []) {
    const at = spec.indexOf('@');
    const [id, imei, productId] = spec.slice(0, at).split(':');
    if (at <= 0 || !id || !imei || !productId) throw new Error('--ctwing takes id:imei:productId@url');
    const d = startCtwingSmokeDetector({ id, url: spec.slice(at + 1), seed, intervalMs: opts.pushIntervalMs, identity: { deviceId: id, imei, productId }, onError: (e) => io.stderr(`[device-sim] ${id}: ${e.message}\n`) });
    detectors.push(d);
    stops.push(async () => d.stop());
    if (!opts.quiet) io.stderr(`[device-sim] NB-IoT smoke detector ${id} pushed by CTWing to ${spec.slice(at + 1).replace(/\/[^/]*$/, '/…')}\n`);
  }
  if (detectors.length) parts.pushSmokeDetectors = { smoke: async (level) => void (await Promise.all(detectors.map((d) => d.condition(level)))) };
  for (const spec of opts.onenetStudio ?? []) {
    const at = spec.indexOf('@');
    const [id, productId] = spec.slice(0, at).split(':');
    if (at <= 0 || !id || !productId || !opts.onenetToken) throw new Error('--onenet-studio takes id:productId@url, with --onenet-token');
    const d = startOnenetStudioGasDetector({ id, url: spec.slice(at + 1), seed, intervalMs: opts.pushIntervalMs, token: opts.onenetToken, device: { productId, deviceName: id }, onError: (e) => io.stderr(`[device-sim] ${id}: ${e.message}\n`) });
    stops.push(async () => d.stop());
    void d.report().catch(() => undefined);
    if (!opts.quiet) io.stderr(`[device-sim] gas detector ${id} pushed by OneNET Studio to ${spec.slice(at + 1).replace(/\/[^/]*$/, '/…')}\n`);
  }
  if (opts.elevatorPort !== undefined) {
    // node-opcua's own console diagnostics (certificate SAN notes, ...) would drown the progress line.
    setWarningLogger(() => undefined);
    const secure = opts.elevatorSecurity !== 'none';
    const server = await startElevatorServer({
      port: opts.elevatorPort,
      host: opts.elevatorHost,
      cars: opts.elevatorCars,
      floors: 24,
      seed,
      tickMs: 100,
      security: secure ? { modes: ['SignAndEncrypt'], policies: ['Basic256Sha256'], allowAnonymous: true } : { modes: ['None'], policies: ['None'], allowAnonymous: true },
      pki: {
        dir: opts.elevatorPki,
        ...(opts.elevatorCert ? { certificateFile: opts.elevatorCert } : {}),
        ...(opts.elevatorKey ? { privateKeyFile: opts.elevatorKey } : {}),
        trustedClientCertificates: opts.elevatorTrust,
        automaticallyAcceptUnknownCertificate: false,
      },
    });
    parts.elevators = {
      triggerFault: (car, code) => server.car(car).triggerFault(code),
      setPassenger: (car, present) => server.car(car).setPassenger(present),
      cars: () => Array.from({ length: opts.elevatorCars }, (_, k) => k + 1),
    };
    stops.push(() => server.stop());
    if (!opts.quiet) io.stderr(`[device-sim] elevator controller with ${opts.elevatorCars} cars on ${server.endpoint} (${secure ? 'SignAndEncrypt, Basic256Sha256' : 'no security'})\n`);
  }
  return { parts, stop: async () => void (await Promise.all(stops.map((s) => s()))) };
}

async function chooseDevices(opts: CliOptions, seed: number): Promise<{ devices: ProfiledDevice[]; notices: string[] }> {
  const notices: string[] = [];
  const explicit = opts.device ?? [];
  let devices: ProfiledDevice[];
  if (opts.registry) {
    const loaded = parseProfiledRegistry(await readFile(opts.registry, 'utf8'), opts.registry);
    for (const s of loaded.skipped) notices.push(`registry: skipping ${s.id}: ${s.reason}`);
    // --families and --profiles select from the file: a device is kept when either names it.
    const selecting = opts.families !== undefined || opts.profiles !== undefined;
    devices = loaded.devices.filter(
      (d) =>
        !selecting ||
        (d.profile !== undefined && d.profile !== 'generic-json'
          ? (opts.profiles?.includes(d.profile) ?? false) || (opts.profiles === undefined && (opts.families?.includes(d.family) ?? false))
          : (opts.families?.includes(d.family) ?? false)),
    );
    if (opts.devices !== undefined) {
      const perGroup = new Map<string, number>();
      devices = devices.filter((d) => {
        const group = d.profile && d.profile !== 'generic-json' ? `profile:${d.profile}` : d.family;
        const n = (perGroup.get(group) ?? 0) + 1;
        perGroup.set(group, n);
        return n <= opts.devices!;
      });
    }
  } else if (explicit.length > 0) {
    devices = [];
  } else {
    // --profiles alone runs only those models; --families (or neither) adds the generic JSON families.
    const families = opts.families ?? (opts.profiles ? [] : familyNames);
    devices = [
      ...generateDevices({ families, perFamily: opts.devices ?? 1, seed, idPrefix: opts.idPrefix }),
      ...generateProfileDevices({ profiles: opts.profiles ?? [], perProfile: opts.devices ?? 1, seed, idPrefix: opts.idPrefix }),
    ];
  }
  return { devices: [...devices, ...explicit], notices };
}

function summaryLine(stats: SimStats, deviceCount: number): string {
  return (
    `[device-sim] done in ${(stats.elapsedMs / 1000).toFixed(1)}s: published=${stats.published} acked=${stats.acked} ` +
    `failed=${stats.failed} connected=${stats.connected}/${deviceCount} refused=${stats.refused} ` +
    `unreachable=${stats.unreachable} events=${stats.events.acked}/${stats.events.published} seed=${stats.seed} ` +
    `start-ts=${stats.startTs}`
  );
}

/** HJ 212 link counts and the scenario's outcome, when there are any. */
function detailLines(stats: SimStats): string[] {
  const lines: string[] = [];
  const hj = { sent: 0, answered: 0, retried: 0, failed: 0, refused: 0 };
  let stations = 0;
  for (const d of Object.values(stats.perDevice)) {
    if (!d.hj212) continue;
    stations += 1;
    for (const k of Object.keys(hj) as Array<keyof typeof hj>) hj[k] += d.hj212[k];
  }
  if (stations > 0) {
    lines.push(
      `[device-sim] hj212 stations=${stations}: sent=${hj.sent} answered=${hj.answered} retried=${hj.retried} failed=${hj.failed} refused=${hj.refused}`,
    );
  }
  if (stats.scenario) {
    const faults = Object.entries(stats.scenario.faults).filter(([, n]) => n > 0).map(([k, n]) => `${k}=${n}`).join(' ');
    lines.push(
      `[device-sim] scenario ${stats.scenario.name}: ${stats.scenario.executed.length} step(s) run, ${stats.scenario.pending.length} not reached` +
        (faults ? `; faults sent: ${faults}` : ''),
    );
  }
  return lines;
}

/** Runs the CLI and returns its exit code; never calls process.exit itself. */
export async function main(argv: readonly string[], io: CliIo = defaultIo): Promise<number> {
  const program = buildProgram(io);
  let opts: CliOptions;
  try {
    program.parse([...argv], { from: 'user' });
    opts = program.opts<CliOptions>();
  } catch (err) {
    if (err instanceof CommanderError) {
      return err.code === 'commander.helpDisplayed' || err.code === 'commander.version' ? EXIT_OK : EXIT_USAGE;
    }
    throw err;
  }
  const usage = (message: string): number => {
    io.stderr(`device-sim: ${message}\n`);
    return EXIT_USAGE;
  };
  if (opts.intervalMs !== undefined && opts.rate !== undefined) return usage('give --interval-ms or --rate, not both');
  if (opts.forever && (opts.count !== undefined || opts.duration !== undefined)) {
    return usage('--forever cannot be combined with --count or --duration');
  }

  const seed = opts.seed ?? Math.floor(Math.random() * 2 ** 31);
  let devices: ProfiledDevice[];
  try {
    const chosen = await chooseDevices(opts, seed);
    devices = chosen.devices;
    if (!opts.quiet) for (const notice of chosen.notices) io.stderr(`[device-sim] ${notice}\n`);
  } catch (err) {
    return usage((err as Error).message);
  }
  if (devices.length === 0 && !opts.firePanel && !opts.firePanelTcp && opts.elevatorPort === undefined && !opts.ctwing?.length && !opts.onenetStudio?.length) return usage('no devices to simulate');

  if (opts.writeRegistry) {
    const text = profiledRegistryYaml(devices, seed);
    if (opts.writeRegistry === '-') io.stdout(text);
    else await writeFile(opts.writeRegistry, text, 'utf8');
    if (!opts.quiet && opts.writeRegistry !== '-') {
      io.stderr(`[device-sim] wrote ${devices.length} device(s) to ${opts.writeRegistry}\n`);
    }
    return EXIT_OK;
  }

  const simOptions: SimOptions = {
    url: opts.url,
    devices,
    seed,
    qos: opts.qos === '0' ? 0 : 1,
    mqttVersion: opts.mqttVersion,
    events: opts.events === true,
    forever: opts.forever === true,
    connectConcurrency: opts.connectConcurrency,
    connectTimeoutMs: opts.connectTimeoutMs,
    maxInflight: opts.maxInflight,
    drainTimeoutMs: opts.drainTimeoutMs,
    progress: opts.quiet ? false : { write: (line) => io.stderr(`${line}\n`), intervalMs: opts.progressMs },
    log: (line) => io.stderr(`${line}\n`),
  };
  if (opts.intervalMs !== undefined) simOptions.intervalMs = opts.intervalMs;
  if (opts.rate !== undefined) simOptions.rate = opts.rate;
  if (opts.count !== undefined) simOptions.count = opts.count;
  if (opts.duration !== undefined) simOptions.durationMs = opts.duration * 1000;
  if (opts.startTs !== undefined) simOptions.startTs = opts.startTs;
  if (opts.simStepMs !== undefined) simOptions.simStepMs = opts.simStepMs;
  simOptions.hj212 = opts.hj212;
  simOptions.hj212AnswerTimeoutMs = opts.hj212TimeoutMs;
  simOptions.hj212Retries = opts.hj212Retries;
  if (opts.nbHex) simOptions.nbHex = true;
  if (opts.nbHeartbeatMs !== undefined) simOptions.nbHeartbeatMs = opts.nbHeartbeatMs;
  if (opts.scenario !== undefined) simOptions.scenario = opts.scenario;
  if (io.signal) simOptions.signal = io.signal;

  let running: RunningParts;
  try {
    running = await startParts(opts, seed, io);
  } catch (err) {
    return usage((err as Error).message);
  }
  if (running.parts.firePanel || running.parts.elevators || running.parts.pushSmokeDetectors) simOptions.parts = running.parts;
  let stats: SimStats;
  try {
    stats = await runSim(simOptions);
  } catch (err) {
    await running.stop();
    return usage((err as Error).message);
  }
  await running.stop();
  if (!opts.quiet) {
    io.stderr(`${summaryLine(stats, devices.length)}\n`);
    for (const line of detailLines(stats)) io.stderr(`${line}\n`);
  }
  if (opts.jsonSummary) io.stdout(`${JSON.stringify(stats)}\n`);
  return runSucceeded(stats) ? EXIT_OK : EXIT_RUN_FAILED;
}

function isEntryPoint(): boolean {
  const script = process.argv[1];
  if (!script) return false;
  try {
    return realpathSync(script) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isEntryPoint()) {
  const controller = new AbortController();
  let interrupts = 0;
  const onSignal = (): void => {
    interrupts += 1;
    // First signal: stop publishing, drain and print the summary. Second: give up at once.
    if (interrupts === 1) controller.abort();
    else process.exit(130);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  main(process.argv.slice(2), { ...defaultIo, signal: controller.signal }).then(
    (code) => {
      process.exitCode = code;
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    },
    (err: unknown) => {
      process.stderr.write(`device-sim: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
      process.exitCode = EXIT_USAGE;
    },
  );
}
