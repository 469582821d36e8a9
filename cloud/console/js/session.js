// The operator's session: the token from POST /v1/auth/login, kept in this tab's sessionStorage (gone
// when the tab closes; not sent anywhere by the browser on its own, unlike a cookie, so no CSRF).
const KEY = 'citysense.session';
const listeners = new Set();

export const ROLES = ['viewer', 'operator', 'admin'];

export function current() {
  try {
    const s = JSON.parse(sessionStorage.getItem(KEY) ?? 'null');
    if (!s || typeof s.token !== 'string') return null;
    if (typeof s.expiresAt === 'number' && s.expiresAt <= Date.now()) {
      sessionStorage.removeItem(KEY);
      return null;
    }
    return s;
  } catch {
    return null;
  }
}

export function save(s) {
  sessionStorage.setItem(KEY, JSON.stringify(s));
  for (const fn of listeners) fn(s, undefined);
}

/** Ends the session; `reason` is shown on the login form. */
export function clear(reason) {
  sessionStorage.removeItem(KEY);
  for (const fn of listeners) fn(null, reason);
}

export function onChange(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

/** Whether the logged-in operator's role is at least `role` (the API decides; this only hides buttons). */
export function can(role) {
  const s = current();
  return !!s && ROLES.indexOf(s.role) >= ROLES.indexOf(role);
}
