// Explore: sources × metrics over a time range, rollups with min/max bands, zoom, live tail.
import { api, live, h, enc, errorBox } from '/assets/core.js';
import { TimeChart, Series, CursorGroup, MetricView, colorFor, classify } from '/assets/chart.js';
import {
  RANGES, INTERVALS, BUCKET_MS, toLocalInput, initialSources, pickMetrics, timeWindow, exploreQuery,
  queryParams, rawRetry, infoText, addLivePoint,
} from '/assets/pages/explore-model.js';

export async function explorePage(root, _p, q) {
  const ctx = { cursor: new CursorGroup(), ui: renderExplorePage(root), charts: [], views: [], unsubs: [], liveOff: null, runSeq: 0 };
  const { ui } = ctx;
  let sources = [];
  try { sources = (await api('GET', '/v1/sources')).devices || []; } catch (e) { ui.grid.append(errorBox(e)); return; }
  ctx.selSrc = initialSources(q.getAll('source'), sources);
  ctx.selMet = new Set(q.getAll('metric'));
  ui.rangeSel.value = q.get('range') || '15m'; ui.intSel.value = q.get('interval') || 'auto';
  ctx.absStart = +q.get('start') || 0; ctx.absEnd = +q.get('end') || 0;
  if (ui.rangeSel.value === 'abs' && ctx.absStart && ctx.absEnd) showAbsolute(ctx);
  if (!sources.length) { ui.grid.append(h('div', { class: 'empty' }, h('p', null, 'No sources yet.'))); return; }
  renderSources(ctx, sources);
  ctx.zoom = (a, b) => { ctx.absStart = a; ctx.absEnd = b; ui.rangeSel.value = 'abs'; showAbsolute(ctx); run(ctx); };
  // Double-click on any chart: back to the default range.
  ctx.resetRange = () => { ui.rangeSel.value = '15m'; ui.absBox.hidden = true; run(ctx); };
  bindControls(ctx);
  await loadMetrics(ctx);
  await run(ctx);
  return () => { ctx.runSeq++; clear(ctx); };
}

function renderExplorePage(root) {
  const ui = {
    srcBox: h('div', { class: 'checklist', role: 'group', 'aria-label': 'Sources' }),
    metBox: h('div', { class: 'checklist', role: 'group', 'aria-label': 'Metrics' }),
    rangeSel: h('select', { 'aria-label': 'Time range' }, RANGES.map(([v, l]) => h('option', { value: v }, l))),
    startIn: h('input', { type: 'datetime-local', step: 1, 'aria-label': 'Start time' }),
    endIn: h('input', { type: 'datetime-local', step: 1, 'aria-label': 'End time' }),
    intSel: h('select', { 'aria-label': 'Interval' }, INTERVALS.map((v) => h('option', { value: v }, v === 'auto' ? 'auto interval' : v))),
    liveChk: h('input', { type: 'checkbox', checked: true }),
    info: h('p', { class: 'muted small', 'aria-live': 'polite' }),
    grid: h('div', { class: 'chart-grid' }),
  };
  ui.absBox = h('div', { class: 'row gap abs', hidden: true }, h('label', { class: 'inline' }, 'From ', ui.startIn), h('label', { class: 'inline' }, 'to ', ui.endIn));
  root.append(h('div', { class: 'page explore' },
    h('div', { class: 'page-head' }, h('h1', null, 'Explore'), h('div', { class: 'spacer' }), ui.rangeSel, ui.intSel, h('label', { class: 'inline' }, ui.liveChk, ' Live tail')),
    ui.absBox,
    h('div', { class: 'explore-layout' },
      h('aside', { class: 'card picker' }, h('h2', null, 'Sources'), ui.srcBox, h('h2', null, 'Metrics'), ui.metBox),
      h('div', null, ui.info, ui.grid))));
  return ui;
}

// The absolute range's inputs, filled from absStart/absEnd.
function showAbsolute({ ui, absStart, absEnd }) {
  ui.startIn.value = toLocalInput(absStart); ui.endIn.value = toLocalInput(absEnd); ui.absBox.hidden = false;
}

