// The console's shell: login form or header + page, hash routes (#/districts, #/district/{d},
// #/device/{id}, #/alerts, #/edges, #/rules, #/registry), the alert stream for the whole session.
import { h, mount } from './dom.js';
import * as session from './session.js';
import { logout } from './api.js';
import * as alerts from './alerts-store.js';
import { loginPage } from './pages/login.js';
import { districtsPage } from './pages/districts.js';
import { districtPage } from './pages/district.js';
import { devicePage } from './pages/device.js';
import { alertsPage } from './pages/alerts.js';
import { edgesPage } from './pages/edges.js';
import { registryPage } from './pages/registry.js';
import { rulesPage } from './pages/rules.js';

const root = document.getElementById('app');
let cleanup;
let shell;

const ROUTES = [
  { re: /^#?\/?$/, nav: 'districts', page: () => districtsPage },
  { re: /^#\/districts$/, nav: 'districts', page: () => districtsPage },
  { re: /^#\/district\/([^/]+)$/, nav: 'districts', page: () => districtPage },
  { re: /^#\/device\/([^/]+)$/, nav: 'districts', page: () => devicePage },
  { re: /^#\/alerts$/, nav: 'alerts', page: () => alertsPage },
  { re: /^#\/edges$/, nav: 'edges', page: () => edgesPage },
  { re: /^#\/rules$/, nav: 'rules', page: () => rulesPage },
  { re: /^#\/registry$/, nav: 'registry', page: () => registryPage, role: 'admin' },
];

function buildShell(s) {
  const badge = h('span.badge#alert-badge', { 'aria-label': 'alerts firing' });
  const streamDot = h('span.stream#stream-state', { title: 'alert stream' });
  const navLinks = {
    districts: h('a', { href: '#/districts' }, 'Districts'),
    alerts: h('a', { href: '#/alerts' }, 'Alerts ', badge),
    edges: h('a', { href: '#/edges' }, 'Edges'),
    rules: h('a', { href: '#/rules' }, 'Rules'),
    registry: session.can('admin') ? h('a', { href: '#/registry' }, 'Registry') : null,
  };
  const main = h('main#page');
  const header = h(
    'header.top',
    h('a.brand', { href: '#/districts' }, 'citysense'),
    h('nav', Object.values(navLinks)),
    h(
      'div.who',
      streamDot,
      h('span#whoami', `${s.username} `, h('span.role', { 'data-role': s.role }, s.role)),
      h('button.link#logout', { type: 'button', on: { click: () => void logout() } }, 'Log out'),
    ),
  );
  mount(root, header, main);
  const refresh = () => {
    const c = alerts.counts();
    badge.textContent = c.firing ? String(c.firing) : '';
    badge.classList.toggle('hot', c.firing > 0);
    const st = alerts.status();
    streamDot.className = `stream ${st.state}`;
    streamDot.textContent = st.state === 'live' ? 'live' : st.state;
    streamDot.title = `alert stream: ${st.state}${st.detail ? ` (${st.detail})` : ''}`;
  };
  const off = alerts.subscribe(refresh);
  refresh();
  return { main, navLinks, off };
}

function route() {
  cleanup?.();
  cleanup = undefined;
  const s = session.current();
  if (!s) {
    shell?.off();
    shell = undefined;
    return;
  }
  if (!shell) shell = buildShell(s);
  const hash = location.hash || '#/districts';
  const r = ROUTES.find((x) => x.re.test(hash));
  for (const [k, a] of Object.entries(shell.navLinks)) a?.classList.toggle('active', r?.nav === k);
  if (!r) {
    mount(shell.main, h('h1', 'Not found'), h('p', 'There is no such page. ', h('a', { href: '#/districts' }, 'Districts')));
    return;
  }
  if (r.role && !session.can(r.role)) {
    mount(shell.main, h('h1', 'Not allowed'), h('p', `This page is for the ${r.role} role.`));
    return;
  }
  const params = (hash.match(r.re) ?? []).slice(1).map(decodeURIComponent);
  shell.main.replaceChildren();
  cleanup = r.page()(shell.main, ...params);
}

function showLogin(reason) {
  cleanup?.();
  cleanup = undefined;
  shell?.off();
  shell = undefined;
  alerts.stop();
  loginPage(root, reason);
}

session.onChange((s, reason) => {
  if (!s) showLogin(reason);
  else {
    alerts.start();
    route();
  }
});
window.addEventListener('hashchange', () => session.current() && route());

if (session.current()) {
  alerts.start();
  route();
} else showLogin();
