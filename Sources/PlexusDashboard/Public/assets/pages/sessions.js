// Sessions: list, one session with playback, compare two sessions.
import { api, h, enc, fmtDate, fmtDuration, canWrite, isOwner, navigate, toast, errorBox, live } from '/assets/core.js';
import { MetricView, CursorGroup, TimeChart, Series, onFrame, colorFor, fmtRel } from '/assets/chart.js';

const STATUS = ['active', 'completed', 'aborted'];

function statusBadge(s) { return h('span', { class: `badge st-${s}` }, s === 'active' ? '● active' : s); }
function duration(s) {
  const a = Date.parse(s.started_at), b = s.ended_at ? Date.parse(s.ended_at) : Date.now();
  return fmtDuration(b - a);
}

export async function sessionsPage(root, _p, q) {
  const srcSel = h('select', { 'aria-label': 'Filter by device' }, h('option', { value: '' }, 'All devices'));
  const stSel = h('select', { 'aria-label': 'Filter by status' }, h('option', { value: '' }, 'Any status'), STATUS.map((s) => h('option', { value: s }, s)));
  const compareBtn = h('button', { class: 'btn', type: 'button', disabled: true }, 'Compare selected');
  const tbody = h('tbody');
  const empty = h('div', { class: 'empty', hidden: true }, h('p', null, 'No sessions match. Start a recording from a device page.'));
  root.append(h('div', { class: 'page' },
    h('div', { class: 'page-head' }, h('h1', null, 'Sessions'), h('div', { class: 'spacer' }), srcSel, stSel, compareBtn),
    h('div', { class: 'table-wrap' }, h('table', { class: 'table sessions', 'aria-label': 'Sessions' },
      h('thead', null, h('tr', null, h('th', { scope: 'col' }, h('span', { class: 'sr-only' }, 'Select')), ['Name', 'Device', 'Status', 'Started', 'Duration'].map((t) => h('th', { scope: 'col' }, t)))), tbody)),
    empty));
  const selected = new Set();
  try {
    const r = await api('GET', '/v1/sources');
    for (const d of r.devices || []) srcSel.append(h('option', { value: d.source_id }, d.source_id));
  } catch { /* ignore */ }
  srcSel.value = q.get('source_id') || ''; stSel.value = q.get('status') || '';
  async function load() {
    const params = new URLSearchParams();
    if (srcSel.value) params.set('source_id', srcSel.value);
    if (stSel.value) params.set('status', stSel.value);
    const qs = params.toString();
    history.replaceState(null, '', '/sessions' + (qs ? '?' + qs : ''));
    try {
      const r = await api('GET', '/api/sessions' + (qs ? '?' + qs : ''));
      tbody.replaceChildren(...r.sessions.map((s) => {
        const cb = h('input', { type: 'checkbox', 'aria-label': `Select ${s.name} for comparison`, checked: selected.has(s.session_id), onchange: () => {
          if (cb.checked) selected.add(s.session_id); else selected.delete(s.session_id);
          compareBtn.disabled = selected.size !== 2;
        } });
        return h('tr', { dataset: { session: s.session_id } },
          h('td', { 'data-label': 'Select' }, cb),
          h('td', { 'data-label': 'Name' }, h('a', { href: `/sessions/${enc(s.session_id)}`, 'data-link': true, class: 'strong' }, s.name), s.name !== s.session_id ? h('div', { class: 'muted small mono' }, s.session_id) : null),
          h('td', { 'data-label': 'Device' }, h('a', { href: `/devices/${enc(s.source_id)}`, 'data-link': true }, s.source_id)),
          h('td', { 'data-label': 'Status' }, statusBadge(s.status)),
          h('td', { 'data-label': 'Started' }, fmtDate(s.started_at)),
          h('td', { 'data-label': 'Duration', class: 'mono' }, duration(s)));
      }));
      empty.hidden = r.sessions.length > 0;
    } catch (e) { tbody.replaceChildren(h('tr', null, h('td', { colspan: 6 }, errorBox(e)))); }
  }
  srcSel.addEventListener('change', load); stSel.addEventListener('change', load);
  compareBtn.addEventListener('click', () => { const [a, b] = [...selected]; navigate(`/sessions/compare?a=${enc(a)}&b=${enc(b)}`); });
  await load();
}

