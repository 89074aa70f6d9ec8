// DOM helpers. Everything the page shows is built with createElement and
// textContent: values come from CPEs (a device chooses its own serial
// number, model and parameter values), so no string ever becomes markup.

// h('tag.class1.class2', {attrs}, ...children). Attributes: `class`,
// `text`, `on<event>` (a function), `dataset` (object), booleans as
// presence; everything else through setAttribute. Children: nodes,
// strings (text), arrays, null/false (skipped).
export function h(spec, attrs, ...children) {
  const [tag, ...classes] = spec.split('.');
  const el = document.createElement(tag || 'div');
  if (classes.length) el.className = classes.join(' ');
  if (attrs && (typeof attrs !== 'object' || attrs instanceof Node || Array.isArray(attrs))) {
    children.unshift(attrs);
    attrs = null;
  }
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === 'class') el.className = [el.className, v].filter(Boolean).join(' ');
    else if (k === 'text') el.textContent = String(v);
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'value') el.value = v;
    else if (k === 'checked') el.checked = !!v;
    else if (v === true) el.setAttribute(k, '');
    else el.setAttribute(k, String(v));
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

// A labelled form field: <label>Text <input></label> keeps the label and
// the control together for screen readers and for clicks.
export function field(label, control, hint) {
  const id = control.id || `f-${++field.n}`;
  control.id = id;
  return h('div.field', h('label', { for: id, text: label }), control,
           hint ? h('small.hint', { text: hint }) : null);
}
field.n = 0;

// ---- time, in the viewer's own zone ----

const dateFmt = new Intl.DateTimeFormat(undefined, {
  year: 'numeric', month: 'short', day: 'numeric',
  hour: '2-digit', minute: '2-digit', second: '2-digit',
});
const timeFmt = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' });

export function fmtTime(iso) {
  if (!iso) return '—';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  return dateFmt.format(d);
}

export function fmtClock(ms) {
  return timeFmt.format(new Date(ms));
}

export function ago(iso) {
  if (!iso) return '';
  const s = Math.round((Date.now() - new Date(iso).getTime()) / 1000);
  if (Number.isNaN(s)) return '';
  const abs = Math.abs(s);
  const unit = abs < 90 ? [abs, 's'] : abs < 5400 ? [Math.round(abs / 60), 'min']
    : abs < 129600 ? [Math.round(abs / 3600), 'h'] : [Math.round(abs / 86400), 'd'];
  return s >= 0 ? `${unit[0]} ${unit[1]} ago` : `in ${unit[0]} ${unit[1]}`;
}

// <time> with the local time as text and the UTC instant as its datetime
// and tooltip.
export function timeEl(iso) {
  if (!iso) return h('span.muted', { text: '—' });
  return h('time', { datetime: iso, title: `${iso} (${ago(iso)})`, text: fmtTime(iso) });
}

export function fmtNum(n) {
  return typeof n === 'number' ? n.toLocaleString() : (n ?? '—');
}

export function fmtBytes(n) {
  if (typeof n !== 'number') return '—';
  const u = ['B', 'KB', 'MB', 'GB', 'TB'];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
  return `${i ? n.toFixed(1) : n} ${u[i]}`;
}

// ---- messages ----

// The polite live region in index.html reads these out; they also stay
// visible a few seconds.
export function toast(text, kind = 'info') {
  const box = document.getElementById('toasts');
  if (!box) return;
  const t = h('div.toast', { class: kind, role: kind === 'error' ? 'alert' : 'status', text });
  box.append(t);
  setTimeout(() => t.remove(), kind === 'error' ? 9000 : 4000);
}

export function errorBox(err) {
  return h('p.error', { role: 'alert', text: err && err.message ? err.message : String(err) });
}

// A modal confirmation. `typed`: the operator must type this text (a
// factory reset, a delete) before the button enables. Resolves true/false.
export function confirmDialog(message, { title = 'Please confirm', action = 'Confirm', typed = null, danger = true } = {}) {
  return new Promise((resolve) => {
    const input = typed ? h('input', { type: 'text', autocomplete: 'off', spellcheck: 'false' }) : null;
    const ok = h('button', { type: 'submit', class: danger ? 'danger' : 'primary', text: action, disabled: !!typed });
    const cancel = h('button', { type: 'button', text: 'Cancel' });
    const form = h('form', { method: 'dialog' },
      h('h2', { text: title }),
      h('p', { text: message }),
      typed ? field(`Type ${typed} to confirm`, input) : null,
      h('div.buttons', cancel, ok));
    const dlg = h('dialog.confirm', { 'aria-label': title }, form);
    let answer = false;
    if (input) input.addEventListener('input', () => { ok.disabled = input.value !== typed; });
    cancel.addEventListener('click', () => dlg.close());
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      if (typed && input.value !== typed) return;
      answer = true;
      dlg.close();
    });
    dlg.addEventListener('close', () => { dlg.remove(); resolve(answer); });
    document.body.append(dlg);
    dlg.showModal();
    (input || cancel).focus();
  });
}

// A button that disables itself while its async handler runs and shows
// the handler's error in words (toast) instead of failing silently.
export function actionButton(text, handler, { cls = '', title = null, label = null } = {}) {
  const b = h('button', { type: 'button', class: cls, text, title, 'aria-label': label });
  b.addEventListener('click', async (e) => {
    if (b.disabled) return;
    b.disabled = true;
    try {
      await handler(e);
    } catch (err) {
      toast(err.message || String(err), 'error');
    } finally {
      b.disabled = false;
    }
  });
  return b;
}

export function badge(text, kind = '') {
  return h('span.badge', { class: kind, text });
}

export function tagChip(tag, onRemove) {
  const chip = h('span.tag', h('a', { href: `#/devices?tag=${encodeURIComponent(tag)}`, text: tag }));
  if (onRemove) {
    chip.append(actionButton('×', onRemove, { cls: 'chip-x', title: `Remove tag ${tag}`, label: `Remove tag ${tag}` }));
  }
  return chip;
}

// A <table> from column specs [{title, cell(row) -> node|string, cls}].
export function table(columns, rows, { caption = null, empty = 'Nothing to show.' } = {}) {
  const thead = h('thead', h('tr', columns.map((c) => h('th', { scope: 'col', class: c.cls, text: c.title }))));
  const tbody = h('tbody');
  for (const r of rows) {
    tbody.append(h('tr', columns.map((c) => h('td', { class: c.cls, dataset: { label: c.title } }, c.cell(r)))));
  }
  if (!rows.length) tbody.append(h('tr', h('td.empty', { colspan: columns.length, text: empty })));
  return h('div.table-wrap', h('table', caption ? h('caption', { text: caption }) : null, thead, tbody));
}

// A device id as stored is GenieACS-escaped (spaces as %20); show it as
// the operator would read it, keep the real id for links.
export function deviceLink(id, text) {
  return h('a', { href: `#/device/${encodeURIComponent(id)}`, text: text ?? readableId(id) });
}

export function readableId(id) {
  try {
    return decodeURIComponent(id);
  } catch {
    return id;
  }
}
