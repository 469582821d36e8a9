export { buildApp, type BuildAppOptions } from './app.ts';
export { startCloud, type RunningCloud } from './start.ts';
export { loadCloudConfig, parseCloudConfig, CLOUD_ENV_VARS } from './config/load.ts';
export { CloudConfigSchema, type CloudConfig, type CloudConfigInput, type EdgeConfig } from './config/schema.ts';
export { CLOUD_ERRORS, REJECTION_REASONS, CloudError, CloudConfigError, type CloudErrorCode, type RejectionReason } from './errors.ts';
