// One device: identity and summary (TR-098 and TR-181 alike), actions
// (connect now, reboot, factory reset, firmware, delete), tags, tasks,
// faults, transfers, the session timeline and the parameter tree.

import { allPages, api, can, devicePath } from './api.js';
import {
  actionButton, ago, clear, confirmDialog, errorBox, field, fmtNum, h, readableId, table, tagChip,
  timeEl, toast,
} from './dom.js';
import { firmwareFiles } from './pages-devices.js';

// Summary rows: [label, path under the data model root]; the first path
// the device has wins.
const SUMMARY = [
  ['Model', ['DeviceInfo.ModelName']],
  ['Software version', ['DeviceInfo.SoftwareVersion']],
  ['Hardware version', ['DeviceInfo.HardwareVersion']],
  ['Uptime', ['DeviceInfo.UpTime']],
  ['Provisioning code', ['DeviceInfo.ProvisioningCode']],
  ['Periodic inform', ['ManagementServer.PeriodicInformInterval']],
  ['Connection request URL', ['ManagementServer.ConnectionRequestURL']],
  ['WAN address', ['WANDevice.1.WANConnectionDevice.1.WANIPConnection.1.ExternalIPAddress',
    'WANDevice.1.WANConnectionDevice.1.WANPPPConnection.1.ExternalIPAddress', 'IP.Interface.1.IPv4Address.1.IPAddress']],
  ['MAC address', ['Ethernet.Interface.1.MACAddress', 'Ethernet.Link.1.MACAddress',
    'WANDevice.1.WANConnectionDevice.1.WANIPConnection.1.MACAddress', 'LANDevice.1.LANEthernetInterfaceConfig.1.MACAddress']],
  ['Wi-Fi SSID', ['WiFi.SSID.1.SSID', 'LANDevice.1.WLANConfiguration.1.SSID']],
];

function uptime(v) {
  const s = Number(v);
  if (!Number.isFinite(s)) return v;
  const d = Math.floor(s / 86400), hh = Math.floor((s % 86400) / 3600), m = Math.floor((s % 3600) / 60);
  return `${d ? d + ' d ' : ''}${hh} h ${m} min`;
}

function dl(pairs) {
  return h('dl.kv', pairs.filter(Boolean).map(([k, v]) => [h('dt', { text: k }), h('dd', v === null || v === undefined || v === '' ? h('span.muted', { text: '—' }) : v)]));
}

function section(title, ...content) {
  return h('section.card-section', { 'aria-label': title }, h('h2', { text: title }), ...content);
}

