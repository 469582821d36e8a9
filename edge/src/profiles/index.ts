export { profileSchema, METRIC_NAME, INPUTS, FORMATS, type Profile, type ProfileInput, type EventRule, type MetricSpec } from './schema.ts';
export { ProfileRuntime, convert, PROFILE_VALUE_REJECT, OUT_OF_RANGE_QUALITY, type RawSample, type ProfileOutcome, type DerivedEvent } from './apply.ts';
export { loadProfiles, parseProfile, buildProfileSet, BUILTIN_PROFILES_DIR, type ProfileSet } from './load.ts';
