// Sessions: list, one session with playback, compare two sessions.
import { api, h, enc, fmtDate, canWrite, isOwner, navigate, toast, errorBox, live } from '/assets/core.js';
import { MetricView, CursorGroup, TimeChart, Series, onFrame, colorFor, fmtRel } from '/assets/chart.js';
import {
  STATUS, duration, sessionsQuery, loadSessionData, primaryMetrics, isFieldOf, inSession,
  clampTime, scrubValue, scrubTime, fullRange, positionText, commonMetrics, comparable,
} from '/assets/pages/sessions-model.js';

const getJSON = (url) => api('GET', url);

function statusBadge(s) { return h('span', { class: `badge st-${s}` }, s === 'active' ? '● active' : s); }
function backLink() { return h('a', { href: '/sessions', 'data-link': true, class: 'back', 'aria-label': 'Back to sessions' }, '←'); }

// ---------- the list ----------
export async function sessionsPage(root, _p, q) {
  const ctx = { selected: new Set(), ui: renderSessionsPage(root) };
  const { srcSel, stSel, compareBtn } = ctx.ui;
  try {
    const r = await api('GET', '/v1/sources');
    for (const d of r.devices || []) srcSel.append(h('option', { value: d.source_id }, d.source_id));
  } catch { /* ignore */ }
  srcSel.value = q.get('source_id') || ''; stSel.value = q.get('status') || '';
  const load = () => loadSessions(ctx);
  srcSel.addEventListener('change', load); stSel.addEventListener('change', load);
  compareBtn.addEventListener('click', () => { const [a, b] = [...ctx.selected]; navigate(`/sessions/compare?a=${enc(a)}&b=${enc(b)}`); });
  await load();
}

function renderSessionsPage(root) {
  const ui = {
    srcSel: h('select', { 'aria-label': 'Filter by device' }, h('option', { value: '' }, 'All devices')),
    stSel: h('select', { 'aria-label': 'Filter by status' }, h('option', { value: '' }, 'Any status'), STATUS.map((s) => h('option', { value: s }, s))),
    compareBtn: h('button', { class: 'btn', type: 'button', disabled: true }, 'Compare selected'),
    tbody: h('tbody'),
    empty: h('div', { class: 'empty', hidden: true }, h('p', null, 'No sessions match. Start a recording from a device page.')),
  };
  root.append(h('div', { class: 'page' },
    h('div', { class: 'page-head' }, h('h1', null, 'Sessions'), h('div', { class: 'spacer' }), ui.srcSel, ui.stSel, ui.compareBtn),
    h('div', { class: 'table-wrap' }, h('table', { class: 'table sessions', 'aria-label': 'Sessions' },
      h('thead', null, h('tr', null, h('th', { scope: 'col' }, h('span', { class: 'sr-only' }, 'Select')), ['Name', 'Device', 'Status', 'Started', 'Duration'].map((t) => h('th', { scope: 'col' }, t)))), ui.tbody)),
    ui.empty));
  return ui;
}

async function loadSessions(ctx) {
  const { srcSel, stSel, tbody, empty } = ctx.ui;
  const qs = sessionsQuery(srcSel.value, stSel.value);
  history.replaceState(null, '', '/sessions' + (qs ? '?' + qs : ''));
  try {
    const r = await api('GET', '/api/sessions' + (qs ? '?' + qs : ''));
    tbody.replaceChildren(...r.sessions.map((s) => sessionRow(ctx, s)));
    empty.hidden = r.sessions.length > 0;
  } catch (e) { tbody.replaceChildren(h('tr', null, h('td', { colspan: 6 }, errorBox(e)))); }
}

