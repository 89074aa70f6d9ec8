// Devices (the fleet table: filters, keyset paging, columns, CSV export,
// bulk actions as API jobs) and Pending (devices waiting for adoption).

import { api, can, devicePath, query, session } from './api.js';
import { progressBar } from './charts.js';
import {
  actionButton, ago, clear, confirmDialog, deviceLink, errorBox, field, fmtNum, h, readableId,
  table, tagChip, timeEl, toast,
} from './dom.js';

const ROOTS = ['Device', 'InternetGatewayDevice'];
const both = (p) => ROOTS.map((r) => `param.${r}.${p}`);
const firstOf = (d, names) => names.map((n) => d[n]).find((v) => v !== null && v !== undefined && v !== '') ?? '';

// The columns an operator may choose. `fields`: what GET /devices must
// project for it; model and software version live under either root.
export const COLUMNS = {
  serial_number: { title: 'Serial', fields: ['serial_number'], cell: (d) => d.serial_number ?? '' },
  product_class: { title: 'Product class', fields: ['product_class'], cell: (d) => d.product_class ?? '' },
  model: { title: 'Model', fields: both('DeviceInfo.ModelName'), cell: (d) => firstOf(d, both('DeviceInfo.ModelName')) },
  software: { title: 'Software', fields: both('DeviceInfo.SoftwareVersion'), cell: (d) => firstOf(d, both('DeviceInfo.SoftwareVersion')) },
  manufacturer: { title: 'Manufacturer', fields: ['manufacturer'], cell: (d) => d.manufacturer ?? '' },
  oui: { title: 'OUI', fields: ['oui'], cell: (d) => d.oui ?? '' },
  last_inform: { title: 'Last inform', fields: ['last_inform'], cell: (d) => h('span', timeEl(d.last_inform), h('small.muted', { text: ` ${ago(d.last_inform)}` })) },
  first_seen: { title: 'First seen', fields: ['first_seen'], cell: (d) => timeEl(d.first_seen) },
  last_boot: { title: 'Last boot', fields: ['last_boot'], cell: (d) => timeEl(d.last_boot) },
  remote_address: { title: 'Address', fields: ['remote_address'], cell: (d) => d.remote_address ?? '' },
  last_events: { title: 'Last events', fields: ['last_events'], cell: (d) => (d.last_events || []).join(', ') },
  tags: { title: 'Tags', fields: ['tags'], cell: (d) => h('span.tags', (d.tags || []).map((t) => tagChip(t))) },
};
const DEFAULT_COLUMNS = ['serial_number', 'model', 'software', 'last_inform', 'tags'];
const PAGE = 50;

function chosenColumns() {
  try {
    const c = JSON.parse(localStorage.getItem('luacs.devices.columns'));
    if (Array.isArray(c)) return c.filter((k) => COLUMNS[k]);
  } catch { /* default */ }
  return DEFAULT_COLUMNS;
}

// The hash's query -> the API's filters (names of GET /devices).
const FILTER_KEYS = ['tag', 'not_tag', 'id_prefix', 'model', 'software_version', 'online', 'faulty'];
function filtersOf(params) {
  const f = {};
  for (const k of FILTER_KEYS) if (params.get(k)) f[k] = params.get(k);
  const pn = params.get('param'), pv = params.get('value');
  if (pn) f[`param.${pn}`] = pv || '*';
  return f;
}

// The same filters as a job's JSON filter: online/faulty are booleans there.
function jobFilter(f) {
  const out = {};
  for (const [k, v] of Object.entries(f)) out[k] = k === 'online' || k === 'faulty' ? v === 'true' : v;
  return out;
}

