// Local event rules: which events alert locally, to which targets, and the webhook body the edge sends —
// built like the cloud's (cloud/src/alerts/engine.ts) so that the alert id and the Idempotency-Key are the
// ones the cloud computes for the same state change.
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { DeviceEvent } from '@citysense/proto';
import { parse as parseYaml } from 'yaml';
import { EdgeError } from '../errors.ts';
import { cloudFileRuleSchema, type LocalAlertsConfig, type LocalMatch, type LocalRule, type LocalTargetConfig } from './config.ts';

/** The event attribute by which the cloud learns which of its targets the edge already notified. */
export const EDGE_NOTIFIED_ATTR = 'edge_notified';

export interface LocalTarget extends Omit<LocalTargetConfig, 'secret' | 'secretEnv'> {
  secret: string;
}

function files(path: string): string[] {
  let st;
  try {
    st = statSync(path);
  } catch (err) {
    throw new EdgeError('CONFIG_INVALID', `localAlerts.rulesFiles: cannot read ${path}: ${(err as Error).message}`, { cause: err });
  }
  if (!st.isDirectory()) return [path];
  return readdirSync(path)
    .filter((f) => /\.(ya?ml|json)$/.test(f))
    .sort()
    .map((f) => join(path, f));
}

/**
 * The local rules: inline ones, then the enabled event rules of severity critical from the cloud's rule
 * files. A rule id given twice is refused; everything else in those files is the cloud's business.
 */
export function loadLocalRules(c: Pick<LocalAlertsConfig, 'rules' | 'rulesFiles'>): LocalRule[] {
  const out: LocalRule[] = [...c.rules];
  const seen = new Map(out.map((r) => [r.id, 'localAlerts.rules']));
  for (const p of c.rulesFiles) {
    for (const file of files(p)) {
      let raw: unknown;
      try {
        raw = parseYaml(readFileSync(file, 'utf8'));
      } catch (err) {
        throw new EdgeError('CONFIG_INVALID', `localAlerts.rulesFiles: ${file} is not valid YAML/JSON: ${(err as Error).message}`, { cause: err });
      }
      const list = Array.isArray(raw) ? raw : Array.isArray((raw as { rules?: unknown })?.rules) ? (raw as { rules: unknown[] }).rules : [];
      list.forEach((item, i) => {
        const r = item as { kind?: unknown; severity?: unknown; enabled?: unknown };
        if (r?.kind !== 'event' || r.severity !== 'critical' || r.enabled === false) return;
        const parsed = cloudFileRuleSchema.safeParse(item);
        if (!parsed.success) {
          const msg = parsed.error.issues.map((x) => `${x.path.join('.') || '(rule)'}: ${x.message}`).join('; ');
          throw new EdgeError('CONFIG_INVALID', `localAlerts.rulesFiles: ${file}: rules[${i}]: ${msg}`);
        }
        const before = seen.get(parsed.data.id);
        if (before) throw new EdgeError('CONFIG_INVALID', `local alert rule id "${parsed.data.id}" is defined twice: in ${before} and in ${file}`);
        seen.set(parsed.data.id, file);
        const { id, types, severity, category, keyAttrs, description, match } = parsed.data;
        out.push({ id, types, severity, category, keyAttrs, match, ...(description !== undefined ? { description } : {}) });
      });
    }
  }
  return out;
}

/** Resolves secretEnv at start: a missing variable stops the edge, naming the target. */
export function resolveLocalTargets(targets: readonly LocalTargetConfig[], env: Record<string, string | undefined>): LocalTarget[] {
  return targets.map((t, i) => {
    const { secret, secretEnv, ...rest } = t;
    const value = secret ?? (secretEnv ? env[secretEnv] : undefined);
    if (!value) throw new EdgeError('CONFIG_INVALID', `localAlerts.targets[${i}].secretEnv: environment variable ${secretEnv} is not set`);
    return { ...rest, secret: value };
  });
}

/** The cloud's rule `match` (cloud/src/alerts/evaluate.ts), on an event. */
export function matchesEvent(m: LocalMatch, e: Pick<DeviceEvent, 'deviceId' | 'family' | 'tags'>): boolean {
  const tags = e.tags;
  if (m.family && !m.family.includes(e.family as never)) return false;
  if (m.device && !m.device.includes(e.deviceId)) return false;
  if (m.district && !m.district.includes(tags?.district ?? '')) return false;
  if (m.profile && !m.profile.includes(tags?.profile ?? '') && !m.profile.includes(tags?.model ?? '')) return false;
  if (m.tags) for (const k in m.tags) if (tags?.[k] !== m.tags[k]) return false;
  return true;
}

/** The local rules an event fires (its type is one of the rule's types and the device matches). */
export function rulesFor(rules: readonly LocalRule[], e: DeviceEvent): LocalRule[] {
  return rules.filter((r) => r.types.includes(e.type) && matchesEvent(r.match, e));
}

/** The cloud's target routing (cloud/src/delivery/targets.ts) for a firing of a critical rule. */
export function targetMatches(t: Pick<LocalTarget, 'match'>, c: { category: string; district: string }): boolean {
  if (t.match.categories && !t.match.categories.includes(c.category as never)) return false;
  if (t.match.districts && !t.match.districts.includes(c.district)) return false;
  return true;
}

const hash = (...parts: (string | number)[]) => createHash('sha256').update(parts.join('\0')).digest('hex');

/**
 * The ids the cloud gives the firing this event causes when it opens a new alert (engine.ts `fire` and
 * `change`): alert id `al_` + hash(rule, device, key, started_at, ts) with started_at = ts = the event's
 * time; the firing is the alert's first change, event_id `ev_` + hash(alert id, 1, "firing").
 */
export function cloudIds(rule: Pick<LocalRule, 'id' | 'keyAttrs'>, e: Pick<DeviceEvent, 'deviceId' | 'ts' | 'attrs'>): { alertId: string; eventId: string } {
  const subject = rule.keyAttrs.map((k) => e.attrs?.[k] ?? '').join('|');
  const alertId = `al_${hash(rule.id, e.deviceId, subject, e.ts, e.ts).slice(0, 24)}`;
  return { alertId, eventId: `ev_${hash(alertId, 1, 'firing').slice(0, 24)}` };
}

/** The webhook body of the firing, field for field (and in the same order) as the cloud would send it. */
export function firingBody(rule: LocalRule, e: DeviceEvent): { eventId: string; body: string } {
  const { alertId, eventId } = cloudIds(rule, e);
  const attrs = { ...e.attrs };
  delete attrs[EDGE_NOTIFIED_ATTR];
  const body: Record<string, unknown> = {
    id: alertId,
    event_id: eventId,
    rule: rule.id,
    state: 'firing',
    severity: rule.severity,
    category: rule.category,
    device_id: e.deviceId,
    district: e.tags?.district ?? '',
    family: e.family,
    value: null,
    threshold: null,
    started_at: e.ts,
    ts: e.ts,
    reason: 'event',
    flapping: false,
  };
  if (rule.description) body.description = rule.description;
  body.type = e.type;
  body.attrs = attrs;
  body.source_event_id = e.id;
  body.cause_event_id = e.id;
  return { eventId, body: JSON.stringify(body) };
}