// Loads every raw point of a session's metrics, paging past the 10,000-row cap. Long
// sessions are cut into time chunks fetched 4 at a time, and delivered in time order.
function limiter(n) {
  let active = 0; const waiting = [];
  const next = () => { if (active < n && waiting.length) { active++; const [fn, ok, ko] = waiting.shift(); fn().then(ok, ko).finally(() => { active--; next(); }); } };
  return (fn) => new Promise((ok, ko) => { waiting.push([fn, ok, ko]); next(); });
}
async function loadSessionData(sid, summary, metrics, onProgress, onPage, alive = () => true) {
  const out = {};
  if (summary.first_timestamp_ms == null) return out;
  const first = summary.first_timestamp_ms, end = summary.last_timestamp_ms + 1;
  const limit = limiter(4);
  let total = 0;
  const deliver = (m, ts, vs) => {
    total += ts.length; if (onProgress) onProgress(total);
    if (onPage) onPage(m, ts, vs);
    else { const o = (out[m] = out[m] || { timestamp_ms: [], value: [] }); for (let i = 0; i < ts.length; i++) { o.timestamp_ms.push(ts[i]); o.value.push(vs[i]); } }
  };
  // every page of [a, b) for one metric, in order
  async function range(m, a, b, sink) {
    let start = a;
    for (let guard = 0; guard < 1000 && alive(); guard++) {
      const r = await limit(() => api('GET', `/api/sessions/${enc(sid)}/data?interval=raw&metrics=${enc(m)}&start=${start}&end=${b}`));
      const s = r.series && r.series[m];
      if (s && s.timestamp_ms.length) sink(s.timestamp_ms, s.value);
      if (!r.truncated || !s || !s.timestamp_ms.length) return;
      start = Math.max(s.timestamp_ms[s.timestamp_ms.length - 1] + 0.001, 1e12);
    }
  }
  const perMetric = (summary.point_count || 0) / Math.max(1, metrics.length);
  const chunks = Math.max(1, Math.min(16, Math.ceil(perMetric / 40000)));
  await Promise.all(metrics.map(async (m) => {
    if (chunks === 1) { await range(m, first, end, (ts, vs) => deliver(m, ts, vs)); return; }
    const step = (end - first) / chunks;
    const parts = [];
    for (let k = 0; k < chunks; k++) {
      const a = first + k * step, b = k === chunks - 1 ? end : first + (k + 1) * step;
      const buf = [];
      parts.push({ buf, done: range(m, Math.floor(a), Math.floor(b), (ts, vs) => buf.push([ts, vs])) });
    }
    for (const p of parts) { await p.done; for (const [ts, vs] of p.buf) deliver(m, ts, vs); p.buf.length = 0; }
  }));
  return out;
}
function primaryMetrics(list) {
  const set = new Set(list);
  // A vector's fields (`accel.x` beside `accel`) are drawn with the vector, not alone.
  return list.filter((m) => { const i = m.lastIndexOf('.'); return !(i > 0 && set.has(m.slice(0, i))); });
}

