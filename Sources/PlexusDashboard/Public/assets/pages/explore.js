// Explore: sources × metrics over a time range, rollups with min/max bands, zoom, live tail.
import { api, live, h, enc, errorBox } from '/assets/core.js';
import { TimeChart, Series, StateSeries, CursorGroup, MetricView, colorFor, classify, fmtNum } from '/assets/chart.js';

const RANGES = [['5m', '5 min', 3e5], ['15m', '15 min', 9e5], ['1h', '1 hour', 36e5], ['6h', '6 hours', 216e5], ['24h', '24 hours', 864e5], ['7d', '7 days', 6048e5], ['30d', '30 days', 2592e6], ['abs', 'Absolute…', 0]];
const INTERVALS = ['auto', 'raw', '1m', '10m', '1h', '1d'];
const BUCKET_MS = { '1m': 6e4, '10m': 6e5, '1h': 36e5, '1d': 864e5 };

function toLocalInput(ms) { const d = new Date(ms - new Date(ms).getTimezoneOffset() * 60000); return d.toISOString().slice(0, 19); }

export async function explorePage(root, _p, q) {
  const cursor = new CursorGroup();
  const srcBox = h('div', { class: 'checklist', role: 'group', 'aria-label': 'Sources' });
  const metBox = h('div', { class: 'checklist', role: 'group', 'aria-label': 'Metrics' });
  const rangeSel = h('select', { 'aria-label': 'Time range' }, RANGES.map(([v, l]) => h('option', { value: v }, l)));
  const startIn = h('input', { type: 'datetime-local', step: 1, 'aria-label': 'Start time' });
  const endIn = h('input', { type: 'datetime-local', step: 1, 'aria-label': 'End time' });
  const absBox = h('div', { class: 'row gap abs', hidden: true }, h('label', { class: 'inline' }, 'From ', startIn), h('label', { class: 'inline' }, 'to ', endIn));
  const intSel = h('select', { 'aria-label': 'Interval' }, INTERVALS.map((v) => h('option', { value: v }, v === 'auto' ? 'auto interval' : v)));
  const liveChk = h('input', { type: 'checkbox', checked: true });
  const liveLbl = h('label', { class: 'inline' }, liveChk, ' Live tail');
  const info = h('p', { class: 'muted small', 'aria-live': 'polite' });
  const grid = h('div', { class: 'chart-grid' });
  root.append(h('div', { class: 'page explore' },
    h('div', { class: 'page-head' }, h('h1', null, 'Explore'), h('div', { class: 'spacer' }), rangeSel, intSel, liveLbl),
    absBox,
    h('div', { class: 'explore-layout' },
      h('aside', { class: 'card picker' }, h('h2', null, 'Sources'), srcBox, h('h2', null, 'Metrics'), metBox),
      h('div', null, info, grid))));

  let sources = [];
  try { sources = (await api('GET', '/v1/sources')).devices || []; } catch (e) { grid.append(errorBox(e)); return; }
  const selSrc = new Set(q.getAll('source').filter((s) => sources.some((d) => d.source_id === s)));
  if (!selSrc.size && sources.length) selSrc.add((sources.find((d) => d.online) || sources[0]).source_id);
  const selMet = new Set(q.getAll('metric'));
  rangeSel.value = q.get('range') || '15m'; intSel.value = q.get('interval') || 'auto';
  let absStart = +q.get('start') || 0, absEnd = +q.get('end') || 0;
  if (rangeSel.value === 'abs' && absStart && absEnd) { startIn.value = toLocalInput(absStart); endIn.value = toLocalInput(absEnd); absBox.hidden = false; }
  if (!sources.length) { grid.append(h('div', { class: 'empty' }, h('p', null, 'No sources yet.'))); return; }

  for (const d of sources) {
    const cb = h('input', { type: 'checkbox', value: d.source_id, checked: selSrc.has(d.source_id) });
    cb.addEventListener('change', () => { cb.checked ? selSrc.add(d.source_id) : selSrc.delete(d.source_id); loadMetrics().then(run); });
    srcBox.append(h('label', null, cb, ' ', h('span', { class: `dot ${d.online ? 'on' : 'off'}`, 'aria-hidden': 'true' }), d.source_id));
  }
  let metricNames = [];
  async function loadMetrics() {
    const all = new Set();
    await Promise.all([...selSrc].map(async (s) => { try { for (const m of await api('GET', `/v1/sources/${enc(s)}/metrics`)) all.add(m); } catch { /* ignore */ } }));
    metricNames = [...all].sort();
    for (const m of [...selMet]) if (!all.has(m)) selMet.delete(m);
    if (!selMet.size) metricNames.filter((m) => !(m.includes('.') && all.has(m.slice(0, m.lastIndexOf('.'))))).slice(0, 6).forEach((m) => selMet.add(m));
    metBox.replaceChildren(...metricNames.map((m) => {
      const cb = h('input', { type: 'checkbox', value: m, checked: selMet.has(m) });
      cb.addEventListener('change', () => { cb.checked ? selMet.add(m) : selMet.delete(m); run(); });
      return h('label', null, cb, ' ', m);
    }));
    if (!metricNames.length) metBox.append(h('p', { class: 'muted small' }, 'No metrics.'));
  }

  let charts = []; let views = [];
  let unsubs = []; let liveOff = null;
  let runSeq = 0;
  function window_() {
    if (rangeSel.value === 'abs') return { start: absStart, end: absEnd, relative: false };
    const r = RANGES.find((x) => x[0] === rangeSel.value);
    const end = live.now(); return { start: end - r[2], end, relative: true, ms: r[2], last: r[0] };
  }
  function clear() {
    for (const c of charts) c.destroy(); for (const v of views) v.destroy(); charts = []; views = [];
    unsubs.forEach((f) => f()); unsubs = []; if (liveOff) { liveOff(); liveOff = null; }
    grid.replaceChildren();
  }
  function saveUrl() {
    const p = new URLSearchParams();
    for (const s of selSrc) p.append('source', s); for (const m of selMet) p.append('metric', m);
    p.set('range', rangeSel.value); if (intSel.value !== 'auto') p.set('interval', intSel.value);
    if (rangeSel.value === 'abs') { p.set('start', Math.round(absStart)); p.set('end', Math.round(absEnd)); }
    history.replaceState(null, '', '/explore?' + p);
  }
  const zoom = (a, b) => {
    absStart = a; absEnd = b; rangeSel.value = 'abs';
    startIn.value = toLocalInput(a); endIn.value = toLocalInput(b); absBox.hidden = false; run();
  };
  // Double-click on any chart: back to the default range.
  const resetRange = () => { rangeSel.value = '15m'; absBox.hidden = true; run(); };

  async function run() {
    const seq = ++runSeq;
    saveUrl();
    const w = window_();
    if (!(w.end > w.start)) { info.textContent = 'Pick a start before the end.'; return; }
    const mets = [...selMet].sort();
    if (!selSrc.size || !mets.length) { clear(); info.textContent = 'Pick at least one source and one metric.'; return; }
    info.textContent = 'Loading…';
    const t = performance.now();
    const params = new URLSearchParams({ metrics: mets.join(','), interval: intSel.value });
    if (w.relative) params.set('last', w.last); else { params.set('start', Math.floor(w.start)); params.set('end', Math.ceil(w.end)); }
    let results;
    try {
      results = await Promise.all([...selSrc].map(async (s) => {
        const r = await api('GET', `/v1/sources/${enc(s)}/metrics/query?${params}`);
        // rollups hold numbers only: fetch text/boolean/JSON metrics raw for state timelines
        const missing = mets.filter((m) => !r.series[m]);
        if (r.interval !== 'raw' && missing.length) {
          const p2 = new URLSearchParams(params); p2.set('metrics', missing.join(',')); p2.set('interval', 'raw');
          try { const r2 = await api('GET', `/v1/sources/${enc(s)}/metrics/query?${p2}`); Object.assign(r.series, r2.series); r.truncated = r.truncated || r2.truncated; } catch { /* keep numbers */ }
        }
        return [s, r];
      }));
    } catch (e) { if (seq === runSeq) { clear(); grid.append(errorBox(e)); info.textContent = ''; } return; }
    if (seq !== runSeq) return;
    clear();
    let interval = 'raw', truncated = false, count = 0;
    const numeric = new Map(); // metric -> chart
    const follow = w.relative && liveChk.checked;
    const lineFor = new Map(); // `${src}\u0000${metric}` -> Series | MetricView
    const srcIndex = new Map([...selSrc].map((s, i) => [s, i]));
    for (const [src, r] of results) {
      interval = r.interval; truncated = truncated || r.truncated;
      for (const m of mets) {
        const s = r.series[m]; if (!s) continue;
        count += s.timestamp_ms.length;
        const agg = !!s.min;
        const sample = agg ? 0 : s.value[0];
        const kind = classify(sample);
        if (kind === 'number') {
          let c = numeric.get(m);
          if (!c) {
            const card = h('section', { class: 'metric-card', dataset: { metric: m } }, h('header', null, h('h3', null, m), h('span', { class: 'metric-val' })));
            grid.append(card);
            c = new TimeChart(card, { title: m, cursor, onZoom: zoom, onReset: resetRange });
            c._legend = h('div', { class: 'legend' }); card.append(c._legend);
            numeric.set(m, c); charts.push(c);
          }
          const se = new Series(selSrc.size > 1 ? src : m, colorFor(srcIndex.get(src)), { maxPoints: 500000 });
          if (agg) se.setData(s.timestamp_ms, s.avg, s.min, s.max); else se.setData(s.timestamp_ms, s.value);
          c.addSeries(se);
          c._legend.append(h('span', { class: 'legend-item' }, h('i', { style: `background:${se.color}` }), src, agg ? ` · ${r.interval} avg with min–max band` : ''));
          lineFor.set(src + '\u0000' + m, se);
        } else {
          const v = new MetricView(grid, selSrc.size > 1 ? `${m} · ${src}` : m, sample, { cursor, onZoom: zoom, onReset: resetRange, maxPoints: 500000 });
          for (let i = 0; i < s.value.length; i++) v.push(s.timestamp_ms[i], s.value[i]);
          views.push(v); lineFor.set(src + '\u0000' + m, v);
        }
      }
    }
    for (const c of [...charts, ...views.map((v) => v.chart)]) { if (follow) c.setFollow(w.ms, live.clockOffset); else c.setRange(w.start, w.end); }
    if (!charts.length && !views.length) grid.append(h('div', { class: 'empty' }, h('p', null, 'No data for this selection and time range.')));
    info.textContent = `${count.toLocaleString()} ${interval === 'raw' ? 'points' : interval + ' buckets'} in ${Math.round(performance.now() - t)} ms` +
      (truncated ? ' · truncated at 10,000 rows: narrow the range or pick a coarser interval' : '') +
      (follow ? ' · live' : '') + ' · drag to zoom, double-click to reset';
    if (follow) {
      for (const s of selSrc) unsubs.push(live.subscribe(s));
      liveOff = live.on('telemetry', (fr) => {
        if (!selSrc.has(fr.source_id)) return;
        for (const p of fr.points) {
          if (!selMet.has(p.metric)) continue;
          let target = lineFor.get(fr.source_id + '\u0000' + p.metric);
          if (!target) continue; // new series appear on the next run
          if (target instanceof MetricView) target.push(p.timestamp, p.value);
          else if (typeof p.value === 'number') {
            const bucket = BUCKET_MS[interval];
            if (target.mn && bucket) {
              // fold live points into the current rollup bucket (avg with min/max band)
              const bt = Math.floor(p.timestamp / bucket) * bucket, i = target.n - 1;
              if (i >= 0 && target.t[i] === bt) {
                const c = (target.cnt = target.cnt || new Map()), k = c.get(bt) || 1;
                target.v[i] = (target.v[i] * k + p.value) / (k + 1); c.set(bt, k + 1);
                if (p.value < target.mn[i]) target.mn[i] = p.value; if (p.value > target.mx[i]) target.mx[i] = p.value;
              } else if (i < 0 || bt > target.t[i]) target.push(bt, p.value);
            } else target.push(p.timestamp, p.value);
            numeric.get(p.metric).markDirty();
          }
        }
      });
    }
  }
  rangeSel.addEventListener('change', () => {
    if (rangeSel.value === 'abs') {
      absBox.hidden = false;
      if (!absStart) { absEnd = live.now(); absStart = absEnd - 36e5; startIn.value = toLocalInput(absStart); endIn.value = toLocalInput(absEnd); }
    } else absBox.hidden = true;
    run();
  });
  const absChange = () => { const a = Date.parse(startIn.value), b = Date.parse(endIn.value); if (a && b) { absStart = a; absEnd = b; run(); } };
  startIn.addEventListener('change', absChange); endIn.addEventListener('change', absChange);
  intSel.addEventListener('change', run);
  liveChk.addEventListener('change', run);
  await loadMetrics();
  await run();
  return () => { runSeq++; clear(); };
}
void fmtNum; void StateSeries;