export async function render(main, { arg: id, go }) {
  if (!id) return go('#/devices');
  const d = await api('GET', devicePath(id), { what: 'Device' });
  const root = d.data_model_root || (Object.keys(d.parameters).some((k) => k.startsWith('InternetGatewayDevice.')) ? 'InternetGatewayDevice' : 'Device');
  const param = (paths) => {
    for (const p of paths) {
      const x = d.parameters[`${root}.${p}`];
      if (x && x.value !== null && x.value !== '') return x.value;
    }
    return null;
  };
  const reload = () => go(`#/device/${encodeURIComponent(id)}`);
  const operate = can('operate');

  // ---- header and actions ----
  const head = h('div.page-head',
    h('h1', { text: readableId(d.id) }),
    h('p', d.online ? h('span.badge.ok', { text: 'online' }) : h('span.badge.off', { text: 'offline' }),
      ' last inform ', timeEl(d.last_inform), h('small.muted', { text: ` ${ago(d.last_inform)}` })));
  const actionOut = h('p.action-out', { 'aria-live': 'polite' });
  const actions = h('div.actions.toolbar', { role: 'group', 'aria-label': 'Device actions' });
  if (operate) {
    actions.append(
      actionButton('Connect now', () => connectNow(id, actionOut, reload), { cls: 'primary' }),
      actionButton('Reboot', async () => {
        if (!(await confirmDialog(`Reboot ${readableId(id)}? It is offline while it restarts.`, { action: 'Reboot' }))) return;
        await queueAndWake(id, { name: 'reboot' }, 'Reboot', actionOut);
      }),
      actionButton('Factory reset', async () => {
        const word = d.serial_number || 'RESET';
        if (!(await confirmDialog(`Factory reset ${readableId(id)}? The device loses its whole configuration.`, { action: 'Factory reset', typed: word, title: 'Factory reset' }))) return;
        await queueAndWake(id, { name: 'factoryReset' }, 'Factory reset', actionOut);
      }, { cls: 'danger' }));
  }
  if (can('admin')) {
    actions.append(actionButton('Delete device', async () => {
      if (!(await confirmDialog(`Delete ${readableId(id)} and everything kept about it (tasks, faults, sessions)? A device that informs again comes back as new.`, { action: 'Delete', typed: 'DELETE', title: 'Delete device' }))) return;
      await api('DELETE', devicePath(id), { what: 'Delete' });
      toast(`${readableId(id)} deleted.`);
      go('#/devices');
    }, { cls: 'danger' }));
  }

  // ---- identity and summary ----
  const identity = section('Identity',
    dl([
      ['Manufacturer', d.manufacturer], ['OUI', d.oui], ['Product class', d.product_class],
      ['Serial number', d.serial_number], ['Data model', `${root}. (${root === 'Device' ? 'TR-181' : 'TR-098'})`],
      ['Address', d.remote_address], ['First seen', timeEl(d.first_seen)], ['Last boot', timeEl(d.last_boot)],
      ['Last bootstrap', timeEl(d.last_bootstrap)], ['Last events', (d.last_events || []).join(', ')],
      d.client_certificate ? ['Client certificate', `${d.client_certificate.subject} (until ${new Date(d.client_certificate.not_after).toLocaleDateString()})`] : null,
    ]));
  const summary = section('Summary',
    dl(SUMMARY.map(([label, paths]) => {
      const v = param(paths);
      return [label, label === 'Uptime' && v ? uptime(v) : v];
    })));

  // ---- tags ----
  const tags = section('Tags', tagEditor(d, operate));

  main.append(head, actions, actionOut, h('div.grid2', identity, summary), tags);

  if (operate) main.append(section('Firmware', firmwareForm(id, actionOut)));

  // Tasks, transfers, faults, sessions and the tree fill in as they load.
  // The tree learns what is writable from the GetParameterNames tasks.
  const tasksBox = h('div');
  const transfersBox = h('div');
  const tree = parameterTree(d, root, operate);
  main.append(
    section('Faults', faultsTable(d, operate, reload)),
    section('Tasks', tasksBox),
    section('Transfers', transfersBox),
    section('Sessions', sessionTimeline(d.sessions || [])),
    section('Connection requests', connReqList(id)),
    section('Parameters', tree.el));
  const loadTasks = () => loadTaskLists(id, operate, tasksBox, transfersBox, () => loadTasks().catch(() => {})).then((all) => tree.learn(all));
  loadTasks().catch((err) => tasksBox.append(errorBox(err)));

  // This device's events refresh the page's lists (a task ran, a session ended).
  let es = null;
  try {
    es = new EventSource(`/events?device=${encodeURIComponent(id)}`);
    // The session's results reach PostgreSQL a moment after its event:
    // read again shortly after, too.
    let again = null;
    es.addEventListener('session', () => {
      loadTasks().catch(() => {});
      clearTimeout(again);
      again = setTimeout(() => loadTasks().catch(() => {}), 1500);
    });
  } catch { /* lists refresh on reload */ }
  return () => { if (es) es.close(); };
}

