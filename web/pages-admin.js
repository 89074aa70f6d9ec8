// Policy (status, reload, check) and Files (list, upload, delete).

import { api, can, session, upload } from './api.js';
import { progressBar } from './charts.js';
import {
  actionButton, clear, confirmDialog, errorBox, field, fmtBytes, fmtNum, h, table, timeEl, toast,
} from './dom.js';
import { fileUrl } from './pages-devices.js';

// A policy error names its place as file:line ("20-adoption.lua:12: ...");
// those are picked out so the eye finds them.
export function withPlaces(text) {
  const pre = h('pre.output');
  const re = /([\w./-]+\.lua):(\d+)/g;
  let at = 0;
  for (const m of String(text).matchAll(re)) {
    pre.append(text.slice(at, m.index), h('mark.place', { text: m[0] }));
    at = m.index + m[0].length;
  }
  pre.append(String(text).slice(at));
  return pre;
}

function list(items) {
  if (!items || !items.length) return h('span.muted', { text: 'none' });
  return h('span', items.join(', '));
}

// Total seconds in hooks, and what a call costs on average.
function hookTime(p) {
  const secs = Number(p.hook_seconds);
  const per = p.hook_calls ? ` (${((secs * 1e3) / p.hook_calls).toFixed(3)} ms a call)` : '';
  return `${secs.toFixed(3)} s${per}`;
}

// Each CWMP worker takes a new generation at its next session: one still on
// an older one has had no session since the reload.
function workersTable(p) {
  if (!Array.isArray(p.workers)) return null;
  return table([
    { title: 'Worker', cell: (w) => String(w.worker) },
    {
      title: 'Generation',
      cell: (w) => (w.generation === p.generation
        ? String(w.generation)
        : h('span.warn-text', { text: w.generation ? `${w.generation} (takes ${p.generation} at its next session)` : 'none yet (no session so far)' })),
    },
    { title: 'Lua memory', cell: (w) => fmtBytes(w.lua_bytes) },
  ], p.workers, { caption: 'Workers', empty: 'No workers.' });
}

export async function renderPolicy(main) {
  const statusBox = h('div');
  const out = h('div.policy-out', { 'aria-live': 'polite' });
  main.append(h('div.page-head', h('h1', { text: 'Policy' })), statusBox);

  async function load() {
    const p = await api('GET', '/policy', { what: 'Policy status' });
    clear(statusBox).append(
      h('dl.kv',
        h('dt', { text: 'Generation serving' }), h('dd.generation', { text: String(p.generation) }),
        h('dt', { text: 'Folder' }), h('dd', { text: p.dir || '(none configured)' }),
        h('dt', { text: 'Hooks' }), h('dd', list(p.hooks)),
        h('dt', { text: 'Tasks' }), h('dd', list(p.tasks)),
        h('dt', { text: 'Loads' }), h('dd', { text: `${fmtNum(p.loads)} (${fmtNum(p.load_failures)} failed)` }),
        h('dt', { text: 'Loaded' }), h('dd', timeEl(p.loaded_at)),
        h('dt', { text: 'Hook calls' }), h('dd', { text: `${fmtNum(p.hook_calls)} (${fmtNum(p.hook_errors)} errors)` }),
        p.hook_seconds !== undefined ? [h('dt', { text: 'Time in hooks' }), h('dd', { text: hookTime(p) })] : null),
      ...[workersTable(p),
        (p.warnings || []).length ? h('div.warnings', h('h2', { text: 'Warnings' }), withPlaces(p.warnings.join('\n'))) : null].filter(Boolean),
      p.last_error
        ? h('div.last-error', h('h2', {}, 'Last load error ', timeEl(p.last_error_at)), withPlaces(p.last_error))
        : h('p.ok-text', { text: 'The last load succeeded.' }));
  }

  if (can('admin')) {
    main.append(h('div.toolbar',
      actionButton('Reload policy', async () => {
        if (!(await confirmDialog('Load the policy folder again? New sessions run the new generation; a broken policy is refused and the current one keeps serving.', { action: 'Reload', danger: false }))) return;
        const r = await api('POST', '/policy/reload', { okStatuses: [422], what: 'Reload' });
        clear(out).append(
          h('h2', { text: r.ok ? `Reloaded: generation ${r.generation} serves` : `Reload refused: generation ${r.generation} keeps serving` }),
          withPlaces(r.answer || r.error || ''));
        out.dataset.result = r.ok ? 'ok' : 'failed';
        await load();
      }, { cls: 'primary' }),
      actionButton('Check without loading', async () => {
        const r = await api('POST', '/policy/check', { body: {}, okStatuses: [422], what: 'Check' });
        const lines = r.ok
          ? [`ok: ${r.dir}`, `files: ${(r.files || []).join(', ')}`, `hooks: ${(r.hooks || []).join(', ')}`, `tasks: ${(r.tasks || []).join(', ')}`]
          : [`error ${r.error}`];
        for (const w of r.warnings || []) lines.push(`warning ${w}`);
        clear(out).append(h('h2', { text: r.ok ? 'Check passed' : 'Check failed' }), withPlaces(lines.join('\n')));
        out.dataset.result = r.ok ? 'ok' : 'failed';
      })), out);
  } else {
    main.append(h('p.muted', { text: 'Reloading the policy needs an admin token.' }));
  }
  await load();
}

