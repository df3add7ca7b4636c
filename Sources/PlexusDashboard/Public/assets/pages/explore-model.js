// The Explore page's logic without the DOM: the selection from the URL and back, the
// time window, query parameters, and live points folded into rollup buckets.
// Unit-tested in Tests/dashboard/explore-model.test.mjs.

export const RANGES = [['5m', '5 min', 3e5], ['15m', '15 min', 9e5], ['1h', '1 hour', 36e5], ['6h', '6 hours', 216e5], ['24h', '24 hours', 864e5], ['7d', '7 days', 6048e5], ['30d', '30 days', 2592e6], ['abs', 'Absolute…', 0]];
export const INTERVALS = ['auto', 'raw', '1m', '10m', '1h', '1d'];
export const BUCKET_MS = { '1m': 6e4, '10m': 6e5, '1h': 36e5, '1d': 864e5 };

// A time as a datetime-local input's value (local time, to the second).
export function toLocalInput(ms) { const d = new Date(ms - new Date(ms).getTimezoneOffset() * 60000); return d.toISOString().slice(0, 19); }

// The sources to show: those asked for that exist, else the first online one, else the first.
export function initialSources(asked, sources) {
  const sel = new Set(asked.filter((s) => sources.some((d) => d.source_id === s)));
  if (!sel.size && sources.length) sel.add((sources.find((d) => d.online) || sources[0]).source_id);
  return sel;
}

// Keeps the selected metrics that exist; with none left, picks the first six that are
// not a vector's fields. `names` is sorted; `all` holds every metric.
export function pickMetrics(selected, names, all) {
  for (const m of [...selected]) if (!all.has(m)) selected.delete(m);
  if (!selected.size) names.filter((m) => !(m.includes('.') && all.has(m.slice(0, m.lastIndexOf('.'))))).slice(0, 6).forEach((m) => selected.add(m));
  return selected;
}

// The time window: absolute, or the last `ms` up to now (relative, named by `last`).
export function timeWindow(range, absStart, absEnd, now) {
  if (range === 'abs') return { start: absStart, end: absEnd, relative: false };
  const r = RANGES.find((x) => x[0] === range);
  return { start: now - r[2], end: now, relative: true, ms: r[2], last: r[0] };
}

// The page's URL query: sources, metrics, range, interval (unless auto), absolute times.
export function exploreQuery({ sources, metrics, range, interval, absStart, absEnd }) {
  const p = new URLSearchParams();
  for (const s of sources) p.append('source', s); for (const m of metrics) p.append('metric', m);
  p.set('range', range); if (interval !== 'auto') p.set('interval', interval);
  if (range === 'abs') { p.set('start', Math.round(absStart)); p.set('end', Math.round(absEnd)); }
  return p;
}

// The query API's parameters for a window.
export function queryParams(metrics, interval, w) {
  const params = new URLSearchParams({ metrics: metrics.join(','), interval });
  if (w.relative) params.set('last', w.last); else { params.set('start', Math.floor(w.start)); params.set('end', Math.ceil(w.end)); }
  return params;
}

// Rollups hold numbers only: the metrics a rollup answer lacks, to fetch again raw.
export function rawRetry(params, r, metrics) {
  const missing = metrics.filter((m) => !r.series[m]);
  if (r.interval === 'raw' || !missing.length) return null;
  const p2 = new URLSearchParams(params); p2.set('metrics', missing.join(',')); p2.set('interval', 'raw');
  return p2;
}

// The status line under the picker.
export function infoText({ count, interval, ms, truncated, follow }) {
  return `${count.toLocaleString()} ${interval === 'raw' ? 'points' : interval + ' buckets'} in ${Math.round(ms)} ms` +
    (truncated ? ' · truncated at 10,000 rows: narrow the range or pick a coarser interval' : '') +
    (follow ? ' · live' : '') + ' · drag to zoom, double-click to reset';
}

// A live point on a numeric series: folded into the current rollup bucket (running
// average, min, max) when the series is a rollup of `bucket` ms, else appended.
export function addLivePoint(se, bucket, t, value) {
  if (!(se.mn && bucket)) { se.push(t, value); return; }
  const bt = Math.floor(t / bucket) * bucket, i = se.n - 1;
  if (i >= 0 && se.t[i] === bt) {
    const c = (se.cnt = se.cnt || new Map()), k = c.get(bt) || 1;
    se.v[i] = (se.v[i] * k + value) / (k + 1); c.set(bt, k + 1);
    if (value < se.mn[i]) se.mn[i] = value; if (value > se.mx[i]) se.mx[i] = value;
  } else if (i < 0 || bt > se.t[i]) se.push(bt, value);
}
