import { h, mount } from '../dom.js';
import { login } from '../api.js';

export function loginPage(root, reason) {
  const user = h('input#username', { name: 'username', autocomplete: 'username', required: true, autofocus: true });
  const pass = h('input#password', { name: 'password', type: 'password', autocomplete: 'current-password', required: true });
  const msg = h('p.message#login-message', { role: 'alert' }, reason ?? '');
  const button = h('button.primary#login-submit', { type: 'submit' }, 'Log in');
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
  );
  mount(root, h('div.login-wrap', form));
  user.focus();
}
