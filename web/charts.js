// Small SVG charts of our own (no third-party code): a line chart of time
// series and a horizontal bar chart. Colours come from CSS classes
// (.s0 .. .s7), so light and dark themes restyle them.

import { fmtClock, h } from './dom.js';

const NS = 'http://www.w3.org/2000/svg';

function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== null && v !== undefined) el.setAttribute(k, String(v));
  for (const c of children) if (c) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return el;
}

// 0, 1, 2, 5, 10, 20, 50 ... : a round top for the y axis.
function niceMax(v) {
  if (!(v > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

function fmtY(v) {
  if (v === 0) return '0';
  if (Math.abs(v) >= 1000) return `${+(v / 1000).toFixed(1)}k`;
  if (Math.abs(v) < 1) return v.toFixed(2);
  return `${+v.toFixed(1)}`;
}

// t: unix seconds, oldest first; series: {label: [numbers]}. Returns a
// <figure> with the SVG, a legend and (for screen readers) a caption
// giving each series' last value and total.
export function lineChart({ title, t, series, unit = '', empty = 'No data yet.' }) {
  const W = 480, H = 200, L = 40, R = 8, T = 10, B = 24;
  const names = Object.keys(series || {});
  const fig = h('figure.chart', h('figcaption', { text: title }));
  if (!t || t.length < 2 || !names.length) {
    fig.append(h('p.muted', { text: empty }));
    return fig;
  }
  let max = 0;
  for (const n of names) for (const v of series[n]) if (v > max) max = v;
  max = niceMax(max);
  const t0 = t[0], t1 = t[t.length - 1] === t0 ? t0 + 1 : t[t.length - 1];
  const x = (ts) => L + ((ts - t0) / (t1 - t0)) * (W - L - R);
  const y = (v) => T + (1 - v / max) * (H - T - B);

  const svg = s('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': title, class: 'line' });
  for (let i = 0; i <= 4; i++) {
    const v = (max * i) / 4;
    svg.append(s('line', { x1: L, x2: W - R, y1: y(v), y2: y(v), class: 'grid' }));
    svg.append(s('text', { x: L - 4, y: y(v) + 4, class: 'axis', 'text-anchor': 'end' }, fmtY(v)));
  }
  for (let i = 0; i <= 4; i++) {
    const ts = t0 + ((t1 - t0) * i) / 4;
    svg.append(s('text', { x: x(ts), y: H - 6, class: 'axis', 'text-anchor': i === 0 ? 'start' : i === 4 ? 'end' : 'middle' }, fmtClock(ts * 1000)));
  }
  const legend = h('ul.legend');
  const summary = [];
  names.forEach((n, i) => {
    const vals = series[n];
    const pts = vals.map((v, k) => `${x(t[k]).toFixed(1)},${y(v || 0).toFixed(1)}`).join(' ');
    const line = s('polyline', { points: pts, class: `series s${i % 8}` });
    const total = vals.reduce((a, b) => a + (b || 0), 0);
    line.append(s('title', {}, `${n}: last ${fmtY(vals[vals.length - 1] || 0)}${unit}, total ${fmtY(total)}`));
    svg.append(line);
    legend.append(h('li', h('span.swatch', { class: `s${i % 8}` }), n));
    summary.push(`${n} last ${fmtY(vals[vals.length - 1] || 0)}${unit}`);
  });
  // A hover/focus read-out: the values at the pointer's time.
  const cursor = s('line', { x1: 0, x2: 0, y1: T, y2: H - B, class: 'cursor', visibility: 'hidden' });
  svg.append(cursor);
  const readout = h('p.readout', { 'aria-live': 'off' });
  svg.addEventListener('pointermove', (e) => {
    const r = svg.getBoundingClientRect();
    const px = ((e.clientX - r.left) / r.width) * W;
    const ts = t0 + ((px - L) / (W - L - R)) * (t1 - t0);
    let k = 0;
    for (let j = 0; j < t.length; j++) if (Math.abs(t[j] - ts) < Math.abs(t[k] - ts)) k = j;
    cursor.setAttribute('x1', x(t[k]));
    cursor.setAttribute('x2', x(t[k]));
    cursor.setAttribute('visibility', 'visible');
    readout.textContent = `${fmtClock(t[k] * 1000)} — ` + names.map((n) => `${n} ${fmtY(series[n][k] || 0)}${unit}`).join(', ');
  });
  svg.addEventListener('pointerleave', () => { cursor.setAttribute('visibility', 'hidden'); readout.textContent = ''; });
  fig.append(svg, legend, readout, h('p.sr-only', { text: summary.join('; ') }));
  return fig;
}

// items: [{label, count, href?}], largest first. Each bar is a link when
// it has an href (a bar of a model opens the devices of that model).
export function barChart({ title, items, empty = 'Nothing yet.' }) {
  const fig = h('figure.chart.bars', h('figcaption', { text: title }));
  if (!items || !items.length) {
    fig.append(h('p.muted', { text: empty }));
    return fig;
  }
  const max = Math.max(...items.map((i) => i.count), 1);
  const list = h('ol.barlist');
  items.forEach((it, i) => {
    const pct = Math.max(0.5, (100 * it.count) / max);
    const bar = s('svg', { viewBox: '0 0 100 10', preserveAspectRatio: 'none', class: 'bar', 'aria-hidden': 'true' },
      s('rect', { x: 0, y: 0, width: pct.toFixed(2), height: 10, class: `s${i % 8}` }));
    const label = h('span.bar-label', { text: it.label });
    const count = h('span.bar-count', { text: it.count.toLocaleString() });
    const row = it.href
      ? h('a.bar-row', { href: it.href, title: `${it.label}: ${it.count}` }, label, bar, count)
      : h('div.bar-row', { title: `${it.label}: ${it.count}` }, label, bar, count);
    list.append(h('li', row));
  });
  fig.append(list);
  return fig;
}

// A progress bar with its words beside it ("42 % — 420 of 1,000 done").
export function progressBar(label) {
  const bar = h('progress', { max: 1, value: 0, 'aria-label': label });
  const text = h('span.progress-text', { 'aria-live': 'polite' });
  const el = h('div.progress', bar, text);
  return {
    el,
    set(fraction, words) {
      bar.value = Math.max(0, Math.min(1, fraction || 0));
      text.textContent = `${Math.round(bar.value * 100)} %${words ? ' — ' + words : ''}`;
    },
  };
}