function filterForm(params, go) {
  const input = (name, label, placeholder = '') => field(label, h('input', { name, value: params.get(name) || '', placeholder, autocomplete: 'off' }));
  const tri = (name, label, yes, no) => field(label, h('select', { name },
    h('option', { value: '', text: 'any' }),
    h('option', { value: 'true', text: yes, selected: params.get(name) === 'true' }),
    h('option', { value: 'false', text: no, selected: params.get(name) === 'false' })));
  const sort = field('Sort', h('select', { name: 'sort' },
    [['', 'id'], ['-last_inform', 'last inform, newest'], ['last_inform', 'last inform, oldest'], ['-first_seen', 'first seen, newest']]
      .map(([v, t]) => h('option', { value: v, text: t, selected: (params.get('sort') || '') === v }))));
  const form = h('form.filters', { role: 'search', 'aria-label': 'Device filters' },
    input('tag', 'Tag'), input('not_tag', 'Without tag'), input('model', 'Model'),
    input('software_version', 'Software version'), input('id_prefix', 'Id starts with'),
    tri('online', 'Online', 'online', 'offline'), tri('faulty', 'Faults', 'with faults', 'no faults'),
    input('param', 'Parameter', 'Device.DeviceInfo.HardwareVersion'), input('value', 'equals', 'value, v* or *'),
    sort,
    h('div.buttons', h('button.primary', { type: 'submit', text: 'Apply' }),
      h('button', { type: 'button', text: 'Clear', onclick: () => go('#/devices') })));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const q = {};
    for (const [k, v] of new FormData(form)) if (v) q[k] = v;
    go(`#/devices${query(q)}`);
  });
  return form;
}

function columnPicker(onChange) {
  const chosen = new Set(chosenColumns());
  const box = h('fieldset.columns', h('legend', { text: 'Columns' }));
  for (const [k, c] of Object.entries(COLUMNS)) {
    const cb = h('input', { type: 'checkbox', value: k, checked: chosen.has(k) });
    cb.addEventListener('change', () => {
      if (cb.checked) chosen.add(k); else chosen.delete(k);
      const order = Object.keys(COLUMNS).filter((x) => chosen.has(x));
      localStorage.setItem('luacs.devices.columns', JSON.stringify(order));
      onChange();
    });
    box.append(h('label.check', cb, c.title));
  }
  return h('details.column-picker', h('summary', { text: 'Choose columns' }), box);
}

export async function renderDevices(main, { params, go }) {
  const filters = filtersOf(params);
  const sort = params.get('sort') || undefined;
  const cursors = [null]; // cursors[i] = the `after` of page i
  let pageIx = 0;
  let rows = [];
  const selected = new Set();

  const count = h('p.count', { 'aria-live': 'polite' });
  const tableBox = h('div');
  const pager = h('nav.pager', { 'aria-label': 'Pages of the device list' });
  const prev = h('button', { type: 'button', text: '← Previous' });
  const next = h('button', { type: 'button', text: 'Next →' });
  const pageNo = h('span');
  pager.append(prev, pageNo, next);
  const exportBtn = actionButton('Export CSV', () => exportCsv(filters, sort));
  const bulk = can('operate') ? bulkPanel(() => [...selected], () => filters) : null;

  main.append(
    h('div.page-head', h('h1', { text: 'Devices' }), count),
    filterForm(params, go),
    h('div.toolbar', columnPicker(() => draw()), exportBtn),
    bulk ? bulk.el : null,
    tableBox, pager);

  function fields() {
    const f = new Set(['id']);
    for (const k of chosenColumns()) COLUMNS[k].fields.forEach((x) => f.add(x));
    return [...f].join(',');
  }

  function draw() {
    const cols = [];
    if (bulk) {
      const all = h('input', { type: 'checkbox', 'aria-label': 'Select every device of this page', checked: rows.length > 0 && rows.every((r) => selected.has(r.id)) });
      all.addEventListener('change', () => {
        for (const r of rows) if (all.checked) selected.add(r.id); else selected.delete(r.id);
        draw();
      });
      cols.push({
        title: '', cls: 'sel', head: all,
        cell: (d) => {
          const cb = h('input', { type: 'checkbox', 'aria-label': `Select ${readableId(d.id)}`, checked: selected.has(d.id) });
          cb.addEventListener('change', () => { if (cb.checked) selected.add(d.id); else selected.delete(d.id); bulk.update(); });
          return cb;
        },
      });
      bulk.update();
    }
    cols.push({ title: 'Device', cell: (d) => deviceLink(d.id) });
    for (const k of chosenColumns()) cols.push({ title: COLUMNS[k].title, cell: COLUMNS[k].cell });
    const t = table(cols, rows, { caption: 'Devices', empty: 'No device matches these filters.' });
    if (bulk) {
      const th = t.querySelector('th');
      th.append(cols[0].head);
    }
    clear(tableBox).append(t);
    pageNo.textContent = `Page ${pageIx + 1}`;
    prev.disabled = pageIx === 0;
    next.disabled = !cursors[pageIx + 1];
  }

  async function loadPage(ix) {
    const t0 = performance.now();
    const r = await api('GET', '/devices', { query: { ...filters, sort, fields: fields(), limit: PAGE, after: cursors[ix] }, what: 'Device list' });
    rows = r.devices || [];
    pageIx = ix;
    cursors[ix + 1] = r.next || null;
    draw();
    // Read by the browser test (issue 16: first page and paging timings).
    window.luacsTiming = { ...(window.luacsTiming || {}), devicesPageMs: performance.now() - t0 };
  }
  prev.addEventListener('click', () => loadPage(pageIx - 1).catch((e) => toast(e.message, 'error')));
  next.addEventListener('click', () => loadPage(pageIx + 1).catch((e) => toast(e.message, 'error')));

  try {
    await loadPage(0);
  } catch (err) {
    tableBox.append(errorBox(err));
  }

  // The count is a separate HEAD, asked once the first page is there:
  // counting a large selection is a scan, and it must not hold the page
  // back (nor take the API's database connection before it).
  api('HEAD', '/devices', { query: filters, raw: true }).then((res) => {
    const n = Number(res.headers.get('X-Total-Count'));
    count.textContent = `${fmtNum(n)} ${n === 1 ? 'device matches' : 'devices match'}`;
    count.dataset.total = String(n);
    if (bulk) bulk.update(n);
  }).catch(() => { count.textContent = ''; });
}