function tagEditor(d, operate) {
  const box = h('div.tags');
  const draw = () => {
    clear(box);
    for (const t of d.tags || []) {
      box.append(tagChip(t, operate ? async () => {
        await api('DELETE', devicePath(d.id, `/tags/${encodeURIComponent(t)}`), { what: `Remove tag ${t}` });
        d.tags = d.tags.filter((x) => x !== t);
        toast(`Tag ${t} removed.`);
        draw();
      } : null));
    }
    if (!(d.tags || []).length) box.append(h('span.muted', { text: 'No tags.' }));
  };
  draw();
  if (!operate) return box;
  const input = h('input', { name: 'tag', autocomplete: 'off', maxlength: 128, required: true });
  const form = h('form.inline', { 'aria-label': 'Add a tag' }, field('New tag', input), h('button', { type: 'submit', text: 'Add tag' }));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const t = input.value.trim();
    if (!t) return;
    try {
      await api('PUT', devicePath(d.id, `/tags/${encodeURIComponent(t)}`), { what: `Add tag ${t}` });
      if (!d.tags.includes(t)) d.tags.push(t);
      input.value = '';
      toast(`Tag ${t} added.`);
      draw();
    } catch (err) {
      toast(err.message, 'error');
    }
  });
  return h('div', box, form);
}

// POST /devices/{id}/connection_request and the outcome in words.
async function connectNow(id, out, reload) {
  out.textContent = 'Sending a connection request and waiting for the device’s session…';
  out.dataset.state = 'waiting';
  const r = await api('POST', devicePath(id, '/connection_request'), { query: { timeout: 30000 }, okStatuses: [504], what: 'Connect now' });
  const via = r.transport ? ` over ${r.transport}` : '';
  if (r.outcome === 'informed') {
    clear(out).append(`The device opened a session ${fmtNum(r.latency_ms)} ms after the request${via}. `,
      h('button', { type: 'button', class: 'small', text: 'Show what it reported', onclick: reload }));
    out.dataset.state = 'informed';
  } else {
    out.textContent = `No session: ${r.error || r.outcome}${r.detail ? ' — ' + r.detail : ''}${via}.`;
    out.dataset.state = r.outcome || 'error';
  }
}

// Queues a task and wakes the device (a connection request, waiting up to
// 20 s for the session to run it); the task runs at the next inform when
// the device cannot be woken. A server without connection requests
// answers 501 and queues nothing: then the task is queued alone.
async function queueAndWake(id, body, what, out) {
  out.textContent = `${what}: queuing and waking the device…`;
  let t;
  try {
    t = await api('POST', devicePath(id, '/tasks'), { query: { connection_request: 1, timeout: 20000 }, body, what });
  } catch (err) {
    if (err.status !== 501) throw err;
    t = await api('POST', devicePath(id, '/tasks'), { body, what });
  }
  if (t.state === 'done') out.textContent = `${what}: done (task ${t.id}).`;
  else if (t.state === 'fault') out.textContent = `${what}: the device refused it (task ${t.id}): ${faultWords(t.result)}`;
  else if (t.connection_request) out.textContent = `${what} queued (task ${t.id}); the device was not woken (${t.connection_request.error || t.connection_request.outcome}): it runs at its next inform.`;
  else out.textContent = `${what} queued (task ${t.id}): it runs at the device’s next session.`;
}

function faultWords(r) {
  if (r && r.fault) return `${r.fault.code} ${r.fault.string ?? ''}`;
  if (r && r.error) return String(r.error);
  return JSON.stringify(r);
}