function sessionRow({ selected, ui }, s) {
  const cb = h('input', { type: 'checkbox', 'aria-label': `Select ${s.name} for comparison`, checked: selected.has(s.session_id), onchange: () => {
    if (cb.checked) selected.add(s.session_id); else selected.delete(s.session_id);
    ui.compareBtn.disabled = selected.size !== 2;
  } });
  return h('tr', { dataset: { session: s.session_id } },
    h('td', { 'data-label': 'Select' }, cb),
    h('td', { 'data-label': 'Name' }, h('a', { href: `/sessions/${enc(s.session_id)}`, 'data-link': true, class: 'strong' }, s.name), s.name !== s.session_id ? h('div', { class: 'muted small mono' }, s.session_id) : null),
    h('td', { 'data-label': 'Device' }, h('a', { href: `/devices/${enc(s.source_id)}`, 'data-link': true }, s.source_id)),
    h('td', { 'data-label': 'Status' }, statusBadge(s.status)),
    h('td', { 'data-label': 'Started' }, fmtDate(s.started_at)),
    h('td', { 'data-label': 'Duration', class: 'mono' }, duration(s)));
}

// ---------- one session ----------
export async function sessionPage(root, [sid]) {
  const page = h('div', { class: 'page' });
  root.append(page);
  let s;
  try { s = await api('GET', `/api/sessions/${enc(sid)}`); }
  catch (e) { page.append(h('h1', null, 'Session'), errorBox(e.status === 404 ? { message: 'This session does not exist (it may have been deleted).' } : e)); return; }
  const sum = s.summary || {};
  const ctx = { sid, s, sum, page, cursor: new CursorGroup(), views: [], offs: [], ui: {} };
  const head = renderSessionHead(ctx);
  page.append(head, renderFacts(s, sum), ctx.ui.dlg);
  if (sum.first_timestamp_ms == null) { page.append(h('div', { class: 'empty' }, h('p', null, 'No data was recorded in this session.'))); return; }
  renderPlayback(ctx);
  bindPlayback(ctx);
  loadCharts(ctx);
  return () => { ctx.alive = false; ctx.offs.forEach((f) => f()); for (const v of ctx.views) v.destroy(); delete window.__plexus.playback; };
}

function renderSessionHead(ctx) {
  const { sid, s } = ctx;
  const delBtn = renderDelete(ctx);
  const cmpSel = h('select', { 'aria-label': 'Compare with another session' }, h('option', { value: '' }, 'Compare with…'));
  cmpSel.addEventListener('change', () => { if (cmpSel.value) navigate(`/sessions/compare?a=${enc(sid)}&b=${enc(cmpSel.value)}`); });
  api('GET', '/api/sessions').then((r) => { for (const o of r.sessions) if (o.session_id !== sid) cmpSel.append(h('option', { value: o.session_id }, `${o.name} (${o.source_id})`)); }).catch(() => {});
  return h('div', { class: 'page-head' }, backLink(),
    h('h1', null, s.name), statusBadge(s.status), h('div', { class: 'spacer' }),
    h('a', { class: 'btn', href: `/api/sessions/${enc(sid)}/export?format=csv`, download: '', id: 'export-csv' }, 'Export CSV'),
    h('a', { class: 'btn', href: `/api/sessions/${enc(sid)}/export?format=jsonl`, download: '', id: 'export-jsonl' }, 'Export JSONL'),
    cmpSel, canWrite() ? delBtn : null);
}

// The Delete… button and its confirmation dialog (ctx.ui.dlg).
function renderDelete({ sid, s, sum, ui }) {
  const delBtn = h('button', { class: 'btn danger', type: 'button' }, 'Delete…');
  // Deleting needs the admin scope, which only owners have.
  if (!isOwner()) { delBtn.disabled = true; delBtn.title = 'Only an owner can delete sessions'; }
  const dlg = ui.dlg = h('dialog', { class: 'dialog', 'aria-labelledby': 'del-title' },
    h('h2', { id: 'del-title' }, 'Delete this session?'),
    h('p', null, 'The session ', h('strong', null, s.name), ` and all ${sum.point_count ?? 0} points recorded in it are deleted. This cannot be undone.`),
    h('div', { class: 'row gap end' },
      h('button', { class: 'btn', type: 'button', value: 'cancel', onclick: () => dlg.close() }, 'Cancel'),
      h('button', { class: 'btn danger', type: 'button', id: 'confirm-delete', onclick: async () => {
        try { await api('DELETE', `/api/sessions/${enc(sid)}`); dlg.close(); toast('Session deleted'); navigate('/sessions'); }
        catch (e) { dlg.close(); toast(e.message, 'error'); }
      } }, 'Delete session')));
  delBtn.addEventListener('click', () => dlg.showModal());
  return delBtn;
}

