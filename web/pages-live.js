// Live: GET /events (Server-Sent Events, cookie session) as a scrolling
// feed, filtered by tag or device on the server side.

import { query } from './api.js';
import { clear, deviceLink, field, fmtTime, h } from './dom.js';

const MAX_ROWS = 500;

function describe(type, d) {
  switch (type) {
    case 'session':
      return `session ${d.outcome}${d.detail ? ' (' + d.detail + ')' : ''}, ${d.duration_ms} ms${d.faults ? ', ' + d.faults + ' faults' : ''}${d.task_results ? ', ' + d.task_results + ' task results' : ''}`;
    case 'fault':
      return `fault ${d.source} ${d.code}: ${d.message}`;
    case 'task':
      return `task ${d.task} ${d.result}${d.data !== undefined ? ': ' + JSON.stringify(d.data).slice(0, 200) : ''}`;
    case 'policy':
      return d.ok ? `policy generation ${d.generation} loaded (${d.why})` : `policy reload failed (${d.why}), generation ${d.generation} keeps serving: ${d.error}`;
    case 'job':
      return `job ${d.id} ${d.state}, ${d.matched} devices matched`;
    case 'dropped':
      return `the stream was dropped (${d.reason}): reconnecting`;
    default:
      return JSON.stringify(d);
  }
}

export async function render(main, { params, go }) {
  const tag = h('input', { name: 'tag', value: params.get('tag') || '', autocomplete: 'off' });
  const dev = h('input', { name: 'device', value: params.get('device') || '', autocomplete: 'off', placeholder: 'device id' });
  const form = h('form.filters', { role: 'search', 'aria-label': 'Event filters' },
    field('Tag', tag), field('Device', dev),
    h('div.buttons', h('button.primary', { type: 'submit', text: 'Follow' })));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    go(`#/live${query({ tag: tag.value.trim(), device: dev.value.trim() })}`);
  });
  const state = h('p.muted.stream-state', { 'aria-live': 'polite' });
  const pause = h('button', { type: 'button', text: 'Pause', 'aria-pressed': 'false' });
  const clearBtn = h('button', { type: 'button', text: 'Clear' });
  const feed = h('ol.feed', { 'aria-label': 'Events, newest first' });
  let paused = false;
  pause.addEventListener('click', () => {
    paused = !paused;
    pause.setAttribute('aria-pressed', String(paused));
    pause.textContent = paused ? 'Resume' : 'Pause';
  });
  clearBtn.addEventListener('click', () => clear(feed));
  main.append(h('div.page-head', h('h1', { text: 'Live events' }), state), form, h('div.toolbar', pause, clearBtn), feed);

  const url = `/events${query({ tag: params.get('tag'), device: params.get('device') })}`;
  let es = null;
  let retry = null;
  const connect = () => {
    es = new EventSource(url);
    es.onopen = () => { state.textContent = `Connected ${params.get('tag') || params.get('device') ? '(filtered)' : '(every event)'}.`; };
    es.onerror = () => { state.textContent = 'Disconnected: reconnecting…'; };
    for (const type of ['session', 'fault', 'task', 'policy', 'job', 'dropped']) {
      es.addEventListener(type, (ev) => {
        let d;
        try { d = JSON.parse(ev.data); } catch { d = { raw: ev.data }; }
        if (type === 'dropped') {
          es.close();
          retry = setTimeout(connect, 1000);
        }
        if (paused) return;
        const li = h('li', { class: `ev-${type}`, dataset: { type } },
          h('time', { text: fmtTime(new Date().toISOString()) }), ' ',
          h('span.badge', { text: type }), ' ',
          d.device ? deviceLink(d.device) : null, d.device ? ' ' : null,
          h('span', { text: describe(type, d) }),
          d.tags && d.tags.length ? h('span.muted', { text: ` [${d.tags.join(', ')}]` }) : null);
        feed.prepend(li);
        while (feed.childElementCount > MAX_ROWS) feed.lastElementChild.remove();
      });
    }
  };
  connect();
  return () => { clearTimeout(retry); if (es) es.close(); };
}
