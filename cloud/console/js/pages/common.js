import { h } from '../dom.js';

export function errorBox() {
  const el = h('p.message.error', { role: 'alert', hidden: true });
  return {
    el,
    show(err) {
      el.hidden = false;
      el.textContent = err ? `${err.code ? `${err.code}: ` : ''}${err.message}` : '';
    },
    clear() {
      el.hidden = true;
      el.textContent = '';
    },
  };
}

export function statusBadge(status) {
  const label = { online: 'online', offline: 'offline', never_seen: 'never seen', up: 'up', down: 'down', never: 'no contact' }[status] ?? status;
  return h(`span.status.${status}`, { 'data-status': status }, label);
}

export function stateBadge(state) {
  return h(`span.state.${state}`, { 'data-state': state }, state);
}

export function severityBadge(sev) {
  return h(`span.severity.${sev}`, sev);
}