function renderSources(ctx, sources) {
  for (const d of sources) {
    const cb = h('input', { type: 'checkbox', value: d.source_id, checked: ctx.selSrc.has(d.source_id) });
    cb.addEventListener('change', () => { cb.checked ? ctx.selSrc.add(d.source_id) : ctx.selSrc.delete(d.source_id); loadMetrics(ctx).then(() => run(ctx)); });
    ctx.ui.srcBox.append(h('label', null, cb, ' ', h('span', { class: `dot ${d.online ? 'on' : 'off'}`, 'aria-hidden': 'true' }), d.source_id));
  }
}

// The metrics of the selected sources, as checkboxes.
async function loadMetrics(ctx) {
  const all = new Set();
  await Promise.all([...ctx.selSrc].map(async (s) => { try { for (const m of await api('GET', `/v1/sources/${enc(s)}/metrics`)) all.add(m); } catch { /* ignore */ } }));
  const names = [...all].sort();
  pickMetrics(ctx.selMet, names, all);
  ctx.ui.metBox.replaceChildren(...names.map((m) => {
    const cb = h('input', { type: 'checkbox', value: m, checked: ctx.selMet.has(m) });
    cb.addEventListener('change', () => { cb.checked ? ctx.selMet.add(m) : ctx.selMet.delete(m); run(ctx); });
    return h('label', null, cb, ' ', m);
  }));
  if (!names.length) ctx.ui.metBox.append(h('p', { class: 'muted small' }, 'No metrics.'));
}

function bindControls(ctx) {
  const { ui } = ctx;
  ui.rangeSel.addEventListener('change', () => {
    if (ui.rangeSel.value === 'abs') {
      ui.absBox.hidden = false;
      if (!ctx.absStart) { ctx.absEnd = live.now(); ctx.absStart = ctx.absEnd - 36e5; showAbsolute(ctx); }
    } else ui.absBox.hidden = true;
    run(ctx);
  });
  const absChange = () => { const a = Date.parse(ui.startIn.value), b = Date.parse(ui.endIn.value); if (a && b) { ctx.absStart = a; ctx.absEnd = b; run(ctx); } };
  ui.startIn.addEventListener('change', absChange); ui.endIn.addEventListener('change', absChange);
  ui.intSel.addEventListener('change', () => run(ctx));
  ui.liveChk.addEventListener('change', () => run(ctx));
}

function clear(ctx) {
  for (const c of ctx.charts) c.destroy(); for (const v of ctx.views) v.destroy(); ctx.charts = []; ctx.views = [];
  ctx.unsubs.forEach((f) => f()); ctx.unsubs = []; if (ctx.liveOff) { ctx.liveOff(); ctx.liveOff = null; }
  ctx.ui.grid.replaceChildren();
}

function saveUrl({ selSrc, selMet, ui, absStart, absEnd }) {
  history.replaceState(null, '', '/explore?' + exploreQuery({ sources: selSrc, metrics: selMet, range: ui.rangeSel.value, interval: ui.intSel.value, absStart, absEnd }));
}

// Queries the selection and draws it; a newer run supersedes one still loading.
async function run(ctx) {
  const { ui } = ctx;
  const seq = ++ctx.runSeq;
  saveUrl(ctx);
  const w = timeWindow(ui.rangeSel.value, ctx.absStart, ctx.absEnd, live.now());
  if (!(w.end > w.start)) { ui.info.textContent = 'Pick a start before the end.'; return; }
  const mets = [...ctx.selMet].sort();
  if (!ctx.selSrc.size || !mets.length) { clear(ctx); ui.info.textContent = 'Pick at least one source and one metric.'; return; }
  ui.info.textContent = 'Loading…';
  const t = performance.now();
  let results;
  try { results = await query(ctx, mets, queryParams(mets, ui.intSel.value, w)); }
  catch (e) { if (seq === ctx.runSeq) { clear(ctx); ui.grid.append(errorBox(e)); ui.info.textContent = ''; } return; }
  if (seq !== ctx.runSeq) return;
  clear(ctx);
  const follow = w.relative && ui.liveChk.checked;
  const drawn = draw(ctx, results, mets);
  for (const c of [...ctx.charts, ...ctx.views.map((v) => v.chart)]) { if (follow) c.setFollow(w.ms, live.clockOffset); else c.setRange(w.start, w.end); }
  if (!ctx.charts.length && !ctx.views.length) ui.grid.append(h('div', { class: 'empty' }, h('p', null, 'No data for this selection and time range.')));
  ui.info.textContent = infoText({ count: drawn.count, interval: drawn.interval, ms: performance.now() - t, truncated: drawn.truncated, follow });
  if (follow) followLive(ctx, drawn);
}