function renderFacts(s, sum) {
  const fact = (dt, dd) => h('div', null, h('dt', null, dt), dd);
  return h('dl', { class: 'facts' },
    fact('Device', h('dd', null, h('a', { href: `/devices/${enc(s.source_id)}`, 'data-link': true }, s.source_id))),
    fact('Started', h('dd', null, fmtDate(s.started_at))),
    fact('Ended', h('dd', null, s.ended_at ? fmtDate(s.ended_at) : 'still recording')),
    fact('Duration', h('dd', { class: 'mono' }, duration(s))),
    fact('Points', h('dd', null, (sum.point_count ?? 0).toLocaleString())),
    fact('ID', h('dd', { class: 'mono small' }, s.session_id)));
}

// ---- playback ----
function renderPlayback(ctx) {
  const { sum, page, ui } = ctx;
  ctx.t0 = sum.first_timestamp_ms; ctx.t1 = Math.max(sum.last_timestamp_ms, ctx.t0 + 1);
  ctx.playing = false; ctx.lastNow = 0; ctx.shownT = null;
  ui.playBtn = h('button', { class: 'btn primary play', type: 'button', 'aria-label': 'Play' }, '▶');
  ui.speedSel = h('select', { 'aria-label': 'Playback speed' }, [1, 2, 5, 10].map((x) => h('option', { value: x }, x + '×')));
  ui.scrub = h('input', { type: 'range', min: 0, max: 10000, step: 1, value: 0, class: 'scrub', 'aria-label': 'Playback position' });
  ui.timeEl = h('span', { class: 'mono playtime', 'aria-live': 'off' }, fmtRel(0));
  ui.progress = h('span', { class: 'muted small' }, 'Loading data…');
  page.append(h('div', { class: 'playback card', role: 'group', 'aria-label': 'Playback' }, ui.playBtn, ui.speedSel, ui.scrub, ui.timeEl, ui.progress));
  ui.grid = h('div', { class: 'chart-grid' });
  page.append(ui.grid);
}

// The slider and the time readout follow the cursor wherever it was moved from:
// playback, the slider itself, or a chart (pointer or arrow keys).
function showPosition(ctx, t, fromScrub) {
  const { t0, t1, ui } = ctx;
  ctx.shownT = t;
  if (!fromScrub) ui.scrub.value = scrubValue(t, t0, t1);
  const text = positionText(t, t0, t1);
  ui.timeEl.textContent = text.time;
  ui.scrub.setAttribute('aria-valuetext', text.valuetext);
}

function setCursor(ctx, t, fromScrub) {
  t = clampTime(t, ctx.t0, ctx.t1);
  ctx.cursor.set(t);
  showPosition(ctx, t, fromScrub);
}

function setPlaying(ctx, p) {
  const btn = ctx.ui.playBtn;
  ctx.playing = p; btn.textContent = p ? '❚❚' : '▶'; btn.setAttribute('aria-label', p ? 'Pause' : 'Play');
  if (p) { ctx.lastNow = performance.now(); if (ctx.cursor.t == null || ctx.cursor.t >= ctx.t1) setCursor(ctx, ctx.t0); }
}

function bindPlayback(ctx) {
  const { cursor, ui, offs } = ctx;
  ui.playBtn.addEventListener('click', () => setPlaying(ctx, !ctx.playing));
  ui.scrub.addEventListener('input', () => { cursor.locked = true; setCursor(ctx, scrubTime(ui.scrub.value, ctx.t0, ctx.t1), true); });
  // Space plays/pauses unless a control has the focus
  const onKey = (e) => {
    if (e.key !== ' ' || e.ctrlKey || e.metaKey || e.altKey || e.target.closest('input, select, textarea, button, a, dialog')) return;
    e.preventDefault(); setPlaying(ctx, !ctx.playing);
  };
  document.addEventListener('keydown', onKey);
  offs.push(() => document.removeEventListener('keydown', onKey));
  offs.push(onFrame((now) => playbackFrame(ctx, now)));
  window.__plexus.playback = { get t() { return cursor.t; }, t0: ctx.t0, get t1() { return ctx.t1; }, get playing() { return ctx.playing; } };
}

