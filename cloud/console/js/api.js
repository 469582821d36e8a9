// The JSON API, with the session's bearer token on every call. A 401 ends the session (expired or
// revoked token: back to the login form); other errors are thrown as ApiError with the API's stable code.
import * as session from './session.js';

export class ApiError extends Error {
  constructor(status, code, message, body) {
    super(message || code || `HTTP ${status}`);
    this.status = status;
    this.code = code;
    this.body = body;
  }
}

export async function api(path, { method = 'GET', body, type, signal } = {}) {
  const s = session.current();
  const headers = { accept: 'application/json' };
  if (s) headers.authorization = `Bearer ${s.token}`;
  let payload;
  if (body !== undefined) {
    headers['content-type'] = type ?? 'application/json';
    payload = typeof body === 'string' ? body : JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(path, { method, headers, body: payload, signal, cache: 'no-store', credentials: 'omit' });
  } catch (err) {
    if (err.name === 'AbortError') throw err;
    throw new ApiError(0, 'NETWORK', 'the cloud cannot be reached');
  }
  const text = await res.text();
  let json;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  if (res.status === 401 && path !== '/v1/auth/login') {
    session.clear('Your session has ended. Please log in again.');
  }
  if (!res.ok) throw new ApiError(res.status, json?.error, json?.message, json);
  return json;
}

export async function login(username, password) {
  const r = await api('/v1/auth/login', { method: 'POST', body: { username, password } });
  session.save({ token: r.token, role: r.role, expiresAt: r.expiresAt, username });
  return r;
}

/** Ends the token at the cloud too (a copied token stops working), then the tab's session. */
export async function logout() {
  try {
    await api('/v1/auth/logout', { method: 'POST' });
  } catch {
    // The cloud is unreachable or the token has ended already: the tab forgets it either way.
  }
  session.clear('You have logged out.');
}

export const q = (params) => {
  const u = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') u.set(k, String(v));
  const s = u.toString();
  return s ? `?${s}` : '';
};