async function exportCsv(filters, sort) {
  const cols = chosenColumns().flatMap((k) => COLUMNS[k].fields);
  const res = await api('GET', '/devices', { query: { ...filters, sort, fields: ['id', ...cols].join(',') }, accept: 'text/csv', raw: true, what: 'CSV export' });
  const blob = await res.blob();
  const url = URL.createObjectURL(blob);
  const a = h('a', { href: url, download: `luacs-devices-${new Date().toISOString().slice(0, 19).replace(/:/g, '')}.csv` });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
  toast(`Exported ${fmtNum(blob.size)} bytes of CSV.`);
}

// ---- bulk actions ----

const ACTIONS = {
  tag: { text: 'Add a tag', needs: 'tag' },
  untag: { text: 'Remove a tag', needs: 'tag' },
  reboot: { text: 'Reboot', task: () => ({ name: 'reboot' }), danger: true },
  refresh: { text: 'Refresh parameters', needs: 'path', task: (v) => ({ name: 'refreshObject', objectName: v.path }) },
  download: { text: 'Firmware download', needs: 'url', task: (v) => ({ name: 'download', fileType: '1 Firmware Upgrade Image', url: v.url }), danger: true },
};

function bulkPanel(getSelected, getFilters) {
  let total = null;
  const target = h('select', { name: 'target' });
  const action = h('select', { name: 'action' }, Object.entries(ACTIONS).map(([k, a]) => h('option', { value: k, text: a.text })));
  const tag = h('input', { name: 'tag', autocomplete: 'off' });
  const path = h('input', { name: 'path', placeholder: 'Device.WiFi. (empty: everything)', autocomplete: 'off' });
  const url = h('input', { name: 'url', type: 'url', placeholder: 'http://acs.example.net:7567/…/firmware.bin', autocomplete: 'off' });
  const fileList = h('datalist', { id: 'bulk-files' });
  url.setAttribute('list', 'bulk-files');
  const wake = h('input', { type: 'checkbox', name: 'wake' });
  const fTag = field('Tag', tag), fPath = field('Object path', path), fUrl = field('Firmware URL', url, 'The URL the device downloads from (Files page, after an upload)');
  const fWake = h('label.check', wake, 'Wake the devices now (connection request) instead of waiting for their next inform');
  const status = h('div.job-status');
  const run = actionButton('Run', async () => {
    const a = ACTIONS[action.value];
    const v = { tag: tag.value.trim(), path: path.value.trim(), url: url.value.trim() };
    if (a.needs === 'tag' && !v.tag) throw new Error('Enter a tag first.');
    if (a.needs === 'url' && !v.url) throw new Error('Enter the firmware URL first.');
    const ids = getSelected();
    const onSelection = target.value === 'selected';
    const n = onSelection ? ids.length : total;
    if (onSelection && !ids.length) throw new Error('Select devices first (the boxes of the table), or choose “all matching”.');
    const what = `${a.text}${a.needs === 'tag' ? ' “' + v.tag + '”' : ''} on ${n === null ? 'every matching' : fmtNum(n)} device${n === 1 ? '' : 's'}`;
    if (!(await confirmDialog(`${what}?`, { action: a.text, danger: !!a.danger || !onSelection }))) return;
    if (onSelection) await runOnSelection(action.value, v, ids, status);
    else await runJob(action.value, v, getFilters(), wake.checked, status);
  }, { cls: 'primary' });

  const sync = () => {
    const a = ACTIONS[action.value];
    fTag.hidden = a.needs !== 'tag';
    fPath.hidden = a.needs !== 'path';
    fUrl.hidden = a.needs !== 'url';
    fWake.hidden = target.value === 'selected';
  };
  action.addEventListener('change', sync);
  target.addEventListener('change', sync);
  const el = h('details.bulk', h('summary', { text: 'Bulk action' }),
    h('div.bulk-form', field('Devices', target), field('Action', action), fTag, fPath, fUrl, fileList, fWake, run), status);
  el.addEventListener('toggle', () => {
    if (!el.open || fileList.childElementCount) return;
    firmwareFiles().then((files) => {
      for (const f of files) fileList.append(h('option', { value: f.url, label: f.name }));
    }).catch(() => {});
  });
  const update = (n) => {
    if (n !== undefined) total = n;
    const sel = getSelected().length;
    const was = target.value;
    clear(target).append(
      h('option', { value: 'selected', text: `The ${fmtNum(sel)} selected` }),
      h('option', { value: 'all', text: `All ${total === null ? '' : fmtNum(total) + ' '}matching the filters (a job)` }));
    target.value = was || (sel ? 'selected' : 'all');
    if (!sel && !was) target.value = 'all';
    sync();
  };
  update();
  return { el, update };
}