function firmwareForm(id, out) {
  const files = h('select', { name: 'file' }, h('option', { value: '', text: 'Loading the files list…' }));
  const url = h('input', { name: 'url', type: 'url', placeholder: 'http://acs.example.net:7567/…/firmware.bin', autocomplete: 'off' });
  const urlOf = {};
  firmwareFiles().then((list) => {
    clear(files).append(h('option', { value: '', text: list.length ? 'Choose a file…' : 'No files (or none this token may list): type the URL' }));
    for (const f of list) {
      urlOf[f.name] = f.url;
      files.append(h('option', { value: f.name, text: `${f.name}${f.version ? ' (' + f.version + ')' : ''}` }));
    }
  }).catch(() => {
    clear(files).append(h('option', { value: '', text: 'The files list could not be read: type the URL' }));
  });
  files.addEventListener('change', () => { if (urlOf[files.value]) url.value = urlOf[files.value]; });
  const form = h('form.inline', { 'aria-label': 'Firmware download' },
    field('File', files), field('URL the device downloads', url, 'Filled in from the file chosen; any URL the device can reach will do'),
    h('button', { type: 'submit', text: 'Send firmware' }));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const u = url.value.trim();
    if (!u) return toast('Enter the URL of the firmware first.', 'error');
    if (!(await confirmDialog(`Send ${u} to ${readableId(id)} as a firmware upgrade? The device reboots into it.`, { action: 'Send firmware' }))) return;
    try {
      await queueAndWake(id, { name: 'download', fileType: '1 Firmware Upgrade Image', url: u }, 'Firmware download', out);
    } catch (err) {
      toast(err.message, 'error');
    }
  });
  return form;
}

function faultsTable(d, operate, reload) {
  const cols = [
    { title: 'Source', cell: (f) => f.source },
    { title: 'Code', cell: (f) => String(f.code ?? '') },
    { title: 'Message', cell: (f) => h('span.wrap', { text: f.message ?? '' }) },
    { title: 'Repeats', cell: (f) => String(f.retries ?? 0) },
    { title: 'First seen', cell: (f) => timeEl(f.first_seen) },
    { title: 'Last seen', cell: (f) => timeEl(f.last_seen) },
  ];
  if (operate) {
    cols.push({
      title: '', cls: 'actions',
      cell: (f) => actionButton('Clear', async () => {
        if (!(await confirmDialog(`Clear the ${f.source} fault of ${readableId(d.id)}?`, { action: 'Clear fault' }))) return;
        await api('DELETE', `/faults/${encodeURIComponent(d.id)}/${encodeURIComponent(f.source)}`, { what: 'Clear fault' });
        toast('Fault cleared.');
        reload();
      }, { label: `Clear the ${f.source} fault` }),
    });
  }
  return table(cols, d.faults || [], { empty: 'No faults.' });
}

function taskResult(t) {
  if (t.state === 'pending') return h('span.muted', { text: t.expires ? `expires ${new Date(t.expires).toLocaleString()}` : 'waits for the next session' });
  const r = t.result;
  if (!r) return '';
  if (r.fault) return h('span.error-text', { text: `${r.fault.code} ${r.fault.string ?? ''}` });
  if (r.error) return h('span.error-text', { text: String(r.error) });
  const text = JSON.stringify(r);
  return h('code.result', { title: text, text: text.length > 160 ? text.slice(0, 160) + '…' : text });
}

