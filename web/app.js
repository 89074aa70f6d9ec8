// The shell: hash router, navigation, login/logout, light/dark theme.
// Each page module exports render(main, ctx) and may return a cleanup
// function (timers, event streams) run when the viewer leaves the page.

import { can, login, logout, session, setUnauthorizedHandler, whoami } from './api.js';
import { clear, errorBox, field, h, toast } from './dom.js';
import * as overview from './pages-overview.js';
import * as devices from './pages-devices.js';
import * as device from './pages-device.js';
import * as admin from './pages-admin.js';
import * as live from './pages-live.js';

const ROUTES = {
  overview: { title: 'Overview', render: overview.render },
  devices: { title: 'Devices', render: devices.renderDevices },
  pending: { title: 'Pending', render: devices.renderPending },
  device: { title: 'Device', render: device.render, nav: false },
  policy: { title: 'Policy', render: admin.renderPolicy },
  files: { title: 'Files', render: admin.renderFiles },
  live: { title: 'Live', render: live.render },
  login: { title: 'Log in', render: renderLogin, nav: false, open: true },
};

let cleanup = null;
let visits = 0;
let afterLogin = '#/overview';

// "#/devices?tag=x" -> {name: 'devices', arg: null, params: URLSearchParams}
// "#/device/<id>"   -> {name: 'device', arg: '<id>'}
export function parseHash(hash = location.hash) {
  const raw = hash.replace(/^#\/?/, '');
  const q = raw.indexOf('?');
  const path = q >= 0 ? raw.slice(0, q) : raw;
  const params = new URLSearchParams(q >= 0 ? raw.slice(q + 1) : '');
  const slash = path.indexOf('/');
  const name = (slash >= 0 ? path.slice(0, slash) : path) || 'overview';
  let arg = slash >= 0 ? path.slice(slash + 1) : null;
  if (arg !== null) {
    try { arg = decodeURIComponent(arg); } catch { /* keep as is */ }
  }
  return { name, arg, params };
}

export function go(hash) {
  if (location.hash === hash) route();
  else location.hash = hash;
}

// ---- theme: the system's choice unless the viewer picked one ----

function applyTheme() {
  const t = localStorage.getItem('luacs.theme');
  if (t === 'light' || t === 'dark') document.documentElement.dataset.theme = t;
  else delete document.documentElement.dataset.theme;
  const btn = document.getElementById('theme');
  if (btn) {
    const now = t || 'auto';
    btn.textContent = `Theme: ${now}`;
    btn.setAttribute('aria-label', `Colour theme: ${now}. Change it`);
  }
}

function cycleTheme() {
  const order = ['auto', 'light', 'dark'];
  const t = localStorage.getItem('luacs.theme') || 'auto';
  const next = order[(order.indexOf(t) + 1) % order.length];
  if (next === 'auto') localStorage.removeItem('luacs.theme');
  else localStorage.setItem('luacs.theme', next);
  applyTheme();
}

// ---- shell ----

function renderNav(current) {
  const nav = clear(document.getElementById('nav'));
  const user = clear(document.getElementById('user'));
  if (!session) return;
  const list = h('ul');
  for (const [name, r] of Object.entries(ROUTES)) {
    if (r.nav === false) continue;
    const a = h('a', { href: `#/${name}`, text: r.title });
    if (name === current || (current === 'device' && name === 'devices')) a.setAttribute('aria-current', 'page');
    list.append(h('li', a));
  }
  nav.append(list);
  user.append(
    h('span.who', { title: `role ${session.role}${session.scope ? ', only devices tagged ' + session.scope : ''}` },
      session.name, ' ', h('span.badge', { text: session.role }),
      session.scope ? h('span.badge.scope', { text: `tag ${session.scope}` }) : null),
    h('button', {
      type: 'button', text: 'Log out',
      onclick: async () => {
        try { await logout(); } catch (err) { toast(err.message, 'error'); }
        go('#/login');
      },
    }));
}

async function route() {
  const visit = ++visits;
  const r = parseHash();
  const spec = ROUTES[r.name];
  const main = document.getElementById('main');
  if (cleanup) {
    try { cleanup(); } catch { /* a page's cleanup must not stop navigation */ }
    cleanup = null;
  }
  if (!spec) {
    clear(main).append(h('h1', { text: 'Not found' }), h('p', h('a', { href: '#/overview', text: 'Go to the overview' })));
    return;
  }
  if (!spec.open && !session) {
    afterLogin = location.hash || '#/overview';
    go('#/login');
    return;
  }
  document.body.dataset.role = session ? session.role : '';
  document.title = `${spec.title} — luacs`;
  renderNav(r.name);
  // Each visit renders into an element of its own: a page still loading
  // when the viewer moves on fills its detached element, not the next page.
  const page = h('div.page');
  clear(main).append(page);
  main.setAttribute('aria-busy', 'true');
  try {
    const c = await spec.render(page, { ...r, go, can });
    if (typeof c === 'function') {
      if (visit === visits) cleanup = c;
      else c(); // left already: stop its timers and streams now
    }
  } catch (err) {
    if (err.name !== 'AbortError') page.append(errorBox(err));
  } finally {
    if (visit === visits) main.removeAttribute('aria-busy');
  }
  if (visit !== visits) return;
  // Move focus to the new page's heading for keyboard and screen reader users.
  const h1 = main.querySelector('h1');
  if (h1 && !main.contains(document.activeElement)) {
    h1.setAttribute('tabindex', '-1');
    h1.focus({ preventScroll: true });
  }
}

function renderLogin(main) {
  const input = h('input', { type: 'password', name: 'token', autocomplete: 'current-password', required: true, placeholder: 'lcs_…', spellcheck: 'false' });
  const msg = h('p.error', { role: 'alert' });
  const submit = h('button.primary', { type: 'submit', text: 'Log in' });
  const form = h('form.login', { 'aria-labelledby': 'login-title' },
    h('h1', { id: 'login-title', text: 'Log in to luacs' }),
    h('p', { text: 'Paste an API token (made with “luacs token add NAME --role read|operate|admin”). It is exchanged for a session cookie; the token itself is not kept by the page.' }),
    field('API token', input), msg, submit);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    msg.textContent = '';
    submit.disabled = true;
    try {
      await login(input.value.trim());
      input.value = '';
      go(afterLogin && afterLogin !== '#/login' ? afterLogin : '#/overview');
    } catch (err) {
      msg.textContent = err.status === 401 ? 'That token is not valid (or it was revoked).' : err.message;
    } finally {
      submit.disabled = false;
    }
  });
  main.append(form);
  input.focus();
}

async function start() {
  applyTheme();
  document.getElementById('theme').addEventListener('click', cycleTheme);
  // The skip link must not change the hash: the hash is the route.
  document.querySelector('.skip').addEventListener('click', (e) => {
    e.preventDefault();
    document.getElementById('main').focus();
  });
  setUnauthorizedHandler(() => {
    if (parseHash().name !== 'login') {
      afterLogin = location.hash;
      toast('Your session has ended: please log in again.', 'error');
      go('#/login');
    }
  });
  try {
    await whoami();
  } catch (err) {
    toast(err.message, 'error');
  }
  window.addEventListener('hashchange', route);
  // No hashchange for this one: route() below renders it.
  if (!location.hash) history.replaceState(null, '', '#/overview');
  route();
}

start();