// The URL a device fetches a file from, as GET /files gives it: a bare path
// (no [files] url configured) is the file server (port 7567) of this host.
export function fileUrl(url) {
  return url && url.startsWith('/') ? `${location.protocol}//${location.hostname}:7567${url}` : url;
}

// The files a device may be sent, name → URL (GET /files needs an admin
// token; others type the URL).
export async function firmwareFiles() {
  if (!can('admin') || (session && session.scope)) return [];
  const r = await api('GET', '/files', { what: 'Files' });
  return (r.files || []).filter((f) => f.source === 'dir' && f.url).map((f) => ({ name: f.name, version: f.version, url: fileUrl(f.url) }));
}

// A job over the filter: POST /jobs, then its progress until every task
// it queued has ended.
async function runJob(kind, v, filters, wake, status) {
  const a = ACTIONS[kind];
  const task = a.task ? a.task(v) : { name: kind, args: { tag: v.tag } };
  const body = { filter: jobFilter(filters), task };
  if (wake) body.connection_request = true;
  const job = await api('POST', '/jobs', { body, what: 'Bulk job' });
  trackJob(job.id, status);
}

export function trackJob(id, status) {
  const bar = progressBar(`Job ${id} progress`);
  const state = h('p.muted');
  const cancel = actionButton('Cancel job', async () => {
    if (!(await confirmDialog(`Cancel job ${id}? Its tasks not run yet are withdrawn.`, { action: 'Cancel job' }))) return;
    const r = await api('DELETE', `/jobs/${id}`, { what: 'Cancel' });
    toast(`Job ${id} cancelled: ${fmtNum(r.withdrawn)} tasks withdrawn.`);
  });
  const box = h('section.job', { 'aria-label': `Job ${id}`, dataset: { job: String(id) } }, h('h3', { text: `Job ${id}` }), bar.el, state, cancel);
  status.prepend(box);
  let timer = null;
  const poll = async () => {
    try {
      const j = await api('GET', `/jobs/${id}`);
      const ended = (j.done || 0) + (j.faulted || 0) + (j.expired || 0);
      const finished = j.state === 'cancelled' || (j.state === 'queued' && (j.pending || 0) === 0);
      bar.set(finished && j.state !== 'cancelled' ? 1 : j.progress, `${fmtNum(ended)} of ${fmtNum(j.queued)} ended (${fmtNum(j.done)} done, ${fmtNum(j.faulted)} faulted, ${fmtNum(j.expired)} expired)`);
      let words = `${j.state}: ${fmtNum(j.matched)} devices matched, ${fmtNum(j.pending)} tasks still waiting for their device's session`;
      if (j.connection_request) words += `; woken ${fmtNum(j.connection_request.woken)} (${Object.entries(j.connection_request.outcomes || {}).map(([k, n]) => `${k} ${n}`).join(', ') || 'no outcome yet'})`;
      state.textContent = words;
      box.dataset.state = finished ? 'finished' : j.state;
      if (finished) {
        cancel.remove();
        state.textContent = `${j.state === 'cancelled' ? 'Cancelled' : 'Finished'}: ${words}`;
        return;
      }
    } catch (err) {
      state.textContent = err.message;
    }
    if (box.isConnected) timer = setTimeout(poll, 1000);
  };
  poll();
  return () => clearTimeout(timer);
}

