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
  /**
   * A connection that is not healthy again this long after it broke (or after it fell silent) is thrown
   * away and established from scratch: new channel, session, subscription (docs/protocols/opcua-elevator.md).
   */
  recoveryTimeoutMs: number;
  /** Nothing from the server (no data, no keep-alive) for this long: health is not ok and recovery starts. */
  maxSilenceMs: number;
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

export type OpcuaValue = number | boolean | string;

export interface OpcuaSample {
  ts: number;
  /** The values that changed. */
  values: Record<string, OpcuaValue>;
  /** 'U' when the values are Uncertain (OPC-UA status); absent when Good. */
  quality?: string;
  /**
   * The device's other bound variables as last delivered (not changed by this sample): for event
   * attributes and rules, never stored again as readings.
   */
  context?: Record<string, OpcuaValue>;
}

/** Resolves once the sample is safe in the pipeline; a rejection is logged and counted. */
export type OpcuaValuesHandler = (deviceId: string, sample: OpcuaSample) => Promise<void>;

export type OpcuaServerState = 'connecting' | 'connected' | 'reconnecting' | 'down';

export interface OpcuaServerStatus {
  server: string;
  state: OpcuaServerState;
  /** false: see `problem`; the edge's health is then `degraded`. */
  healthy: boolean;
  /** needs_operator (state down: lastError says what), silent (nothing for maxSilenceMs), all_items_refused. */
  problem?: 'needs_operator' | 'silent' | 'all_items_refused';
  connected: boolean;
  /** Monitored items on the server, as the server itself counted them when it could be asked. */
  monitoredItems: number;
  /** Monitored items the edge asked for (one per bound variable). */
  boundItems: number;
  /** Items the server refused (unknown NodeId, ...). */
  itemsRefused: number;
  /** Seconds since the server last sent anything (data or keep-alive); null before the first. */
  secondsSinceNotification: number | null;
  /** Seconds since the last data change notification; null before the first. */
  secondsSinceData: number | null;
  reconnects: number;
  resubscriptions: number;
  /** Connections thrown away and established from scratch (recoveryTimeoutMs, failed repair). */
  recoveries: number;
  /** How long the last recovery (connection loss → healthy again) took, in ms. */
  lastRecoveryMs?: number;
  lastError?: string;
}

export interface OpcuaInput {
  status(): OpcuaServerStatus[];
  close(): Promise<void>;
}

export type OpcuaWarn = (key: string, fields: object, msg: string) => void;