// The device's tasks (newest first) and transfers; resolves to every task read.
async function loadTaskLists(id, operate, box, transfersBox, again) {
  const all = await allPages('/tasks', 'tasks', { device: id, limit: 500 }, 2000);
  const shown = all.slice(-50).reverse(); // newest first
  const cols = [
    { title: 'Id', cell: (t) => String(t.id) },
    { title: 'Task', cell: (t) => h('span', t.name, ' ', h('code.args', { text: JSON.stringify(t.args ?? {}) })) },
    { title: 'State', cell: (t) => h('span.badge', { class: `st-${t.state}`, text: t.state }) },
    { title: 'Created', cell: (t) => timeEl(t.created) },
    { title: 'Finished', cell: (t) => timeEl(t.finished) },
    { title: 'Result', cell: taskResult },
  ];
  if (operate) {
    cols.push({
      title: '', cls: 'actions',
      cell: (t) => {
        if (t.state === 'pending') {
          return actionButton('Delete', async () => {
            if (!(await confirmDialog(`Delete pending task ${t.id} (${t.name})?`, { action: 'Delete task' }))) return;
            await api('DELETE', `/tasks/${t.id}`, { what: 'Delete task' });
            toast(`Task ${t.id} deleted.`);
            again();
          }, { label: `Delete task ${t.id}` });
        }
        if (t.state === 'fault' || t.state === 'expired') {
          return actionButton('Retry', async () => {
            const r = await api('POST', `/tasks/${t.id}/retry`, { what: 'Retry' });
            toast(`Queued again as task ${r.id}.`);
            again();
          }, { label: `Retry task ${t.id}` });
        }
        return '';
      },
    });
  }
  const counts = {};
  for (const t of all) counts[t.state] = (counts[t.state] || 0) + 1;
  clear(box).append(
    h('p.muted', { text: Object.entries(counts).map(([s, n]) => `${n} ${s}`).join(', ') || 'No tasks.' }),
    table(cols, shown, { empty: 'No tasks.' }));
  // Transfers: the Download and Upload tasks and how they ended.
  const transfers = all.filter((t) => /^(Download|Upload)$/.test(t.name)).reverse();
  clear(transfersBox).append(table([
    { title: 'Task', cell: (t) => `${t.name} ${t.id}` },
    { title: 'URL', cell: (t) => h('span.wrap', { text: t.args?.url ?? '' }) },
    { title: 'Type', cell: (t) => t.args?.file_type ?? '' },
    { title: 'State', cell: (t) => h('span.badge', { class: `st-${t.state}`, text: t.state }) },
    { title: 'Queued', cell: (t) => timeEl(t.created) },
    { title: 'Result', cell: taskResult },
  ], transfers, { empty: 'No firmware or file transfers.' }));
  return all;
}

function sessionTimeline(sessions) {
  if (!sessions.length) return h('p.muted', { text: 'No session logged yet.' });
  const max = Math.max(...sessions.map((s) => s.summary?.duration_ms || 0), 1);
  const list = h('ol.timeline');
  for (const s of sessions) {
    const sum = s.summary || {};
    const ok = sum.result === 'completed';
    const width = Math.max(1, Math.round((100 * (sum.duration_ms || 0)) / max));
    const bar = h('span.dur');
    bar.style.width = `${width}%`;
    list.append(h('li', { class: ok ? 'ok' : 'bad' },
      h('div.tl-head', timeEl(s.at), ' ', h('span.badge', { class: ok ? 'ok' : 'bad', text: sum.result || '?' }),
        ' ', h('span.muted', { text: `${fmtNum(sum.duration_ms)} ms, ${fmtNum(sum.cpe_requests)} CPE request${sum.cpe_requests === 1 ? '' : 's'}` })),
      h('div.tl-bar', bar),
      (sum.rpcs || []).length ? h('div.tl-rpcs', (sum.rpcs || []).map(([m, o]) => h('span.rpc', { class: o === 'ok' ? 'ok' : 'bad', text: `${m}: ${o}` }))) : null,
      sum.detail ? h('div.muted', { text: sum.detail }) : null));
  }
  return list;
}

function connReqList(id) {
  const box = h('div', h('p.muted', { text: 'Loading…' }));
  api('GET', devicePath(id, '/connection_requests'), { query: { limit: 10 } }).then((r) => {
    clear(box).append(table([
      { title: 'Requested', cell: (c) => timeEl(c.requested) },
      { title: 'Transport', cell: (c) => c.transport ?? '' },
      { title: 'Outcome', cell: (c) => c.outcome ?? 'running' },
      { title: 'Detail', cell: (c) => c.detail ?? '' },
      { title: 'Latency', cell: (c) => (c.latency_ms === null || c.latency_ms === undefined ? '' : `${fmtNum(c.latency_ms)} ms`) },
    ], r.connection_requests || [], { empty: 'No connection request yet.' }));
  }).catch((err) => clear(box).append(errorBox(err)));
  return box;
}

// ---- the parameter tree ----