// On the selected devices: tags change at once (PUT/DELETE), tasks are
// queued one per device and followed until each ended.
async function runOnSelection(kind, v, ids, status) {
  const a = ACTIONS[kind];
  const bar = progressBar('Bulk action progress');
  const words = h('p.muted');
  const box = h('section.job', { 'aria-label': a.text }, h('h3', { text: `${a.text} on ${ids.length} devices` }), bar.el, words);
  status.prepend(box);
  const failures = [];
  const taskIds = [];
  let n = 0;
  for (const id of ids) {
    try {
      if (kind === 'tag') await api('PUT', devicePath(id, `/tags/${encodeURIComponent(v.tag)}`));
      else if (kind === 'untag') await api('DELETE', devicePath(id, `/tags/${encodeURIComponent(v.tag)}`));
      else taskIds.push((await api('POST', devicePath(id, '/tasks'), { body: a.task(v) })).id);
    } catch (err) {
      failures.push(`${readableId(id)}: ${err.message}`);
    }
    n++;
    bar.set(a.task ? 0 : n / ids.length, `${n} of ${ids.length} ${a.task ? 'queued' : 'done'}`);
  }
  const fail = () => (failures.length ? ` ${failures.length} failed: ${failures.slice(0, 5).join('; ')}` : '');
  if (!a.task) {
    words.textContent = `Done.${fail()}`;
    box.dataset.state = 'finished';
    return;
  }
  // Follow the queued tasks until none is pending.
  const open = new Set(taskIds);
  let done = 0, faulted = 0;
  while (open.size && box.isConnected) {
    for (const t of [...open]) {
      try {
        const r = await api('GET', `/tasks/${t}`);
        if (r.state === 'pending') continue;
        open.delete(t);
        if (r.state === 'done') done++; else faulted++;
      } catch {
        open.delete(t);
        faulted++;
      }
    }
    bar.set((taskIds.length - open.size) / Math.max(1, taskIds.length), `${done} done, ${faulted} faulted, ${open.size} waiting for their device's session`);
    words.textContent = open.size ? 'Tasks run at each device’s next session (or now, when woken).' + fail() : `Finished.${fail()}`;
    if (open.size) await new Promise((r) => setTimeout(r, 2000));
  }
  box.dataset.state = 'finished';
}

// ---- pending adoption ----

// Adoptions started from this page, kept while the viewer stays: the
// device leaves the pending list once adopted, its result stays here.
const adoptions = new Map();

