// The alert rules the cloud runs (GET /v1/rules): what raises an alert, at which severity, from which
// file. Read-only: rules live in files the cloud reads at start (docs/alert-rules.md).
import { h, mount } from '../dom.js';
import { api } from '../api.js';
import { duration } from '../format.js';
import { errorBox } from './common.js';

/** The rule's condition in a few words, by kind. */
function condition(r) {
  const list = (v) => (Array.isArray(v) ? v.join(', ') : v);
  switch (r.kind) {
    case 'threshold': {
      const parts = [];
      if (r.above !== undefined) parts.push(`${r.metric} > ${r.above}`);
      if (r.below !== undefined) parts.push(`${r.metric} < ${r.below}`);
      if (r.outside !== undefined) parts.push(`${r.metric} outside [${list(r.outside)}]`);
      if (r.equals !== undefined) parts.push(`${r.metric} = ${r.equals}`);
      return `${parts.join(' or ') || r.metric}${r.for ? ` for ${duration(r.for)}` : ''}`;
    }
    case 'rate':
      return [r.rise !== undefined && `${r.metric} rises > ${r.rise}`, r.fall !== undefined && `${r.metric} falls > ${r.fall}`].filter(Boolean).join(' or ') + ` within ${duration(r.window)}`;
    case 'offline':
      return r.after ? `silent for ${duration(r.after)}` : `silent for ${r.intervals} expected intervals`;
    case 'event':
      return `event ${list(r.types)}${r.keyAttrs?.length ? ` (one alert per ${r.keyAttrs.join(', ')})` : ''}`;
    default:
      return '';
  }
}

function scope(r) {
  const m = r.match ?? {};
  const parts = [];
  for (const k of ['family', 'district', 'device', 'profile']) if (m[k] !== undefined) parts.push(`${k}: ${[m[k]].flat().join(', ')}`);
  for (const [k, v] of Object.entries(m.tags ?? {})) parts.push(`${k}=${v}`);
  return parts.join('; ') || 'all devices';
}

export function rulesPage(main) {
  const err = errorBox();
  const body = h('tbody');
  const note = h('p.muted');
  mount(
    main,
    h('div.page-head', h('h1', 'Alert rules')),
    err.el,
    h('table.grid#rules', h('thead', h('tr', ['Rule', 'Kind', 'Category', 'Severity', 'Condition', 'Applies to', 'Source'].map((t) => h('th', t)))), body),
    note,
  );
  const ctl = new AbortController();
  api('/v1/rules', { signal: ctl.signal })
    .then((r) => {
      note.textContent = `${r.count} rule(s) loaded when the cloud started. Add your own in a rules file or folder named in alerts.rulesFiles (in the demo: .data/demo/rules.d/*.yaml) and restart the cloud.`;
      mount(
        body,
        r.rules.length
          ? r.rules.map((x) =>
              h(
                'tr',
                { 'data-rule': x.id },
                h('td', h('strong', x.id), x.description ? h('div.muted', x.description) : null),
                h('td', x.kind),
                h('td', x.category),
                h('td', h('span.sev', { 'data-severity': x.severity }, x.severity)),
                h('td', condition(x)),
                h('td', scope(x)),
                h('td.muted', x.source ?? ''),
              ),
            )
          : h('tr', h('td.empty', { colspan: 7 }, 'No alert rules are loaded.')),
      );
    })
    .catch((e) => {
      if (e.name !== 'AbortError') err.show(e);
    });
  return () => ctl.abort();
}
