// The sessions pages' logic without the DOM: list filters, loading a session's points page
// by page, playback positions, what to compare. Unit-tested in Tests/dashboard/sessions-model.test.mjs.
import { fmtDuration, enc } from '/assets/core.js';
import { fmtRel } from '/assets/chart.js';

export const STATUS = ['active', 'completed', 'aborted'];

// Start to end, or to now while the session is still recording.
export function duration(s, now = Date.now()) {
  const a = Date.parse(s.started_at), b = s.ended_at ? Date.parse(s.ended_at) : now;
  return fmtDuration(b - a);
}

// The list's filters as a query string ('' for none).
export function sessionsQuery(sourceId, status) {
  const params = new URLSearchParams();
  if (sourceId) params.set('source_id', sourceId);
  if (status) params.set('status', status);
  return params.toString();
}

// Runs at most n of the functions given at once, the others in the order given.
export function limiter(n) {
  let active = 0; const waiting = [];
  const next = () => { if (active < n && waiting.length) { active++; const [fn, ok, ko] = waiting.shift(); fn().then(ok, ko).finally(() => { active--; next(); }); } };
  return (fn) => new Promise((ok, ko) => { waiting.push([fn, ok, ko]); next(); });
}

// Long sessions are cut into time chunks: one per 40,000 points of a metric, 1 to 16.
export function chunkCount(pointCount, metricCount) {
  const perMetric = (pointCount || 0) / Math.max(1, metricCount);
  return Math.max(1, Math.min(16, Math.ceil(perMetric / 40000)));
}

// The [start, end) of each chunk (whole ms when there is more than one).
export function chunkRanges(first, end, chunks) {
  if (chunks === 1) return [[first, end]];
  const step = (end - first) / chunks, out = [];
  for (let k = 0; k < chunks; k++) {
    const a = first + k * step, b = k === chunks - 1 ? end : first + (k + 1) * step;
    out.push([Math.floor(a), Math.floor(b)]);
  }
  return out;
}

// Where the next page of a truncated answer starts: just after its last point.
export function nextPageStart(ts) { return Math.max(ts[ts.length - 1] + 0.001, 1e12); }

// Loads every raw point of a session's metrics, paging past the 10,000-row cap. Long
// sessions are cut into time chunks fetched 4 at a time, and delivered in time order.
// `get(url)` answers a GET; with `onPage(metric, ts, vs)` pages are handed on as they
// come, else the result holds {metric: {timestamp_ms, value}}.
export async function loadSessionData(get, sid, summary, metrics, onProgress, onPage, alive = () => true) {
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
      const r = await limit(() => get(`/api/sessions/${enc(sid)}/data?interval=raw&metrics=${enc(m)}&start=${start}&end=${b}`));
      const s = r.series && r.series[m];
      if (s && s.timestamp_ms.length) sink(s.timestamp_ms, s.value);
      if (!r.truncated || !s || !s.timestamp_ms.length) return;
      start = nextPageStart(s.timestamp_ms);
    }
  }
  const chunks = chunkCount(summary.point_count, metrics.length);
  await Promise.all(metrics.map(async (m) => {
    if (chunks === 1) { await range(m, first, end, (ts, vs) => deliver(m, ts, vs)); return; }
    const parts = chunkRanges(first, end, chunks).map(([a, b]) => {
      const buf = [];
      return { buf, done: range(m, a, b, (ts, vs) => buf.push([ts, vs])) };
    });
    for (const p of parts) { await p.done; for (const [ts, vs] of p.buf) deliver(m, ts, vs); p.buf.length = 0; }
  }));
  return out;
}

// A vector's fields (`accel.x` beside `accel`) are drawn with the vector, not alone.
export function primaryMetrics(list) {
  const set = new Set(list);
  return list.filter((m) => { const i = m.lastIndexOf('.'); return !(i > 0 && set.has(m.slice(0, i))); });
}

// A live point's metric is a field of a vector already charted (`has(parent)`).
export function isFieldOf(metric, has) {
  return metric.includes('.') && has(metric.slice(0, metric.lastIndexOf('.')));
}

// A live point belongs to the session: tagged with it, or untagged while the device records it.
export function inSession(p, sid, recording) {
  return p.session_id === sid || (!p.session_id && recording === sid);
}

// ---- playback ----
export const clampTime = (t, t0, t1) => Math.max(t0, Math.min(t1, t));
// The slider runs from 0 to 10000 over [t0, t1].
export const scrubValue = (t, t0, t1) => Math.round((t - t0) / (t1 - t0) * 10000);
export const scrubTime = (value, t0, t1) => t0 + (+value / 10000) * (t1 - t0);
// The whole session with 1 % room after its end.
export const fullRange = (t0, t1) => [t0, t1 + (t1 - t0) * 0.01];

// The time readout ("T+1.5s / T+10s") and the slider's aria-valuetext.
export function positionText(t, t0, t1) {
  return { time: `${fmtRel(t - t0)} / ${fmtRel(t1 - t0)}`, valuetext: `${fmtRel(t - t0)} of ${fmtRel(t1 - t0)}` };
}

// ---- compare ----
export function commonMetrics(a, b) { return a.filter((m) => b.includes(m)); }
// Both sessions have points of the metric, numbers at first.
export function comparable(A, B) {
  return !!(A && B && A.value.length && typeof A.value[0] === 'number' && typeof B.value[0] === 'number');
}