export async function sessionPage(root, [sid]) {
  const page = h('div', { class: 'page' });
  root.append(page);
  let s;
  try { s = await api('GET', `/api/sessions/${enc(sid)}`); }
  catch (e) { page.append(h('h1', null, 'Session'), errorBox(e.status === 404 ? { message: 'This session does not exist (it may have been deleted).' } : e)); return; }
  const sum = s.summary || {};
  const cursor = new CursorGroup();
  const views = [];
  const offs = [];

  // header + actions
  const delBtn = h('button', { class: 'btn danger', type: 'button' }, 'Delete…');
  // Deleting needs the admin scope, which only owners have.
  if (!isOwner()) { delBtn.disabled = true; delBtn.title = 'Only an owner can delete sessions'; }
  const dlg = h('dialog', { class: 'dialog', 'aria-labelledby': 'del-title' },
    h('h2', { id: 'del-title' }, 'Delete this session?'),
    h('p', null, 'The session ', h('strong', null, s.name), ` and all ${sum.point_count ?? 0} points recorded in it are deleted. This cannot be undone.`),
    h('div', { class: 'row gap end' },
      h('button', { class: 'btn', type: 'button', value: 'cancel', onclick: () => dlg.close() }, 'Cancel'),
      h('button', { class: 'btn danger', type: 'button', id: 'confirm-delete', onclick: async () => {
        try { await api('DELETE', `/api/sessions/${enc(sid)}`); dlg.close(); toast('Session deleted'); navigate('/sessions'); }
        catch (e) { dlg.close(); toast(e.message, 'error'); }
      } }, 'Delete session')));
  delBtn.addEventListener('click', () => dlg.showModal());
  const cmpSel = h('select', { 'aria-label': 'Compare with another session' }, h('option', { value: '' }, 'Compare with…'));
  cmpSel.addEventListener('change', () => { if (cmpSel.value) navigate(`/sessions/compare?a=${enc(sid)}&b=${enc(cmpSel.value)}`); });
  api('GET', '/api/sessions').then((r) => { for (const o of r.sessions) if (o.session_id !== sid) cmpSel.append(h('option', { value: o.session_id }, `${o.name} (${o.source_id})`)); }).catch(() => {});

  page.append(
    h('div', { class: 'page-head' }, h('a', { href: '/sessions', 'data-link': true, class: 'back', 'aria-label': 'Back to sessions' }, '←'),
      h('h1', null, s.name), statusBadge(s.status), h('div', { class: 'spacer' }),
      h('a', { class: 'btn', href: `/api/sessions/${enc(sid)}/export?format=csv`, download: '', id: 'export-csv' }, 'Export CSV'),
      h('a', { class: 'btn', href: `/api/sessions/${enc(sid)}/export?format=jsonl`, download: '', id: 'export-jsonl' }, 'Export JSONL'),
      cmpSel, canWrite() ? delBtn : null),
    h('dl', { class: 'facts' },
      h('div', null, h('dt', null, 'Device'), h('dd', null, h('a', { href: `/devices/${enc(s.source_id)}`, 'data-link': true }, s.source_id))),
      h('div', null, h('dt', null, 'Started'), h('dd', null, fmtDate(s.started_at))),
      h('div', null, h('dt', null, 'Ended'), h('dd', null, s.ended_at ? fmtDate(s.ended_at) : 'still recording')),
      h('div', null, h('dt', null, 'Duration'), h('dd', { class: 'mono' }, duration(s))),
      h('div', null, h('dt', null, 'Points'), h('dd', null, (sum.point_count ?? 0).toLocaleString())),
      h('div', null, h('dt', null, 'ID'), h('dd', { class: 'mono small' }, s.session_id))),
    dlg);

  if (sum.first_timestamp_ms == null) { page.append(h('div', { class: 'empty' }, h('p', null, 'No data was recorded in this session.'))); return; }

  // playback bar
  const t0 = sum.first_timestamp_ms; let t1 = Math.max(sum.last_timestamp_ms, t0 + 1);
  const playBtn = h('button', { class: 'btn primary play', type: 'button', 'aria-label': 'Play' }, '▶');
  const speedSel = h('select', { 'aria-label': 'Playback speed' }, [1, 2, 5, 10].map((x) => h('option', { value: x }, x + '×')));
  const scrub = h('input', { type: 'range', min: 0, max: 10000, step: 1, value: 0, class: 'scrub', 'aria-label': 'Playback position' });
  const timeEl = h('span', { class: 'mono playtime', 'aria-live': 'off' }, fmtRel(0));
  const progress = h('span', { class: 'muted small' }, 'Loading data…');
  page.append(h('div', { class: 'playback card', role: 'group', 'aria-label': 'Playback' }, playBtn, speedSel, scrub, timeEl, progress));
  const grid = h('div', { class: 'chart-grid' });
  page.append(grid);

  let playing = false, lastNow = 0, shownT = null;
  // The slider and the time readout follow the cursor wherever it was moved from:
  // playback, the slider itself, or a chart (pointer or arrow keys).
  function showPosition(t, fromScrub) {
    shownT = t;
    if (!fromScrub) scrub.value = Math.round((t - t0) / (t1 - t0) * 10000);
    timeEl.textContent = `${fmtRel(t - t0)} / ${fmtRel(t1 - t0)}`;
    scrub.setAttribute('aria-valuetext', `${fmtRel(t - t0)} of ${fmtRel(t1 - t0)}`);
  }
  function setCursor(t, fromScrub) {
    t = Math.max(t0, Math.min(t1, t));
    cursor.set(t, 'playback');
    showPosition(t, fromScrub);
  }
  function setPlaying(p) {
    playing = p; playBtn.textContent = p ? '❚❚' : '▶'; playBtn.setAttribute('aria-label', p ? 'Pause' : 'Play');
    if (p) { lastNow = performance.now(); if (cursor.t == null || cursor.t >= t1) setCursor(t0); }
  }
  playBtn.addEventListener('click', () => setPlaying(!playing));
  scrub.addEventListener('input', () => { cursor.locked = true; setCursor(t0 + (+scrub.value / 10000) * (t1 - t0), true); });
  // Space plays/pauses unless a control has the focus
  const onKey = (e) => {
    if (e.key !== ' ' || e.ctrlKey || e.metaKey || e.altKey || e.target.closest('input, select, textarea, button, a, dialog')) return;
    e.preventDefault(); setPlaying(!playing);
  };
  document.addEventListener('keydown', onKey);
  offs.push(() => document.removeEventListener('keydown', onKey));
  offs.push(onFrame((now) => {
    if (playing) {
      const dt = now - lastNow; lastNow = now;
      const nt = cursor.t + dt * +speedSel.value;
      setCursor(nt);
      if (nt >= t1) setPlaying(false);
    }
    if (cursor.t != null && cursor.t !== shownT) showPosition(Math.max(t0, Math.min(t1, cursor.t)), false);
    for (const v of views) v.updateReadout(cursor.t);
  }));
  window.__plexus.playback = { get t() { return cursor.t; }, t0, get t1() { return t1; }, get playing() { return playing; } };

  const metrics = primaryMetrics(sum.metrics || []);
  const tStart = performance.now();
  let alive = true, zoomed = null;
  const zoom = (a, b) => { zoomed = [a, b]; for (const v of views) v.chart.setRange(a, b); };
  const reset = () => { zoomed = null; for (const v of views) v.chart.setRange(t0, t1 + (t1 - t0) * 0.01); };
  // one slot per metric keeps the cards in name order while pages arrive in any order
  const slots = new Map(metrics.map((m) => { const d = h('div', { class: 'slot' }); grid.append(d); return [m, d]; }));
  const byMetric = new Map();
  setCursor(t0);
  cursor.locked = true;
  // progressive: each page of raw points is drawn as soon as it arrives
  loadSessionData(sid, sum, metrics, (n) => { progress.textContent = `Loading ${n.toLocaleString()} of ${(sum.point_count ?? 0).toLocaleString()} points…`; }, (m, ts, vs) => {
    if (!alive) return;
    let v = byMetric.get(m);
    if (!v) {
      v = new MetricView(slots.get(m), m, vs[0], { cursor, onZoom: zoom, onReset: reset, waveHistory: true });
      v.chart.dataEnd = t1;
      if (zoomed) v.chart.setRange(zoomed[0], zoomed[1]); else v.chart.setRange(t0, t1 + (t1 - t0) * 0.01);
      byMetric.set(m, v); views.push(v);
    }
    for (let i = 0; i < vs.length; i++) v.push(ts[i], vs[i]);
    v.chart.markDirty();
  }, () => alive).then(() => {
    if (!alive) return;
    if (s.status === 'active') followActive();
    progress.textContent = `${(sum.point_count ?? 0).toLocaleString()} points · loaded in ${Math.round(performance.now() - tStart)} ms · drag on a chart to zoom, double-click to reset`;
    window.__plexus.playback.loaded = true;
  }, (e) => { if (alive) progress.textContent = 'Could not load data: ' + e.message; });
  // an active session keeps growing: append its live points and stretch the timeline
  function followActive() {
    offs.push(live.subscribe(s.source_id));
    offs.push(live.on('telemetry', (fr) => {
      if (fr.source_id !== s.source_id) return;
      const rec = live.online.get(s.source_id)?.recording;
      for (const p of fr.points) {
        if (!(p.session_id === sid || (!p.session_id && rec === sid))) continue;
        if (p.metric.includes('.') && byMetric.has(p.metric.slice(0, p.metric.lastIndexOf('.')))) continue;
        let v = byMetric.get(p.metric);
        if (!v) {
          const slot = h('div', { class: 'slot' }); grid.append(slot);
          v = new MetricView(slot, p.metric, p.value, { cursor, onZoom: zoom, onReset: reset, waveHistory: true });
          byMetric.set(p.metric, v); views.push(v);
        }
        v.push(p.timestamp, p.value);
        if (p.timestamp > t1) t1 = p.timestamp;
      }
      for (const v of views) { v.chart.dataEnd = t1; if (!zoomed) v.chart.setRange(t0, t1 + (t1 - t0) * 0.01); }
      if (cursor.t != null) timeEl.textContent = `${fmtRel(cursor.t - t0)} / ${fmtRel(t1 - t0)}`;
    }));
  }
  return () => { alive = false; offs.forEach((f) => f()); for (const v of views) v.destroy(); delete window.__plexus.playback; };
}

