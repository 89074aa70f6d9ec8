// Overview: the fleet at a glance, for a help desk and for a wall screen.
// Figures from GET /overview, charts from GET /metrics/history; refreshed
// every 30 s while the page is open.

import { api, query } from './api.js';
import { barChart, lineChart } from './charts.js';
import { clear, errorBox, fmtNum, fmtTime, h } from './dom.js';

// How GET /metrics/history's series are grouped into charts: a series
// whose name matches goes to the first chart that takes it; the label is
// the part after the prefix ("rejected.overload" -> "overload").
const CHARTS = [
  { title: 'Sessions per second', match: /^sessions?(\.completed)?$|^sessions?[._]completed$/, perSecond: true, unit: '/s' },
  { title: '503s to CPEs by reason', match: /^(rejected|refusals?|refused|503)[._]/ },
  { title: 'Faults (RPCs answered with a CWMP fault)', match: /^faults?([._]|$)/ },
  { title: 'Connection requests by outcome', match: /^(connection_requests?|connreq|cr)[._]/ },
  { title: 'Sessions in flight', match: /in_flight|inflight|live/, gauge: true },
  { title: 'Other counters', match: /./ },
];

function label(name) {
  const dot = name.lastIndexOf('.');
  return dot >= 0 && dot < name.length - 1 ? name.slice(dot + 1) : name;
}

function group(hist) {
  const taken = new Set();
  const out = [];
  for (const c of CHARTS) {
    const series = {};
    for (const [name, vals] of Object.entries(hist.series || {})) {
      if (taken.has(name) || !c.match.test(name)) continue;
      taken.add(name);
      const div = c.perSecond ? (hist.step_s || 60) : 1;
      series[c.title.startsWith('Other') || c.perSecond || c.gauge ? name : label(name)] = vals.map((v) => (v || 0) / div);
    }
    const step = hist.step_s || 60;
    const per = c.perSecond || c.gauge ? '' : ` (per ${step === 60 ? 'minute' : step + ' s'})`;
    if (Object.keys(series).length || !c.title.startsWith('Other')) out.push({ ...c, title: c.title + per, series });
  }
  return out;
}

function card(title, value, href, hint) {
  const body = [h('span.card-value', { text: fmtNum(value) }), h('span.card-title', { text: title })];
  return h('li.card', href ? h('a', { href, title: hint }, body) : h('div', { title: hint }, body));
}

function breakdown(items, key) {
  return (items || []).map((it) => ({
    label: it.other ? 'others' : (it.value === null || it.value === '' ? '(unknown)' : String(it.value)),
    count: it.count,
    href: it.other || it.value === null ? null : `#/devices${query({ [key]: it.value })}`,
  }));
}

export async function render(main) {
  let minutes = Number(localStorage.getItem('luacs.overview.minutes')) || 60;
  const stamp = h('p.muted.stamp', { 'aria-live': 'polite' });
  const cards = h('ul.cards', { 'aria-label': 'Fleet figures' });
  const charts = h('div.charts');
  const bars = h('div.charts');
  const range = h('div.segmented', { role: 'group', 'aria-label': 'Chart range' });
  for (const [m, text] of [[60, 'Last hour'], [1440, 'Last day']]) {
    const b = h('button', { type: 'button', text, 'aria-pressed': String(m === minutes) });
    b.addEventListener('click', () => {
      minutes = m;
      localStorage.setItem('luacs.overview.minutes', String(m));
      for (const x of range.children) x.setAttribute('aria-pressed', String(x === b));
      load();
    });
    range.append(b);
  }
  main.append(h('div.page-head', h('h1', { text: 'Overview' }), stamp),
    cards, h('div.section-head', h('h2', { text: 'Activity' }), range), charts,
    h('h2', { text: 'Fleet' }), bars);

  let busy = false;
  async function load() {
    if (busy) return;
    busy = true;
    try {
      const [ov, hist] = await Promise.allSettled([
        api('GET', '/overview', { what: 'Fleet figures' }),
        api('GET', '/metrics/history', { query: { minutes }, what: 'Charts' }),
      ]);
      clear(cards);
      clear(bars);
      if (ov.status === 'fulfilled') {
        const o = ov.value;
        cards.append(
          card('devices known', o.devices, '#/devices'),
          card('online now', o.online, '#/devices?online=true'),
          card('informed in 24 h', o.informed_24h, null, 'devices whose last Inform is less than 24 hours old'),
          card('pending adoption', o.pending, '#/pending'),
          card('with faults', o.faulty, '#/devices?faulty=true'));
        bars.append(
          barChart({ title: 'By model', items: breakdown(o.by_model, 'model') }),
          barChart({ title: 'By software version', items: breakdown(o.by_software, 'software_version') }),
          barChart({ title: 'By tag', items: breakdown(o.by_tag, 'tag') }));
        stamp.textContent = `Figures of ${fmtTime(o.at)}; refreshed every 30 s.`;
      } else {
        cards.append(h('li', errorBox(ov.reason)));
      }
      clear(charts);
      if (hist.status === 'fulfilled') {
        for (const c of group(hist.value)) {
          charts.append(lineChart({ title: c.title, t: hist.value.t, series: c.series, unit: c.unit || '', empty: 'Nothing counted in this range.' }));
        }
      } else {
        charts.append(errorBox(hist.reason));
      }
    } finally {
      busy = false;
    }
  }
  await load();
  const timer = setInterval(() => { if (!document.hidden) load().catch(() => {}); }, 30000);
  return () => clearInterval(timer);
}