// ---- files ----

export async function renderFiles(main) {
  main.append(h('div.page-head', h('h1', { text: 'Files' }),
    h('p.muted', { text: 'Firmware images and other files the file server hands to devices.' })));
  if (!can('admin') || (session && session.scope)) {
    main.append(h('p', { text: 'Files are the whole fleet’s: listing, uploading and deleting them needs an admin token not scoped to a tag.' }));
    return;
  }
  const listBox = h('div');
  const file = h('input', { type: 'file', name: 'file', required: true });
  const name = h('input', { name: 'name', pattern: '[A-Za-z0-9_\\-][A-Za-z0-9._\\-]{0,199}', autocomplete: 'off', title: '1 to 200 of A-Z a-z 0-9 . _ -, not starting with a dot' });
  const version = h('input', { name: 'version', autocomplete: 'off' });
  const oui = h('input', { name: 'oui', autocomplete: 'off' });
  const pc = h('input', { name: 'product_class', autocomplete: 'off' });
  const bar = progressBar('Upload progress');
  bar.el.hidden = true;
  const submit = h('button.primary', { type: 'submit', text: 'Upload' });
  file.addEventListener('change', () => {
    if (file.files[0] && !name.value) name.value = file.files[0].name.replace(/[^A-Za-z0-9._-]/g, '_').replace(/^\.+/, '');
  });
  const form = h('form.upload', { 'aria-label': 'Upload a file' },
    h('h2', { text: 'Upload' }),
    field('File', file), field('Name on the server', name, 'A-Z a-z 0-9 . _ - only'),
    field('Version', version), field('OUI', oui), field('Product class', pc),
    h('div.buttons', submit), bar.el);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const f = file.files[0];
    if (!f) return toast('Choose a file first.', 'error');
    const n = name.value.trim() || f.name;
    submit.disabled = true;
    bar.el.hidden = false;
    bar.set(0, `${fmtBytes(0)} of ${fmtBytes(f.size)}`);
    try {
      const r = await upload(n, f, { version: version.value.trim(), oui: oui.value.trim(), product_class: pc.value.trim() },
        (frac) => bar.set(frac, `${fmtBytes(Math.round(frac * f.size))} of ${fmtBytes(f.size)}`));
      bar.set(1, `${r.name} stored, ${fmtBytes(r.size)}, sha256 ${String(r.sha256).slice(0, 12)}…`);
      toast(`${r.name} uploaded.`);
      form.reset();
      await load();
    } catch (err) {
      bar.set(0, err.message);
      toast(err.message, 'error');
    } finally {
      submit.disabled = false;
    }
  });
  main.append(listBox, form);

  async function load() {
    const r = await api('GET', '/files', { what: 'Files' });
    clear(listBox).append(table([
      { title: 'Name', cell: (f) => h('span.wrap', { text: f.name }) },
      { title: 'Source', cell: (f) => (f.source === 'dir' ? 'uploaded' : 'generated') },
      { title: 'Size', cell: (f) => fmtBytes(f.size) },
      { title: 'Version', cell: (f) => f.version ?? '' },
      { title: 'For', cell: (f) => [f.oui, f.product_class, f.device_id].filter(Boolean).join(' ') },
      { title: 'Modified', cell: (f) => timeEl(f.modified || f.uploaded || f.created) },
      { title: 'SHA-256', cell: (f) => (f.sha256 ? h('code', { title: f.sha256, text: `${f.sha256.slice(0, 12)}…` }) : h('span.muted', { text: 'not yet' })) },
      { title: 'URL', cell: (f) => (f.url ? h('code.wrap', { text: fileUrl(f.url) }) : h('span.muted', { text: 'not served' })) },
      {
        title: '', cls: 'actions',
        cell: (f) => actionButton('Delete', async () => {
          if (!(await confirmDialog(`Delete ${f.name}? Devices can no longer download it.`, { action: 'Delete file' }))) return;
          await api('DELETE', `/files/${encodeURIComponent(f.name)}`, { what: 'Delete file' });
          toast(`${f.name} deleted.`);
          await load();
        }, { label: `Delete ${f.name}` }),
      },
    ], r.files || [], { caption: 'Files', empty: 'No files yet.' }),
    r.truncated && (r.truncated.dir || r.truncated.store) ? h('p.muted', { text: `Only the first ${fmtNum(r.limit)} files of each source are listed.` }) : null);
  }
  try {
    await load();
  } catch (err) {
    listBox.append(errorBox(err));
  }
}
