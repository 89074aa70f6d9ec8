// The page's only way to the server: the public API routes (docs/nbi.md),
// authenticated by the session cookie POST /login set. Every request that
// changes something carries the session's CSRF token in X-CSRF-Token.
// Errors come back as ApiError with a sentence a person can read.

const ROLE_RANK = { read: 1, operate: 2, admin: 3 };

// {name, role, scope, csrf, expires} once logged in, else null.
export let session = null;

// Called when the server says the session is gone (401): app.js sends the
// viewer to the login page.
let onUnauthorized = () => {};
export function setUnauthorizedHandler(fn) {
  onUnauthorized = fn;
}

export function can(role) {
  return !!session && (ROLE_RANK[session.role] || 0) >= (ROLE_RANK[role] || 99);
}

export class ApiError extends Error {
  constructor(status, message, body) {
    super(message);
    this.status = status;
    this.body = body;
  }
}

const STATUS_WORDS = {
  400: 'The server did not accept the request',
  401: 'Your session has ended or the token is not valid: please log in again',
  403: 'Your token is not allowed to do this',
  404: 'Not found',
  405: 'The server does not take this request',
  409: 'Conflict',
  413: 'Too large for the server',
  422: 'Refused',
  500: 'The server failed',
  501: 'This server cannot do that',
  502: 'Bad gateway',
  503: 'The server or its database is unavailable right now',
  504: 'No answer in time',
  507: 'The server\'s disk is full',
};

// {"error": "...", "detail": "..."} -> "Error: detail (HTTP 400)".
function words(status, body, what) {
  let text = STATUS_WORDS[status] || `HTTP ${status}`;
  if (body && typeof body === 'object' && body.error) {
    const e = String(body.error);
    text = e.charAt(0).toUpperCase() + e.slice(1);
    if (body.detail) text += `: ${body.detail}`;
    if (status === 403 && !/allow|role|scope|forbid|csrf/i.test(text)) text = `${STATUS_WORDS[403]} (${text})`;
  }
  return `${what ? what + ' — ' : ''}${text} (HTTP ${status})`;
}

// The path of one device: the id is percent-encoded once more (an id
// holding %20 travels as %2520), docs/nbi.md.
export function devicePath(id, rest = '') {
  return `/devices/${encodeURIComponent(id)}${rest}`;
}

export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params || {})) {
    if (v === null || v === undefined || v === '') continue;
    if (Array.isArray(v)) v.forEach((x) => q.append(k, x));
    else q.append(k, String(v));
  }
  const s = q.toString();
  return s ? `?${s}` : '';
}

// api('GET', '/devices', {query, body, accept, what}) -> parsed JSON (or
// text for non-JSON answers; null for 204). `raw: true` returns the
// Response itself (after the status check).
export async function api(method, path, opts = {}) {
  const headers = { Accept: opts.accept || 'application/json' };
  if (method !== 'GET' && method !== 'HEAD' && session && !opts.noCsrf) headers['X-CSRF-Token'] = session.csrf;
  let body;
  if (opts.body !== undefined) {
    headers['Content-Type'] = 'application/json';
    body = JSON.stringify(opts.body);
  }
  let res;
  try {
    res = await fetch(path + query(opts.query), {
      method, headers, body, credentials: 'same-origin', cache: 'no-store', signal: opts.signal,
    });
  } catch (err) {
    if (err.name === 'AbortError') throw err;
    throw new ApiError(0, `${opts.what ? opts.what + ' — ' : ''}luacs did not answer (network error: is the server running?)`);
  }
  if (res.status === 401 && !opts.noRedirect) {
    session = null;
    onUnauthorized();
  }
  if (opts.okStatuses && opts.okStatuses.includes(res.status)) return parse(res);
  if (!res.ok) {
    const b = await parse(res).catch(() => null);
    throw new ApiError(res.status, words(res.status, b, opts.what), b);
  }
  if (opts.raw) return res;
  return parse(res);
}

async function parse(res) {
  if (res.status === 204 || res.status === 304) return null;
  const type = res.headers.get('Content-Type') || '';
  const text = await res.text();
  if (type.includes('json')) {
    try {
      return JSON.parse(text);
    } catch {
      return text;
    }
  }
  return text;
}

// ---- login ----

export async function login(token) {
  session = null;
  const s = await api('POST', '/login', { body: { token }, noRedirect: true, what: 'Login' });
  session = s;
  return s;
}

// The session of the cookie, or null (no cookie, expired, revoked).
export async function whoami() {
  try {
    session = await api('GET', '/login', { noRedirect: true });
  } catch (err) {
    if (err.status === 401) session = null;
    else throw err;
  }
  return session;
}

export async function logout() {
  try {
    await api('POST', '/logout', { noRedirect: true });
  } finally {
    session = null;
  }
}

// PUT /files/{name} with a progress callback: fetch cannot report upload
// progress, XMLHttpRequest can.
export function upload(name, file, params, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open('PUT', `/files/${encodeURIComponent(name)}${query(params)}`);
    xhr.setRequestHeader('Accept', 'application/json');
    xhr.setRequestHeader('Content-Type', 'application/octet-stream');
    if (session) xhr.setRequestHeader('X-CSRF-Token', session.csrf);
    xhr.upload.onprogress = (e) => { if (e.lengthComputable) onProgress(e.loaded / e.total); };
    xhr.onerror = () => reject(new ApiError(0, 'Upload — luacs did not answer (network error)'));
    xhr.onload = () => {
      let b = null;
      try { b = JSON.parse(xhr.responseText); } catch { /* not JSON */ }
      if (xhr.status >= 200 && xhr.status < 300) resolve(b);
      else {
        if (xhr.status === 401) { session = null; onUnauthorized(); }
        reject(new ApiError(xhr.status, words(xhr.status, b, 'Upload'), b));
      }
    };
    xhr.send(file);
  });
}

// Reads every page of a keyset listing (tasks, faults) up to `max` rows.
export async function allPages(path, key, params, max = 1000) {
  const out = [];
  let after = null;
  do {
    const r = await api('GET', path, { query: { ...params, after } });
    out.push(...(r[key] || []));
    after = r.next;
  } while (after !== null && after !== undefined && out.length < max);
  return out;
}
