// Configuration of the OPC-UA input. The agent's config schema validates the files; these are the
// shapes the input receives.

export interface OpcuaServerConfig {
  /** Name used in metrics and logs. */
  id: string;
  /** opc.tcp://host:port/path */
  endpoint: string;
  securityMode: 'None' | 'Sign' | 'SignAndEncrypt';
  securityPolicy: 'None' | 'Basic256Sha256' | 'Aes128_Sha256_RsaOaep' | 'Aes256_Sha256_RsaPss';
  /** Optional user identity; the password is never logged. */
  username?: string;
  password?: string;
  reconnect: { initialDelayMs: number; maxDelayMs: number };
  requestTimeoutMs: number;
  sessionTimeoutMs: number;
}

export interface OpcuaPkiConfig {
  /** Client PKI folder (own certificate + trusted/ + rejected/); created on first use. */
  dir: string;
  /** Use an existing client certificate and key instead of generating them. */
  certificateFile?: string;
  privateKeyFile?: string;
  /** PEM or DER files added to trusted/ at start: the servers the edge trusts, explicitly. */
  trustedServerCertificates?: string[];
  /** Default false. Trusts any server certificate: only for a lab. */
  automaticallyAcceptUnknownCertificate: boolean;
}

export interface OpcuaDeviceBinding {
  deviceId: string;
  /** OpcuaServerConfig.id */
  server: string;
  /** metric name → NodeId string, e.g. { floor: "ns=1;s=Car1.Floor" } */
  nodes: Record<string, string>;
  samplingIntervalMs: number;
  publishingIntervalMs: number;
  /** Values the server may queue per node between two publishes (default 10). */
  queueSize?: number;
}

export interface OpcuaSample {
  ts: number;
  values: Record<string, number | boolean | string>;
  /** 'U' when the values are Uncertain (OPC-UA status); absent when Good. */
  quality?: string;
}

/** Resolves once the sample is safe in the pipeline; a rejection is logged and counted. */
export type OpcuaValuesHandler = (deviceId: string, sample: OpcuaSample) => Promise<void>;

export type OpcuaServerState = 'connecting' | 'connected' | 'reconnecting' | 'down';

export interface OpcuaServerStatus {
  server: string;
  state: OpcuaServerState;
  /** Monitored items on the server, as the server itself counted them when it could be asked. */
  monitoredItems: number;
  reconnects: number;
  lastError?: string;
}

export interface OpcuaInput {
  status(): OpcuaServerStatus[];
  close(): Promise<void>;
}

export type OpcuaWarn = (key: string, fields: object, msg: string) => void;
