import { h, mount } from '../dom.js';
import { login } from '../api.js';

export function loginPage(root, reason) {
  const user = h('input#username', { name: 'username', autocomplete: 'username', required: true, autofocus: true });
  const pass = h('input#password', { name: 'password', type: 'password', autocomplete: 'current-password', required: true });
  const msg = h('p.message#login-message', { role: 'alert' }, reason ?? '');
  const button = h('button.primary#login-submit', { type: 'submit' }, 'Log in');
  const hints = h('div.login-hints#login-hints');
  const form = h(
    'form.login#login-form',
    {
      on: {
        async submit(e) {
          e.preventDefault();
          msg.textContent = '';
          msg.classList.remove('error');
          button.disabled = true;
          try {
            await login(user.value.trim(), pass.value);
          } catch (err) {
            msg.classList.add('error');
            msg.textContent = err.status === 401 ? 'Wrong username or password.' : `Login failed: ${err.message}`;
            pass.value = '';
            pass.focus();
          } finally {
            button.disabled = false;
          }
        },
      },
    },
    h('h1', 'citysense'),
    h('p.sub', 'Operator console'),
    h('label', 'Username', user),
    h('label', 'Password', pass),
    button,
    msg,
    hints,
  );
  mount(root, h('div.login-wrap', form));
  user.focus();
  // Where to start: the documentation, and — only when the cloud runs as the demo (operators.demoUsers)
  // — the demo's published accounts. Asked of the cloud, so a real deployment shows no such list.
  fetch('/console/info.json', { cache: 'no-store', credentials: 'omit' })
    .then((r) => (r.ok ? r.json() : undefined))
    .then((info) => {
      if (!info) return;
      mount(
        hints,
        info.docs ? h('p', 'New here? Read ', h('a#docs-link', { href: info.docs, target: '_blank', rel: 'noopener' }, 'the documentation'), ' (start with console.md).') : null,
        info.demo
          ? h(
              'div#demo-users',
              h('p', 'This is the demo. Its accounts:'),
              h('ul', DEMO_USERS.map(([u, p, what]) => h('li', h('code', `${u} / ${p}`), ` — ${what}`))),
            )
          : null,
      );
    })
    .catch(() => undefined);
}

/** The demo's accounts (contracts.md): shown only when /console/info.json says this is the demo. */
const DEMO_USERS = [
  ['duty', 'duty-demo', 'acknowledges and resolves alerts'],
  ['viewer', 'viewer-demo', 'reads everything'],
  ['admin', 'admin-demo', 'also manages the registry'],
];