export async function comparePage(root, _p, q) {
  const a = q.get('a'), b = q.get('b');
  const page = h('div', { class: 'page' }); root.append(page);
  page.append(h('div', { class: 'page-head' }, h('a', { href: '/sessions', 'data-link': true, class: 'back', 'aria-label': 'Back to sessions' }, '←'), h('h1', null, 'Compare sessions')));
  if (!a || !b) { page.append(errorBox({ message: 'Pick two sessions to compare on the Sessions page.' })); return; }
  let sa, sb;
  try { [sa, sb] = await Promise.all([api('GET', `/api/sessions/${enc(a)}`), api('GET', `/api/sessions/${enc(b)}`)]); }
  catch (e) { page.append(errorBox(e)); return; }
  const cursor = new CursorGroup();
  const legend = h('div', { class: 'legend big' },
    h('span', { class: 'legend-item' }, h('i', { style: `background:${colorFor(0)}` }), h('a', { href: `/sessions/${enc(a)}`, 'data-link': true }, sa.name), ` (${sa.source_id})`),
    h('span', { class: 'legend-item' }, h('i', { style: `background:${colorFor(1)}` }), h('a', { href: `/sessions/${enc(b)}`, 'data-link': true }, sb.name), ` (${sb.source_id})`),
    h('span', { class: 'muted small' }, 'Both aligned at T+0 (their first points).'));
  page.append(legend);
  const grid = h('div', { class: 'chart-grid one' }); page.append(grid);
  const ma = sa.summary?.metrics || [], mb = sb.summary?.metrics || [];
  const common = ma.filter((m) => mb.includes(m));
  const [da, db] = await Promise.all([loadSessionData(a, sa.summary, common), loadSessionData(b, sb.summary, common)]);
  const charts = [];
  let maxSpan = 1;
  const zoom = (x, y) => { for (const c of charts) c.setRange(x, y); };
  const reset = () => { for (const c of charts) c.setRange(0, maxSpan * 1.01); };
  for (const m of common) {
    const A = da[m], B = db[m];
    if (!A || !B || !A.value.length || typeof A.value[0] !== 'number' || typeof B.value[0] !== 'number') continue;
    const card = h('section', { class: 'metric-card' }, h('header', null, h('h3', null, m)));
    grid.append(card);
    const c = new TimeChart(card, { title: `${m}: ${sa.name} vs ${sb.name}`, relative: true, cursor, onZoom: zoom, onReset: reset });
    const s1 = new Series(sa.name, colorFor(0)); s1.setData(A.timestamp_ms, A.value); s1.offset = -sa.summary.first_timestamp_ms;
    const s2 = new Series(sb.name, colorFor(1)); s2.setData(B.timestamp_ms, B.value); s2.offset = -sb.summary.first_timestamp_ms;
    c.addSeries(s1); c.addSeries(s2);
    maxSpan = Math.max(maxSpan, s1.last, s2.last);
    charts.push(c);
  }
  if (!charts.length) grid.append(h('div', { class: 'empty' }, h('p', null, 'These sessions have no numeric metrics in common.')));
  reset();
  return () => { for (const c of charts) c.destroy(); };
}