// Flat {name: {value, type, read_at}} -> nested nodes. Objects are built
// lazily: a node's children are rendered when it is first opened, so a
// device with thousands of parameters opens at once.
function buildTree(params) {
  const top = { name: '', children: new Map() };
  for (const [name, p] of Object.entries(params)) {
    const parts = name.split('.');
    let node = top, path = '';
    for (let i = 0; i < parts.length; i++) {
      const last = i === parts.length - 1;
      if (last && parts[i] === '') break; // an object's own entry "X.Y."
      path += parts[i] + (last ? '' : '.');
      if (!node.children.has(parts[i])) node.children.set(parts[i], { name: path, children: new Map(), leaf: null });
      node = node.children.get(parts[i]);
      if (last) node.leaf = p;
    }
  }
  return top;
}

const byKey = ([a], [b]) => {
  const na = Number(a), nb = Number(b);
  if (Number.isInteger(na) && Number.isInteger(nb)) return na - nb;
  return a.localeCompare(b);
};

// What the device said is writable: the results of its GetParameterNames
// tasks ({name: true|false}; `tasks` in id order, as GET /tasks gives
// them, so newer answers win). Names it never answered for are unknown.
function writability(tasks) {
  const w = new Map();
  for (const t of tasks) {
    if (t.name !== 'GetParameterNames' || t.state !== 'done' || !t.result || typeof t.result !== 'object') continue;
    for (const [n, v] of Object.entries(t.result)) if (typeof v === 'boolean') w.set(n, v);
  }
  return w;
}

function parameterTree(d, root, operate) {
  const params = d.parameters || {};
  const names = Object.keys(params);
  const search = h('input', { type: 'search', placeholder: 'Name or value', autocomplete: 'off' });
  const out = h('div.tree');
  let writable = new Map();
  const info = h('p.muted');
  const say = () => {
    const known = names.filter((n) => writable.has(n)).length;
    info.textContent = `${fmtNum(names.length)} parameters stored.` + (!operate ? '' : known
      ? ` Writability read for ${fmtNum(known)} (Read writability again after a firmware change); values are edited as SetParameterValues tasks.`
      : ' Writability not read yet: Edit is offered everywhere and the device refuses what is read-only (a faulted task); Read writability asks it.');
  };

  // A leaf's action: Edit where writable (or not known), a badge where the
  // device said read-only.
  const action = (row, name, p) => {
    row.querySelector('.pact')?.remove();
    const w = writable.get(name);
    if (w === false) return row.append(h('span.pact.badge', { text: 'read-only', title: 'The device reports it read-only (GetParameterNames)' }));
    const b = actionButton('Edit', () => editValue(row, d.id, name, p), { label: `Edit ${name}` });
    b.classList.add('pact');
    if (w === undefined) b.title = 'Writability not read yet';
    row.append(b);
  };

  const leafRow = (name, p) => {
    const row = h('div.leaf', { dataset: { name } },
      h('span.pname', { text: name.slice(name.lastIndexOf('.') + 1), title: name }),
      h('span.pvalue', { text: p.value === null ? '' : String(p.value) }),
      h('span.ptype.muted', { text: p.type || '' }),
      h('small.muted', { title: p.read_at ? `read ${new Date(p.read_at).toLocaleString()}` : '', text: p.read_at ? ago(p.read_at) : '' }));
    if (operate) action(row, name, p);
    return row;
  };

  const learn = (tasks) => {
    const next = writability(tasks);
    if (next.size === writable.size && [...next].every(([n, v]) => writable.get(n) === v)) return;
    writable = next;
    say();
    if (!operate) return;
    for (const row of out.querySelectorAll('div.leaf')) {
      const n = row.dataset.name;
      if (params[n]) action(row, n, params[n]);
    }
  };
  say();

  const readWritability = actionButton('Read writability', async () => {
    const t = await api('POST', devicePath(d.id, '/tasks'), { body: { name: 'GetParameterNames', args: { path: `${root}.`, next_level: false } }, what: 'Read writability' });
    toast(`GetParameterNames of ${root}. queued (task ${t.id}): the Edit buttons follow its answer after the device’s next session.`);
  }, { label: 'Read writability', cls: 'small' });

  const refreshBtn = (path) => actionButton('Refresh', async () => {
    const t = await api('POST', devicePath(d.id, '/tasks'), { body: { name: 'refreshObject', objectName: path }, what: 'Refresh' });
    toast(`Refresh of ${path || 'everything'} queued (task ${t.id}): it runs at the device’s next session.`);
  }, { label: `Refresh ${path || 'all parameters'}`, cls: 'small' });

  const objectNode = (key, node) => {
    const summary = h('summary', h('span.pname', { text: key }), h('span.muted', { text: ` ${node.children.size}` }));
    if (operate) summary.append(refreshBtn(node.name));
    const det = h('details.obj', { dataset: { name: node.name } }, summary);
    let built = false;
    det.addEventListener('toggle', () => {
      if (!det.open || built) return;
      built = true;
      det.append(children(node));
    });
    return det;
  };

  const children = (node) => {
    const box = h('div.children');
    for (const [key, child] of [...node.children.entries()].sort(byKey)) {
      if (child.children.size) box.append(objectNode(key, child));
      else if (child.leaf) box.append(leafRow(child.name, child.leaf));
    }
    return box;
  };

  const tree = buildTree(params);
  const drawTree = () => {
    clear(out);
    if (!names.length) out.append(h('p.muted', { text: 'No parameters stored yet: refresh to read them from the device.' }));
    out.append(children(tree));
    // The data model root opens by itself.
    const first = out.querySelector('details.obj');
    if (first) first.open = true;
  };
  let timer = null;
  search.addEventListener('input', () => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      const q = search.value.trim().toLowerCase();
      if (!q) return drawTree();
      const hits = names.filter((n) => n.toLowerCase().includes(q) || String(params[n].value ?? '').toLowerCase().includes(q)).sort();
      clear(out).append(h('p.muted', { text: `${fmtNum(hits.length)} match${hits.length === 1 ? '' : 'es'}${hits.length > 500 ? ' (first 500 shown)' : ''}` }));
      for (const n of hits.slice(0, 500)) {
        const row = leafRow(n, params[n]);
        row.querySelector('.pname').textContent = n;
        out.append(row);
      }
    }, 150);
  });
  drawTree();
  const el = h('div', h('div.toolbar', field('Search parameters', search), operate ? [refreshBtn(`${root}.`), readWritability] : null), info, out);
  return { el, learn };
}

