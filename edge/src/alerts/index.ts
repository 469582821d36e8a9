// Edge-local alerting (issue 5, item 5): see local-alerts.ts and README.md § Edge-local alerting.
export { LocalAlerts, type LocalAlertsDeps, type UplinkHooks, type UplinkAttemptOutcome } from './local-alerts.ts';
export { localAlertsSchema, type LocalAlertsConfig, type LocalRule, type LocalTargetConfig } from './config.ts';
export { EDGE_NOTIFIED_ATTR, cloudIds, firingBody, loadLocalRules, rulesFor, targetMatches } from './rules.ts';
export { LocalOutbox } from './outbox.ts';
export { signatureHeader, SIGNATURE_HEADER } from './sign.ts';
