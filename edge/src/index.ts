export { startEdge, type Edge, type StartEdgeOptions } from './agent/agent.ts';
export { loadEdgeConfig, parseEdgeConfig, ENV_OVERRIDES } from './config/load.ts';
export { edgeConfigSchema, type EdgeConfig, type EdgeConfigInput } from './config/schema.ts';
export { EdgeError, EDGE_ERRORS, type EdgeErrorCode } from './errors.ts';
export type { Sink } from './sink.ts';
export type { Health } from './http/server.ts';