function editValue(row, deviceId, name, p) {
  if (row.querySelector('form')) return;
  const type = (p.type || 'string').replace(/^xsd:/, '');
  const input = type === 'boolean'
    ? h('select', { 'aria-label': `New value of ${name}` }, ['true', 'false'].map((v) => h('option', { value: v, text: v, selected: ['1', 'true'].includes(String(p.value)) === (v === 'true') })))
    : h('input', { value: p.value ?? '', 'aria-label': `New value of ${name}`, inputmode: /int|long/i.test(type) ? 'numeric' : null });
  const form = h('form.edit', input, h('button.primary', { type: 'submit', text: 'Save' }),
    h('button', { type: 'button', text: 'Cancel', onclick: () => form.remove() }));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const value = input.value;
    if (/int|long/i.test(type) && !/^-?\d+$/.test(value)) return toast(`${name} takes a whole number (${type}).`, 'error');
    try {
      const t = await api('POST', devicePath(deviceId, '/tasks'), {
        body: { name: 'setParameterValues', parameterValues: [[name, value, type]] }, what: 'Set value',
      });
      form.remove();
      row.classList.add('queued');
      row.append(h('span.badge.st-pending', { text: `task ${t.id} queued` }));
      toast(`SetParameterValues of ${name} queued (task ${t.id}): it runs at the device’s next session. Use Connect now to run it at once.`);
    } catch (err) {
      toast(err.message, 'error');
    }
  });
  row.append(form);
  input.focus();
}
