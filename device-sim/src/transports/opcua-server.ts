// A simulated elevator controller: a node-opcua server exposing N cars under ns=1 as
// `ns=1;s=Car{n}.{Variable}` (see docs/protocols/opcua-elevator.md). The simulation (../elevator/car.ts)
// lives outside the OPC-UA server so that restart() replaces the server, as a rebooting controller
// would, while the cars carry on where they were.
import { X509Certificate } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import {
  DataType,
  MessageSecurityMode,
  OPCUACertificateManager,
  OPCUAServer,
  SecurityPolicy,
  StatusCodes,
  Variant,
  nodesets,
  type UAVariable,
} from 'node-opcua';
import { CAR_VARIABLES, ElevatorCar, type CarState, type CarVariable } from '../elevator/car.ts';

export type OpcuaSecurityModeName = 'None' | 'Sign' | 'SignAndEncrypt';
export type OpcuaSecurityPolicyName = 'None' | 'Basic256Sha256' | 'Aes128_Sha256_RsaOaep' | 'Aes256_Sha256_RsaPss';

export interface ElevatorServerOptions {
  /** 0 picks a free port once; restart() reuses whatever port was picked. */
  port: number;
  cars: number;
  floors: number;
  seed: string | number;
  /** Simulated time step; the cars move by tickMs every tickMs of wall time. */
  tickMs: number;
  /** Travel speed of the cars in floors per second (default 0.5). */
  floorsPerSecond?: number;
  /** Door dwell at a stop (default 3000 ms). */
  doorDwellMs?: number;
  /** Mean idle time between trips (default 4000 ms). */
  meanIdleMs?: number;
  /**
   * Real controllers scan and report their variables one by one: a changed variable is published at
   * most one per car every changeSpacingMs (default 250, longer than the edge's publishing interval,
   * so each arrives in a notification of its own), FaultCode after the others that changed with it.
   * 0 publishes everything that changed in one go.
   */
  changeSpacingMs?: number;
  /** Called on every start (also after restart()) with the server before it listens: tests bend its behaviour here. */
  configureServer?: (server: OPCUAServer) => void | Promise<void>;
  /** Extra endpoint URLs the server announces (a proxy or NAT in front of it): opc.tcp://host:port/path. */
  advertisedEndpoints?: string[];
  /** The address the server listens on and names in its endpoint (default 127.0.0.1: loopback only). */
  host?: string;
  resourcePath?: string;
  security: {
    modes: OpcuaSecurityModeName[];
    policies: OpcuaSecurityPolicyName[];
    allowAnonymous: boolean;
    /** Optional user name/password accepted besides (or instead of) anonymous. */
    users?: Array<{ username: string; password: string }>;
  };
  pki: {
    /** Server PKI folder (own/, trusted/, rejected/); created on first use. */
    dir: string;
    certificateFile?: string;
    privateKeyFile?: string;
    /** Client certificates copied into trusted/ at start: the server accepts these and no others. */
    trustedClientCertificates?: string[];
    automaticallyAcceptUnknownCertificate: boolean;
  };
}

export interface CarHandle {
  state(): Readonly<CarState>;
  triggerFault(code: number): void;
  clearFault(): void;
  setServiceMode(mode: number): void;
  setPassenger(present: boolean): void;
}

export interface ElevatorServer {
  endpoint: string;
  port: number;
  car(n: number): CarHandle;
  /** Changes not yet published (changeSpacingMs), of one car or all: 0 once the controller reports what the car does. */
  pendingChanges(car?: number): number;
  /** Monitored items on the server now, summed over all sessions and subscriptions. */
  monitoredItemCount(): number;
  /** Sessions the server holds now (including ones whose channel is gone but not yet timed out). */
  sessionCount(): number;
  /**
   * Stop the OPC-UA server and start a fresh one on the same port, with the same certificate or, when
   * given, a renewed one (kept for later restarts).
   */
  restart(renewed?: { certificateFile: string; privateKeyFile: string }): Promise<void>;
  stop(): Promise<void>;
}

const DEFAULT_APPLICATION_URI = 'urn:citysense:elevator-sim:server';

const OPCUA_TYPE: Record<CarVariable, DataType> = {
  Floor: DataType.Int16,
  Direction: DataType.Int32,
  Running: DataType.Boolean,
  DoorOpen: DataType.Boolean,
  DoorZone: DataType.Boolean,
  Load: DataType.Double,
  ServiceMode: DataType.Int32,
  FaultCode: DataType.UInt16,
  PassengerPresent: DataType.Boolean,
};