function playbackFrame(ctx, now) {
  const { cursor } = ctx;
  if (ctx.playing) {
    const dt = now - ctx.lastNow; ctx.lastNow = now;
    const nt = cursor.t + dt * +ctx.ui.speedSel.value;
    setCursor(ctx, nt);
    if (nt >= ctx.t1) setPlaying(ctx, false);
  }
  if (cursor.t != null && cursor.t !== ctx.shownT) showPosition(ctx, clampTime(cursor.t, ctx.t0, ctx.t1), false);
  for (const v of ctx.views) v.updateReadout(cursor.t);
}

// ---- charts ----
function zoomTo(ctx, a, b) { ctx.zoomed = [a, b]; for (const v of ctx.views) v.chart.setRange(a, b); }
function resetZoom(ctx) { ctx.zoomed = null; for (const v of ctx.views) v.chart.setRange(...fullRange(ctx.t0, ctx.t1)); }
function newView(ctx, slot, metric, value) {
  const v = new MetricView(slot, metric, value, { cursor: ctx.cursor, onZoom: ctx.zoom, onReset: ctx.reset, waveHistory: true });
  ctx.byMetric.set(metric, v); ctx.views.push(v);
  return v;
}

// Every raw point, drawn page by page as it arrives; an active session then follows live.
function loadCharts(ctx) {
  const { sid, s, sum, ui } = ctx;
  const metrics = primaryMetrics(sum.metrics || []);
  const tStart = performance.now();
  ctx.alive = true; ctx.zoomed = null;
  ctx.zoom = (a, b) => zoomTo(ctx, a, b);
  ctx.reset = () => resetZoom(ctx);
  // one slot per metric keeps the cards in name order while pages arrive in any order
  ctx.slots = new Map(metrics.map((m) => { const d = h('div', { class: 'slot' }); ui.grid.append(d); return [m, d]; }));
  ctx.byMetric = new Map();
  setCursor(ctx, ctx.t0);
  ctx.cursor.locked = true;
  const total = (sum.point_count ?? 0).toLocaleString();
  loadSessionData(getJSON, sid, sum, metrics, (n) => { ui.progress.textContent = `Loading ${n.toLocaleString()} of ${total} points…`; },
    (m, ts, vs) => addPage(ctx, m, ts, vs), () => ctx.alive).then(() => {
    if (!ctx.alive) return;
    if (s.status === 'active') followActive(ctx);
    ui.progress.textContent = `${total} points · loaded in ${Math.round(performance.now() - tStart)} ms · drag on a chart to zoom, double-click to reset`;
    window.__plexus.playback.loaded = true;
  }, (e) => { if (ctx.alive) ui.progress.textContent = 'Could not load data: ' + e.message; });
}

function addPage(ctx, m, ts, vs) {
  if (!ctx.alive) return;
  let v = ctx.byMetric.get(m);
  if (!v) {
    v = newView(ctx, ctx.slots.get(m), m, vs[0]);
    v.chart.dataEnd = ctx.t1;
    if (ctx.zoomed) v.chart.setRange(ctx.zoomed[0], ctx.zoomed[1]); else v.chart.setRange(...fullRange(ctx.t0, ctx.t1));
  }
  for (let i = 0; i < vs.length; i++) v.push(ts[i], vs[i]);
  v.chart.markDirty();
}

// an active session keeps growing: append its live points and stretch the timeline
function followActive(ctx) {
  ctx.offs.push(live.subscribe(ctx.s.source_id));
  ctx.offs.push(live.on('telemetry', (fr) => { if (fr.source_id === ctx.s.source_id) addLive(ctx, fr.points); }));
}