// [[source, answer]] for every selected source; text/boolean/JSON metrics a rollup
// lacks are fetched again raw for state timelines.
function query(ctx, mets, params) {
  return Promise.all([...ctx.selSrc].map(async (s) => {
    const r = await api('GET', `/v1/sources/${enc(s)}/metrics/query?${params}`);
    const p2 = rawRetry(params, r, mets);
    if (p2) {
      try { const r2 = await api('GET', `/v1/sources/${enc(s)}/metrics/query?${p2}`); Object.assign(r.series, r2.series); r.truncated = r.truncated || r2.truncated; } catch { /* keep numbers */ }
    }
    return [s, r];
  }));
}

// A chart per numeric metric (a line per source), a view per source and other metric.
function draw(ctx, results, mets) {
  const out = { interval: 'raw', truncated: false, count: 0, numeric: new Map(), lineFor: new Map() }; // lineFor: `${src}\u0000${metric}` -> Series | MetricView
  const srcIndex = new Map([...ctx.selSrc].map((s, i) => [s, i]));
  for (const [src, r] of results) {
    out.interval = r.interval; out.truncated = out.truncated || r.truncated;
    for (const m of mets) {
      const s = r.series[m]; if (!s) continue;
      out.count += s.timestamp_ms.length;
      const agg = !!s.min;
      const sample = agg ? 0 : s.value[0];
      if (classify(sample) === 'number') {
        const c = numericChart(ctx, out.numeric, m);
        const se = new Series(ctx.selSrc.size > 1 ? src : m, colorFor(srcIndex.get(src)), { maxPoints: 500000 });
        if (agg) se.setData(s.timestamp_ms, s.avg, s.min, s.max); else se.setData(s.timestamp_ms, s.value);
        c.addSeries(se);
        c._legend.append(h('span', { class: 'legend-item' }, h('i', { style: `background:${se.color}` }), src, agg ? ` · ${r.interval} avg with min–max band` : ''));
        out.lineFor.set(src + '\u0000' + m, se);
      } else {
        const v = new MetricView(ctx.ui.grid, ctx.selSrc.size > 1 ? `${m} · ${src}` : m, sample, { cursor: ctx.cursor, onZoom: ctx.zoom, onReset: ctx.resetRange, maxPoints: 500000 });
        for (let i = 0; i < s.value.length; i++) v.push(s.timestamp_ms[i], s.value[i]);
        ctx.views.push(v); out.lineFor.set(src + '\u0000' + m, v);
      }
    }
  }
  return out;
}

// The card and chart of a numeric metric, made on first use.
function numericChart(ctx, numeric, m) {
  let c = numeric.get(m);
  if (!c) {
    const card = h('section', { class: 'metric-card', dataset: { metric: m } }, h('header', null, h('h3', null, m), h('span', { class: 'metric-val' })));
    ctx.ui.grid.append(card);
    c = new TimeChart(card, { title: m, cursor: ctx.cursor, onZoom: ctx.zoom, onReset: ctx.resetRange });
    c._legend = h('div', { class: 'legend' }); card.append(c._legend);
    numeric.set(m, c); ctx.charts.push(c);
  }
  return c;
}

// Live tail: points of the series shown are appended (or folded into the current bucket).
function followLive(ctx, { interval, numeric, lineFor }) {
  for (const s of ctx.selSrc) ctx.unsubs.push(live.subscribe(s));
  ctx.liveOff = live.on('telemetry', (fr) => {
    if (!ctx.selSrc.has(fr.source_id)) return;
    for (const p of fr.points) {
      if (!ctx.selMet.has(p.metric)) continue;
      const target = lineFor.get(fr.source_id + '\u0000' + p.metric);
      if (!target) continue; // new series appear on the next run
      if (target instanceof MetricView) target.push(p.timestamp, p.value);
      else if (typeof p.value === 'number') {
        addLivePoint(target, BUCKET_MS[interval], p.timestamp, p.value);
        numeric.get(p.metric).markDirty();
      }
    }
  });
}
