// The alerts the console shows, kept current from the cloud's alert stream: opened when an operator logs
// in, then GET /v1/alerts for the list (after the stream is up, so nothing between the two is missed; the
// newer of a row and a change wins). Pages subscribe and re-render on each change.
import { api, q } from './api.js';
import { openStream } from './sse.js';

const alerts = new Map();
const listeners = new Set();
let stream;
let streamState = 'closed';
let streamDetail = '';
let loaded = false;

function emit(changedId) {
  for (const fn of listeners) fn(changedId);
}

export function subscribe(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

export function all() {
  return [...alerts.values()].sort((a, b) => b.started_at - a.started_at || (a.id < b.id ? 1 : -1));
}

export function get(id) {
  return alerts.get(id);
}

export function counts() {
  let firing = 0;
  let acknowledged = 0;
  for (const a of alerts.values()) {
    if (a.state === 'firing') firing++;
    else if (a.state === 'acknowledged') acknowledged++;
  }
  return { firing, acknowledged };
}

export function status() {
  return { state: streamState, detail: streamDetail, loaded };
}

/** A row from GET /v1/alerts, or an answer of ack/resolve. */
export function put(row) {
  const old = alerts.get(row.id);
  if (old && (old.updated_at ?? 0) > (row.updated_at ?? 0)) return;
  alerts.set(row.id, { ...old, ...row });
  emit(row.id);
}

/** A state change from the stream (contracts.md webhook body). */
function change(c) {
  const old = alerts.get(c.id);
  if (old && (old.updated_at ?? 0) > c.ts) return;
  const row = {
    ...old,
    id: c.id,
    rule: c.rule,
    state: c.state,
    severity: c.severity,
    category: c.category,
    device_id: c.device_id,
    district: c.district,
    family: c.family ?? old?.family ?? null,
    value: c.value,
    threshold: c.threshold,
    started_at: c.started_at,
    updated_at: c.ts,
    type: c.type ?? old?.type ?? null,
    attrs: c.attrs ?? old?.attrs ?? null,
    description: c.description ?? old?.description,
    flapping: c.flapping,
  };
  if (c.state === 'acknowledged') Object.assign(row, { acked_by: c.by ?? null, acked_at: c.ts });
  if (c.state === 'resolved') Object.assign(row, { resolved_by: c.by ?? null, resolved_at: c.ts, resolved_reason: c.reason ?? null });
  row.live = true;
  alerts.set(c.id, row);
  emit(c.id);
}

async function loadList() {
  const r = await api(`/v1/alerts${q({ limit: 200 })}`);
  for (const a of r.alerts) put(a);
  loaded = true;
  emit(undefined);
}

export function start() {
  if (stream) return;
  let first = true;
  stream = openStream('/v1/alerts/stream', {
    onEvent(e) {
      if (e.event !== 'alert') return;
      try {
        change(JSON.parse(e.data));
      } catch {
        /* a malformed event is skipped */
      }
    },
    onState(s, detail) {
      streamState = s;
      streamDetail = detail ?? '';
      if (s === 'live' && first) {
        first = false;
        loadList().catch((err) => {
          streamDetail = `could not load alerts: ${err.message}`;
          emit(undefined);
        });
      }
      emit(undefined);
    },
  });
}

export function stop() {
  stream?.close();
  stream = undefined;
  alerts.clear();
  loaded = false;
  streamState = 'closed';
}

export async function acknowledge(id) {
  put(await api(`/v1/alerts/${encodeURIComponent(id)}/ack`, { method: 'POST' }));
}

export async function resolve(id) {
  put(await api(`/v1/alerts/${encodeURIComponent(id)}/resolve`, { method: 'POST' }));
}