export async function renderPending(main) {
  const list = h('div');
  const done = h('div.adoptions', { 'aria-live': 'polite' });
  const fields = ['id', 'serial_number', 'product_class', 'manufacturer', 'remote_address', 'first_seen', 'last_inform', 'tags', ...both('DeviceInfo.ModelName')].join(',');
  main.append(
    h('div.page-head', h('h1', { text: 'Pending adoption' }),
      h('p.muted', { text: 'Devices seen for the first time wait here (tag “pending”, policies/default/20-adoption.lua). Adopt one to provision it at its next session.' })),
    h('div.toolbar', actionButton('Refresh', () => load())),
    list, h('h2', { text: 'Adoptions' }), done);

  const drawAdoptions = () => {
    clear(done);
    if (!adoptions.size) done.append(h('p.muted', { text: 'None started from this page yet.' }));
    for (const a of [...adoptions.values()].reverse()) done.append(a.el);
  };

  async function load() {
    const r = await api('GET', '/devices', { query: { tag: 'pending', sort: '-first_seen', fields, limit: 200 }, what: 'Pending devices' });
    const rows = (r.devices || []).filter((d) => !adoptions.has(d.id) || adoptions.get(d.id).state === 'fault');
    const cols = [
      { title: 'Device', cell: (d) => deviceLink(d.id) },
      { title: 'Serial', cell: (d) => d.serial_number ?? '' },
      { title: 'Model', cell: (d) => firstOf(d, both('DeviceInfo.ModelName')) || d.product_class || '' },
      { title: 'Manufacturer', cell: (d) => d.manufacturer ?? '' },
      { title: 'Address', cell: (d) => d.remote_address ?? '' },
      { title: 'First seen', cell: (d) => timeEl(d.first_seen) },
      { title: 'Last inform', cell: (d) => h('span', timeEl(d.last_inform), h('small.muted', { text: ` ${ago(d.last_inform)}` })) },
    ];
    if (can('operate')) {
      cols.push({
        title: 'Adopt', cls: 'actions',
        cell: (d) => {
          const identity = h('input', { placeholder: d.serial_number || 'identity', 'aria-label': `Identity for ${readableId(d.id)} (optional)`, size: 12 });
          return h('span.inline',
            identity,
            actionButton('Adopt', () => adopt(d, identity.value.trim(), drawAdoptions, load), { cls: 'primary', label: `Adopt ${readableId(d.id)}` }));
        },
      });
    }
    clear(list).append(table(cols, rows, { caption: 'Devices pending adoption, newest first', empty: 'No device is waiting for adoption.' }));
  }

  // A new device's session ends with the tag pending: show it at once.
  let es = null;
  let debounce = null;
  try {
    es = new EventSource('/events?tag=pending');
    es.addEventListener('session', () => {
      clearTimeout(debounce);
      debounce = setTimeout(() => load().catch(() => {}), 500);
    });
  } catch { /* the Refresh button still works */ }
  drawAdoptions();
  try {
    await load();
  } catch (err) {
    list.append(errorBox(err));
  }
  return () => { if (es) es.close(); clearTimeout(debounce); };
}

async function adopt(d, identity, redraw, reload) {
  const body = { name: 'tasks.adopt', args: identity ? { identity } : {} };
  const t = await api('POST', devicePath(d.id, '/tasks'), { body, what: 'Adopt' });
  const status = h('span.status', { text: `queued as task ${t.id}: runs at the device's next session` });
  const el = h('div.adoption', { dataset: { device: d.id, state: 'pending' } },
    deviceLink(d.id), ' ', status, ' ');
  const entry = { el, state: 'pending' };
  if (can('operate')) {
    el.append(actionButton('Connect now', async () => {
      status.textContent = 'waking the device…';
      const r = await api('POST', devicePath(d.id, '/connection_request'), { okStatuses: [504], what: 'Connect now' });
      if (entry.state === 'pending') status.textContent = r.outcome === 'informed' ? 'the device opened a session…' : `connection request: ${r.error || r.outcome}${r.detail ? ' (' + r.detail + ')' : ''}; the task waits for its next inform`;
    }));
  }
  adoptions.set(d.id, entry);
  redraw();
  reload().catch(() => {});
  // The task's state, until the session ran it.
  const poll = async () => {
    try {
      const r = await api('GET', `/tasks/${t.id}`);
      if (r.state === 'pending') return setTimeout(poll, 1500);
      entry.state = r.state;
      el.dataset.state = r.state;
      if (r.state === 'done') {
        const dev = await api('GET', devicePath(d.id), { query: { params: '-' } });
        status.textContent = `adopted as “${r.result?.result?.identity ?? identity ?? d.serial_number}”; tags now: ${(dev.tags || []).join(', ') || 'none'}`;
        el.append(h('span.tags', (dev.tags || []).map((x) => tagChip(x))));
      } else {
        const f = r.result?.fault;
        status.textContent = `failed: ${f ? f.code + ' ' + f.string : r.result?.error ?? r.state}`;
        el.classList.add('failed');
        reload().catch(() => {});
      }
    } catch (err) {
      status.textContent = err.message;
    }
    return null;
  };
  setTimeout(poll, 1000);
}