const DESCRIPTION: Record<CarVariable, string> = {
  Floor: 'Car position: landing number',
  Direction: '0 none, 1 up, 2 down',
  Running: 'Car running',
  DoorOpen: 'Door not fully closed',
  DoorZone: 'Car within the unlocking zone of a landing',
  Load: 'Car load in kg',
  ServiceMode: '0 out of service, 1 normal, 2 inspection, 3 fire return, 4 firefighter, 5 emergency power, 6 earthquake, 7 unknown',
  FaultCode: '0 none, 1 entrapment, 2 door open while moving, 3 overspeed, 4 overrun top, 5 overrun bottom, 6 power loss, 7 safety circuit open',
  PassengerPresent: 'Passenger detected in the car',
};

export function carNodeId(car: number, variable: CarVariable): string {
  return `ns=1;s=Car${car}.${variable}`;
}

/** The application URI in a certificate's subjectAltName: the server must announce the same one. */
function applicationUriOf(certFile: string): string | undefined {
  try {
    const san = new X509Certificate(readFileSync(certFile)).subjectAltName ?? '';
    return /URI:([^,\s]+)/.exec(san)?.[1];
  } catch {
    return undefined;
  }
}

async function freePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, host, () => {
      const { port } = s.address() as AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

export async function startElevatorServer(o: ElevatorServerOptions): Promise<ElevatorServer> {
  const host = o.host ?? '127.0.0.1';
  const port = o.port === 0 ? await freePort(host) : o.port;
  const resourcePath = o.resourcePath ?? '/citysense/elevators';
  const cars = Array.from(
    { length: o.cars },
    (_, i) =>
      new ElevatorCar({
        index: i + 1,
        floors: o.floors,
        seed: o.seed,
        floorsPerSecond: o.floorsPerSecond,
        doorDwellMs: o.doorDwellMs,
        meanIdleMs: o.meanIdleMs,
      }),
  );

  mkdirSync(o.pki.dir, { recursive: true });
  // The server's own certificate; restart() may renew it.
  const own: { certificateFile?: string | undefined; privateKeyFile?: string | undefined } = { certificateFile: o.pki.certificateFile, privateKeyFile: o.pki.privateKeyFile };
  const spacingMs = o.changeSpacingMs ?? 250;
  let server: OPCUAServer | undefined;
  let variables = new Map<string, UAVariable>();
  let published = new Map<string, CarState[CarVariable]>();
  // Per car: variables changed but not yet published, oldest first (a later change of the same
  // variable replaces its value in place, so at most one entry per variable).
  const pending = cars.map(() => new Map<CarVariable, CarState[CarVariable]>());
  // FaultCode last: a controller reports the fault after the motion it caused.
  const ORDER = [...CAR_VARIABLES.filter((v) => v !== 'FaultCode'), 'FaultCode'] as const;

  const setVariable = (car: number, v: CarVariable, value: CarState[CarVariable], now = new Date()) => {
    const key = `${car}.${v}`;
    published.set(key, value);
    variables.get(key)?.setValueFromSource(new Variant({ dataType: OPCUA_TYPE[v], value }), StatusCodes.Good, now);
  };

  const publish = () => {
    if (!server) return;
    cars.forEach((car, i) => {
      const s = car.state();
      const queue = pending[i]!;
      for (const v of ORDER) {
        const key = `${i + 1}.${v}`;
        if (published.get(key) === s[v] && !queue.has(v)) continue;
        if (spacingMs === 0) setVariable(i + 1, v, s[v]);
        else if (published.get(key) === s[v]) queue.delete(v); // changed back before it was sent
        else queue.set(v, s[v]);
      }
    });
  };

  /** One variable per car goes out. */
  const drain = () => {
    if (!server) return;
    pending.forEach((queue, i) => {
      const next = queue.entries().next();
      if (next.done) return;
      const [v, value] = next.value;
      queue.delete(v);
      setVariable(i + 1, v, value);
    });
  };

  const startServer = async () => {
    const certificateManager = new OPCUACertificateManager({
      rootFolder: o.pki.dir,
      automaticallyAcceptUnknownCertificate: o.pki.automaticallyAcceptUnknownCertificate,
      disableFileWatchers: true,
    });
    await certificateManager.initialize();
    // trustCertificate (not a file copy) so that the manager's index, scanned at initialize, knows it.
    for (const file of o.pki.trustedClientCertificates ?? []) {
      await certificateManager.trustCertificate(new X509Certificate(readFileSync(file)).raw);
    }
    // Without a given certificate, node-opcua makes one in pki/own on first start and reuses it.
    const certificateFile = own.certificateFile ?? join(o.pki.dir, 'own', 'certs', 'certificate.pem');
    const privateKeyFile = own.privateKeyFile ?? certificateManager.privateKey;
    const applicationUri = (existsSync(certificateFile) && applicationUriOf(certificateFile)) || DEFAULT_APPLICATION_URI;
    const users = o.security.users ?? [];
    const s = new OPCUAServer({
      port,
      // host binds the socket (without it node-opcua listens on every interface); hostname names it.
      host,
      hostname: host,
      resourcePath,
      nodeset_filename: [nodesets.standard],
      serverCertificateManager: certificateManager,
      certificateFile,
      privateKeyFile,
      ...(o.advertisedEndpoints ? { advertisedEndpoints: o.advertisedEndpoints } : {}),
      securityModes: o.security.modes.map((m) => MessageSecurityMode[m]),
      securityPolicies: o.security.policies.map((p) => SecurityPolicy[p]),
      allowAnonymous: o.security.allowAnonymous,
      userManager: {
        isValidUser: (username: string, password: string) => users.some((u) => u.username === username && u.password === password),
      },
      serverInfo: { applicationUri, productUri: 'citysense-elevator-sim', applicationName: { text: 'citysense simulated elevator controller' } },
      buildInfo: { productName: 'citysense elevator simulator', manufacturerName: 'citysense' },
    });
    await s.initialize();
    const addressSpace = s.engine.addressSpace!;
    for (const q of pending) q.clear();
    // ns=1 is always the server's own namespace (its application URI): the cars live there, as
    // controllers commonly put their variables, so that `ns=1;s=Car1.Floor` is stable.
    const ns = addressSpace.getOwnNamespace();
    const folder = ns.addFolder(addressSpace.rootFolder.objects, { browseName: 'Elevators', nodeId: 's=Elevators' });
    variables = new Map();
    published = new Map();
    const now = new Date();
    cars.forEach((car, i) => {
      const n = i + 1;
      const obj = ns.addObject({ organizedBy: folder, browseName: `Car${n}`, nodeId: `s=Car${n}` });
      const s0 = car.state();
      for (const v of CAR_VARIABLES) {
        const uaVar = ns.addVariable({
          componentOf: obj,
          browseName: v,
          nodeId: `s=Car${n}.${v}`,
          dataType: DataType[OPCUA_TYPE[v]],
          description: DESCRIPTION[v],
          minimumSamplingInterval: 50,
        });
        uaVar.setValueFromSource(new Variant({ dataType: OPCUA_TYPE[v], value: s0[v] }), StatusCodes.Good, now);
        variables.set(`${n}.${v}`, uaVar);
        published.set(`${n}.${v}`, s0[v]);
      }
    });
    await o.configureServer?.(s);
    await s.start();
    server = s;
  };

  const stopServer = async () => {
    const s = server;
    server = undefined;
    if (!s) return;
    // No shutdown grace period: a rebooting controller does not warn its clients either.
    await s.shutdown(0);
  };

  await startServer();
  const timer = setInterval(() => {
    for (const car of cars) car.tick(o.tickMs);
    publish();
  }, o.tickMs);
  timer.unref();
  const drainer = spacingMs > 0 ? setInterval(drain, spacingMs) : undefined;
  drainer?.unref();

  const carAt = (n: number): ElevatorCar => {
    const car = cars[n - 1];
    if (!car) throw new RangeError(`no car ${n}: the simulator has cars 1..${cars.length}`);
    return car;
  };
  const hook = (n: number, f: (c: ElevatorCar) => void) => {
    f(carAt(n));
    publish();
  };

  return {
    endpoint: `opc.tcp://${host}:${port}${resourcePath}`,
    port,
    car: (n) => {
      const c = carAt(n);
      return {
        state: () => c.state(),
        triggerFault: (code) => hook(n, (x) => x.triggerFault(code)),
        clearFault: () => hook(n, (x) => x.clearFault()),
        setServiceMode: (mode) => hook(n, (x) => x.setServiceMode(mode)),
        setPassenger: (present) => hook(n, (x) => x.setPassenger(present)),
      };
    },
    pendingChanges: (car) => (car === undefined ? pending.reduce((n, q) => n + q.size, 0) : (pending[car - 1]?.size ?? 0)),
    monitoredItemCount: () => {
      if (!server) return 0;
      return server.engine.getSessions().reduce((sum, s) => sum + s.currentMonitoredItemCount, 0);
    },
    sessionCount: () => (server ? server.engine.getSessions().length : 0),
    async restart(renewed) {
      await stopServer();
      if (renewed) {
        own.certificateFile = renewed.certificateFile;
        own.privateKeyFile = renewed.privateKeyFile;
      }
      await startServer();
    },
    async stop() {
      clearInterval(timer);
      if (drainer) clearInterval(drainer);
      await stopServer();
    },
  };
}