function addLive(ctx, points) {
  const { sid, s, byMetric } = ctx;
  const rec = live.online.get(s.source_id)?.recording;
  for (const p of points) {
    if (!inSession(p, sid, rec)) continue;
    if (isFieldOf(p.metric, (m) => byMetric.has(m))) continue;
    let v = byMetric.get(p.metric);
    if (!v) {
      const slot = h('div', { class: 'slot' }); ctx.ui.grid.append(slot);
      v = newView(ctx, slot, p.metric, p.value);
    }
    v.push(p.timestamp, p.value);
    if (p.timestamp > ctx.t1) ctx.t1 = p.timestamp;
  }
  for (const v of ctx.views) { v.chart.dataEnd = ctx.t1; if (!ctx.zoomed) v.chart.setRange(...fullRange(ctx.t0, ctx.t1)); }
  if (ctx.cursor.t != null) ctx.ui.timeEl.textContent = positionText(ctx.cursor.t, ctx.t0, ctx.t1).time;
}

// ---------- compare ----------
export async function comparePage(root, _p, q) {
  const a = q.get('a'), b = q.get('b');
  const page = h('div', { class: 'page' }); root.append(page);
  page.append(h('div', { class: 'page-head' }, backLink(), h('h1', null, 'Compare sessions')));
  if (!a || !b) { page.append(errorBox({ message: 'Pick two sessions to compare on the Sessions page.' })); return; }
  let sa, sb;
  try { [sa, sb] = await Promise.all([api('GET', `/api/sessions/${enc(a)}`), api('GET', `/api/sessions/${enc(b)}`)]); }
  catch (e) { page.append(errorBox(e)); return; }
  const ctx = { sa, sb, cursor: new CursorGroup(), charts: [], maxSpan: 1 };
  ctx.zoom = (x, y) => { for (const c of ctx.charts) c.setRange(x, y); };
  ctx.reset = () => { for (const c of ctx.charts) c.setRange(0, ctx.maxSpan * 1.01); };
  page.append(compareLegend(a, sa, b, sb));
  const grid = h('div', { class: 'chart-grid one' }); page.append(grid);
  const common = commonMetrics(sa.summary?.metrics || [], sb.summary?.metrics || []);
  const [da, db] = await Promise.all([loadSessionData(getJSON, a, sa.summary, common), loadSessionData(getJSON, b, sb.summary, common)]);
  for (const m of common) if (comparable(da[m], db[m])) compareChart(ctx, grid, m, da[m], db[m]);
  if (!ctx.charts.length) grid.append(h('div', { class: 'empty' }, h('p', null, 'These sessions have no numeric metrics in common.')));
  ctx.reset();
  return () => { for (const c of ctx.charts) c.destroy(); };
}

function compareLegend(a, sa, b, sb) {
  const item = (i, id, s) => h('span', { class: 'legend-item' }, h('i', { style: `background:${colorFor(i)}` }), h('a', { href: `/sessions/${enc(id)}`, 'data-link': true }, s.name), ` (${s.source_id})`);
  return h('div', { class: 'legend big' }, item(0, a, sa), item(1, b, sb), h('span', { class: 'muted small' }, 'Both aligned at T+0 (their first points).'));
}

// One chart of a metric, both sessions relative to their first points.
function compareChart(ctx, grid, m, A, B) {
  const { sa, sb } = ctx;
  const card = h('section', { class: 'metric-card' }, h('header', null, h('h3', null, m)));
  grid.append(card);
  const c = new TimeChart(card, { title: `${m}: ${sa.name} vs ${sb.name}`, relative: true, cursor: ctx.cursor, onZoom: ctx.zoom, onReset: ctx.reset });
  const s1 = new Series(sa.name, colorFor(0)); s1.setData(A.timestamp_ms, A.value); s1.offset = -sa.summary.first_timestamp_ms;
  const s2 = new Series(sb.name, colorFor(1)); s2.setData(B.timestamp_ms, B.value); s2.offset = -sb.summary.first_timestamp_ms;
  c.addSeries(s1); c.addSeries(s2);
  ctx.maxSpan = Math.max(ctx.maxSpan, s1.last, s2.last);
  ctx.charts.push(c);
}
