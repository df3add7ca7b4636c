// Plexus telemetry charts: hand-written canvas rendering.
// - line charts with min/max decimation per pixel column (1M points draw in a few ms)
// - min/max bands for aggregated (rollup) series
// - state timelines for strings/booleans, waveform of the latest array value
// - one requestAnimationFrame loop for every chart; a chart draws only when dirty
// - shared time cursor across charts (CursorGroup); drag to zoom; keyboard cursor

const PALETTE = ['#3b82f6', '#f97316', '#10b981', '#e11d48', '#8b5cf6', '#eab308', '#06b6d4', '#db2777', '#84cc16', '#64748b'];
const STATE_COLORS = ['#3b82f6', '#10b981', '#f97316', '#8b5cf6', '#e11d48', '#06b6d4', '#eab308', '#db2777', '#84cc16', '#64748b'];

export function colorFor(i) { return PALETTE[i % PALETTE.length]; }

// ---------- global frame scheduler ----------
const charts = new Set();
let rafId = 0;
let frameListeners = new Set();
const stats = { frames: 0, draws: 0, lastDrawMs: 0 };

function schedule() {
  if (!rafId) rafId = requestAnimationFrame(frame);
}
function frame(now) {
  rafId = 0;
  stats.frames++;
  for (const f of frameListeners) f(now);
  let again = frameListeners.size > 0;
  for (const c of charts) {
    if (c._wantsFrame(now)) { c.draw(); }
    if (c.follow && c.visible) again = true;
  }
  if (again) schedule();
}
export function onFrame(fn) { frameListeners.add(fn); schedule(); return () => frameListeners.delete(fn); }
export function chartStats() { return { ...stats, charts: charts.size }; }
export function allCharts() { return [...charts]; }

// ---------- theme ----------
let theme = null;
function readTheme() {
  const cs = getComputedStyle(document.documentElement);
  const v = (n, d) => (cs.getPropertyValue(n).trim() || d);
  theme = {
    bg: v('--chart-bg', '#fff'), grid: v('--chart-grid', '#e5e7eb'), axis: v('--chart-axis', '#6b7280'),
    text: v('--chart-text', '#374151'), cursor: v('--chart-cursor', '#111827'), sel: v('--chart-sel', 'rgba(59,130,246,0.15)'),
    gap: v('--chart-gap', 'rgba(217,119,6,0.16)'), gapLine: v('--chart-gap-line', 'rgba(217,119,6,0.85)'),
    font: '11px system-ui, -apple-system, Segoe UI, Roboto, sans-serif',
  };
}
// devicePixelRatio changes (browser zoom, another screen) without a size change
function watchDpr() {
  const mq = matchMedia(`(resolution: ${window.devicePixelRatio || 1}dppx)`);
  mq.addEventListener('change', () => { for (const c of charts) c._resize(); watchDpr(); }, { once: true });
}
if (typeof matchMedia === 'function') watchDpr();
export function themeChanged() { readTheme(); for (const c of charts) c.dirty = true; schedule(); }

// ---------- cursor group ----------
export class CursorGroup {
  constructor() { this.t = null; this.charts = new Set(); }
  set(t) {
    if (t === this.t) return;
    this.t = t;
    for (const c of this.charts) { c.dirty = true; }
    schedule();
  }
}

// ---------- growable numeric series ----------
export class Series {
  constructor(name, color, opts = {}) {
    this.name = name; this.color = color;
    this.cap = opts.capacity || 1024;
    this.max = opts.maxPoints || 0;           // 0: unlimited; else keep the newest max points
    this.t = new Float64Array(this.cap); this.v = new Float64Array(this.cap);
    this.n = 0;
    this.mn = null; this.mx = null;           // bands (aggregated series)
    this.raw = opts.keepRaw ? [] : null;      // raw values for hover (vectors)
    this.offset = 0;                           // added to t when drawing (relative compare)
  }
  _grow(need) {
    let cap = this.cap; while (cap < need) cap *= 2;
    const t = new Float64Array(cap); t.set(this.t.subarray(0, this.n)); this.t = t;
    const v = new Float64Array(cap); v.set(this.v.subarray(0, this.n)); this.v = v;
    if (this.mn) { const a = new Float64Array(cap); a.set(this.mn.subarray(0, this.n)); this.mn = a; const b = new Float64Array(cap); b.set(this.mx.subarray(0, this.n)); this.mx = b; }
    this.cap = cap;
  }
  push(t, v, raw) {
    if (this.n >= this.cap) {
      if (this.max && this.n >= this.max) this._drop(Math.max(1, this.n >> 2));
      else this._grow(this.n + 1);
    }
    let i = this.n;
    // keep sorted: live points can arrive slightly out of order between metric groups
    if (i > 0 && t < this.t[i - 1]) {
      let j = i; while (j > 0 && this.t[j - 1] > t) j--;
      this.t.copyWithin(j + 1, j, i); this.v.copyWithin(j + 1, j, i);
      if (this.raw) this.raw.splice(j, 0, raw);
      if (this.mn) { this.mn.copyWithin(j + 1, j, i); this.mx.copyWithin(j + 1, j, i); this.mn[j] = v; this.mx[j] = v; }
      this.t[j] = t; this.v[j] = v; this.n++; return;
    }
    this.t[i] = t; this.v[i] = v; if (this.raw) this.raw.push(raw);
    if (this.mn) { this.mn[i] = v; this.mx[i] = v; }
    this.n = i + 1;
  }
  _drop(k) {
    this.t.copyWithin(0, k, this.n); this.v.copyWithin(0, k, this.n);
    if (this.mn) { this.mn.copyWithin(0, k, this.n); this.mx.copyWithin(0, k, this.n); }
    if (this.raw) this.raw.splice(0, k);
    this.n -= k;
  }
  setData(ts, vs, mn, mx) {
    const n = ts.length;
    if (n > this.cap) { this.cap = n; }
    this.t = Float64Array.from(ts); this.v = Float64Array.from(vs);
    this.mn = mn ? Float64Array.from(mn) : null; this.mx = mx ? Float64Array.from(mx) : null;
    this.cap = Math.max(n, 1); this.n = n;
    if (this.raw) this.raw = [];
  }
  // older points in time order, all before the current first point
  prepend(ts, vs, raws) {
    const k = ts.length; if (!k) return;
    const n = this.n, cap = Math.max(this.cap, n + k);
    const t = new Float64Array(cap), v = new Float64Array(cap);
    t.set(ts); v.set(vs); t.set(this.t.subarray(0, n), k); v.set(this.v.subarray(0, n), k);
    if (this.mn) { const a = new Float64Array(cap), b = new Float64Array(cap); a.set(vs); b.set(vs); a.set(this.mn.subarray(0, n), k); b.set(this.mx.subarray(0, n), k); this.mn = a; this.mx = b; }
    this.t = t; this.v = v; this.cap = cap; this.n = n + k;
    if (this.raw) this.raw = (raws || new Array(k)).concat(this.raw);
  }
  lowerBound(t) { // first index with time >= t
    let lo = 0, hi = this.n; const a = this.t, off = this.offset;
    while (lo < hi) { const m = (lo + hi) >> 1; if (a[m] + off < t) lo = m + 1; else hi = m; }
    return lo;
  }
  nearest(t) {
    if (!this.n) return -1;
    const i = this.lowerBound(t);
    if (i <= 0) return 0; if (i >= this.n) return this.n - 1;
    return (t - (this.t[i - 1] + this.offset) <= (this.t[i] + this.offset) - t) ? i - 1 : i;
  }
  upperBound(t) { // first index with time > t
    let lo = 0, hi = this.n; const a = this.t, off = this.offset;
    while (lo < hi) { const m = (lo + hi) >> 1; if (a[m] + off <= t) lo = m + 1; else hi = m; }
    return lo;
  }
  // the last point at or before t (-1: none). Not lowerBound(t + epsilon): near 1.8e12 ms
  // a small epsilon vanishes in the addition and the point exactly at t was skipped.
  atOrBefore(t) { return this.upperBound(t) - 1; }
  get first() { return this.n ? this.t[0] + this.offset : NaN; }
  get last() { return this.n ? this.t[this.n - 1] + this.offset : NaN; }
}

// ---------- state series (strings / booleans / other JSON) ----------
export class StateSeries {
  constructor(name) { this.name = name; this.t = []; this.v = []; this.raw = []; this.colors = new Map(); this.offset = 0; this.max = 50000; }
  push(t, label, raw) {
    if (!this.colors.has(label)) this.colors.set(label, STATE_COLORS[this.colors.size % STATE_COLORS.length]);
    let i = this.t.length;
    if (i && t < this.t[i - 1]) { while (i > 0 && this.t[i - 1] > t) i--; this.t.splice(i, 0, t); this.v.splice(i, 0, label); this.raw.splice(i, 0, raw); }
    else { this.t.push(t); this.v.push(label); this.raw.push(raw); }
    if (this.t.length > this.max) { const k = this.t.length - this.max; this.t.splice(0, k); this.v.splice(0, k); this.raw.splice(0, k); }
  }
  prepend(ts, labels, raws) {
    for (const l of labels) if (!this.colors.has(l)) this.colors.set(l, STATE_COLORS[this.colors.size % STATE_COLORS.length]);
    this.t = ts.concat(this.t); this.v = labels.concat(this.v); this.raw = raws.concat(this.raw);
  }
  get n() { return this.t.length; }
  atOrBefore(t) { let lo = 0, hi = this.t.length; while (lo < hi) { const m = (lo + hi) >> 1; if (this.t[m] + this.offset <= t) lo = m + 1; else hi = m; } return lo - 1; }
  get first() { return this.t.length ? this.t[0] + this.offset : NaN; }
  get last() { return this.t.length ? this.t[this.t.length - 1] + this.offset : NaN; }
}

// ---------- time formatting / ticks ----------
const TIME_STEPS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1e3, 2e3, 5e3, 1e4, 15e3, 3e4, 6e4, 12e4, 3e5, 6e5, 9e5, 18e5, 36e5, 72e5, 108e5, 216e5, 432e5, 864e5, 1728e5, 6048e5, 2592e6];
function pad(n, w = 2) { return String(n).padStart(w, '0'); }
export function fmtTime(t, span) {
  const d = new Date(t);
  if (span >= 2 * 864e5) return `${d.getMonth() + 1}/${d.getDate()} ${pad(d.getHours())}:${pad(d.getMinutes())}`;
  if (span >= 6e4 * 10) return `${pad(d.getHours())}:${pad(d.getMinutes())}`;
  if (span >= 5e3) return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
}
export function fmtRel(ms) {
  const s = ms / 1000, sign = s < 0 ? '-' : '+', a = Math.abs(s);
  if (a < 60) return `T${sign}${a < 10 ? a.toFixed(a % 1 ? 2 : 0) : a.toFixed(a % 1 ? 1 : 0)}s`;
  const m = Math.floor(a / 60), r = Math.round(a % 60);
  if (m < 60) return `T${sign}${m}:${pad(r)}`;
  return `T${sign}${Math.floor(m / 60)}h${pad(m % 60)}`;
}
export function fmtNum(v) {
  if (!isFinite(v)) return String(v);
  const a = Math.abs(v);
  if (a !== 0 && (a >= 1e6 || a < 1e-3)) return v.toExponential(2);
  if (a >= 1000) return v.toFixed(0);
  if (a >= 100) return v.toFixed(1);
  if (a >= 1) return v.toFixed(2);
  return v.toFixed(3);
}
function niceStep(range, count) {
  const raw = range / Math.max(1, count), p = Math.pow(10, Math.floor(Math.log10(raw))), f = raw / p;
  return (f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10) * p;
}

// ---------- the chart ----------
// kind: 'line' | 'state' | 'wave'
export class TimeChart {
  constructor(container, opts = {}) {
    if (!theme) readTheme();
    this.kind = opts.kind || 'line';
    this.title = opts.title || '';
    this.relative = !!opts.relative;     // x axis as T+ from 0
    this.cursor = opts.cursor || null;   // CursorGroup
    this.onZoom = opts.onZoom || null;   // (t0, t1) => void ; null: no drag zoom
    this.onReset = opts.onReset || null;
    this.height = opts.height || (this.kind === 'state' ? 64 : 180);
    this.series = [];                    // Series (line) / StateSeries (state)
    this.wave = null;                    // {t, values:number[]} (wave)
    this.waveHistory = null;             // optional [{t, values}] for cursor playback
    this.t0 = 0; this.t1 = 1;
    this.follow = false; this.windowMs = 60000; this.clockOffset = 0;
    this.dirty = true; this.visible = true;
    this.lastDrawMs = 0; this.drawCount = 0; this._lastFollowT = 0;
    this.pointsDrawn = 0;
    this.gaps = [];                      // [{from, to}] ms: live data the server dropped (marked)

    this.el = document.createElement('div');
    this.el.className = 'chart';
    this.el.style.height = this.height + 'px';
    this.canvas = document.createElement('canvas');
    this.canvas.tabIndex = 0;
    this.canvas.setAttribute('role', 'img');
    this.canvas.setAttribute('aria-label', this.title || 'chart');
    this.tip = document.createElement('div'); this.tip.className = 'chart-tip'; this.tip.hidden = true;
    this.el.append(this.canvas, this.tip);
    container.appendChild(this.el);
    this.ctx = this.canvas.getContext('2d', { alpha: false });
    this._w = 0; this._h = 0; this._dpr = 1;
    this._ro = new ResizeObserver(() => { this._resize(); });
    this._ro.observe(this.el);
    this._io = new IntersectionObserver((es) => { for (const e of es) this.visible = e.isIntersecting; if (this.visible) { this.dirty = true; schedule(); } });
    this._io.observe(this.el);
    this._bind();
    this._resize();
    if (this.cursor) this.cursor.charts.add(this);
    charts.add(this);
    this._ariaTimer = 0;
  }
  destroy() {
    charts.delete(this); if (this.cursor) this.cursor.charts.delete(this);
    this._ro.disconnect(); this._io.disconnect(); this.el.remove();
  }
  _resize() {
    const r = this.el.getBoundingClientRect();
    const dpr = window.devicePixelRatio || 1;
    const w = Math.max(10, Math.round(r.width)), h = Math.max(10, Math.round(r.height));
    if (w === this._w && h === this._h && dpr === this._dpr) return;
    this._w = w; this._h = h; this._dpr = dpr;
    this.canvas.width = Math.round(w * dpr); this.canvas.height = Math.round(h * dpr);
    this.canvas.style.width = w + 'px'; this.canvas.style.height = h + 'px';
    this.dirty = true; schedule();
  }
  markDirty() { this.dirty = true; schedule(); }
  setRange(t0, t1) { this.t0 = t0; this.t1 = Math.max(t1, t0 + 1); this.follow = false; this.markDirty(); }
  setFollow(windowMs, clockOffset = 0) { this.follow = true; this.windowMs = windowMs; this.clockOffset = clockOffset; this.markDirty(); }
  addSeries(s) { this.series.push(s); this.markDirty(); return s; }
  _wantsFrame(now) {
    if (!this.visible) return false;
    if (this.follow) {
      const t = Date.now() + this.clockOffset;
      const pxPerMs = (this._w - 60) / this.windowMs;
      if ((t - this._lastFollowT) * pxPerMs >= 0.5) this.dirty = true;
    }
    return this.dirty;
  }
  // layout
  get plot() {
    const left = 52, right = 8, top = 8, bottom = this.kind === 'wave' ? 8 : 20;
    return { x: left, y: top, w: Math.max(1, this._w - left - right), h: Math.max(1, this._h - top - bottom) };
  }
  xOf(t) { const p = this.plot; return p.x + (t - this.t0) / (this.t1 - this.t0) * p.w; }
  tOf(x) { const p = this.plot; return this.t0 + (x - p.x) / p.w * (this.t1 - this.t0); }

  draw() {
    const t0perf = performance.now();
    this.dirty = false;
    if (this.follow) { const now = Date.now() + this.clockOffset; this._lastFollowT = now; this.t1 = now; this.t0 = now - this.windowMs; }
    const ctx = this.ctx, dpr = this._dpr;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.fillStyle = theme.bg; ctx.fillRect(0, 0, this._w, this._h);
    ctx.font = theme.font;
    this.pointsDrawn = 0;
    if (this.kind === 'line') this._drawLine();
    else if (this.kind === 'state') this._drawState();
    else this._drawWave();
    if (this.gaps.length && this.kind !== 'wave') this._drawGaps();
    if (this._sel) {
      const p = this.plot, a = Math.min(this._sel.x0, this._sel.x1), b = Math.max(this._sel.x0, this._sel.x1);
      ctx.fillStyle = theme.sel; ctx.fillRect(a, p.y, b - a, p.h);
    }
    this.drawCount++; stats.draws++;
    this.lastDrawMs = performance.now() - t0perf; stats.lastDrawMs = this.lastDrawMs;
    if (this.onDraw) this.onDraw(this);
    this._scheduleAria();
  }

  // marks a stretch of time whose live points were dropped (a `gap` frame)
  addGap(from, to) { this.gaps.push({ from, to }); if (this.gaps.length > 50) this.gaps.shift(); this.markDirty(); }
  _drawGaps() {
    const ctx = this.ctx, p = this.plot;
    ctx.save(); ctx.fillStyle = theme.gap; ctx.strokeStyle = theme.gapLine; ctx.setLineDash([3, 3]); ctx.lineWidth = 1;
    for (const g of this.gaps) {
      if (g.to < this.t0 || g.from > this.t1) continue;
      const a = Math.max(p.x, this.xOf(g.from)), b = Math.min(p.x + p.w, Math.max(a + 2, this.xOf(g.to)));
      ctx.fillRect(a, p.y, b - a, p.h);
      ctx.beginPath(); ctx.moveTo(Math.round(a) + 0.5, p.y); ctx.lineTo(Math.round(a) + 0.5, p.y + p.h); ctx.stroke();
    }
    ctx.restore();
  }

  _xTicks(p) {
    const ctx = this.ctx, span = this.t1 - this.t0;
    const target = Math.max(2, Math.floor(p.w / 90));
    let step = TIME_STEPS[TIME_STEPS.length - 1];
    for (const s of TIME_STEPS) if (span / s <= target) { step = s; break; }
    const tzOff = this.relative ? 0 : new Date(this.t0).getTimezoneOffset() * 60000;
    let t = Math.ceil((this.t0 - tzOff) / step) * step + tzOff;
    ctx.strokeStyle = theme.grid; ctx.fillStyle = theme.axis; ctx.lineWidth = 1; ctx.textAlign = 'center'; ctx.textBaseline = 'top';
    ctx.beginPath();
    const labels = [];
    for (; t <= this.t1; t += step) {
      const x = Math.round(this.xOf(t)) + 0.5;
      ctx.moveTo(x, p.y); ctx.lineTo(x, p.y + p.h);
      labels.push([x, this.relative ? fmtRel(t) : fmtTime(t, span)]);
    }
    ctx.stroke();
    if (this.kind !== 'wave') for (const [x, l] of labels) {
      const hw = ctx.measureText(l).width / 2;
      if (x - hw < 0 || x + hw > this._w) continue;
      ctx.fillText(l, x, p.y + p.h + 4);
    }
  }

  _drawLine() {
    const ctx = this.ctx, p = this.plot, W = Math.ceil(p.w);
    const t0 = this.t0, t1 = this.t1, sx = p.w / (t1 - t0);
    // pass 1: per-series column decimation + y range
    let ymin = Infinity, ymax = -Infinity;
    const cols = [];
    for (const s of this.series) {
      if (!s.n || s.hidden) { cols.push(null); continue; }
      const off = s.offset;
      let i0 = s.lowerBound(t0) - 1; if (i0 < 0) i0 = 0;
      let i1 = s.lowerBound(t1) + 1; if (i1 > s.n) i1 = s.n;
      const ts = s.t, vs = s.v;
      if (s.mn) {
        for (let i = i0; i < i1; i++) { const a = s.mn[i], b = s.mx[i]; if (a < ymin) ymin = a; if (b > ymax) ymax = b; }
        cols.push({ band: true, i0, i1 }); this.pointsDrawn += i1 - i0; continue;
      }
      const mn = new Float64Array(W + 2), mx = new Float64Array(W + 2), fi = new Float64Array(W + 2), la = new Float64Array(W + 2);
      const has = new Uint8Array(W + 2), ft = new Float64Array(W + 2), lt = new Float64Array(W + 2);
      let pre = -1, post = -1;
      for (let i = i0; i < i1; i++) {
        const t = ts[i] + off, v = vs[i];
        if (t < t0) { pre = i; continue; }
        if (t >= t1) { if (post < 0) post = i; continue; }
        const c = ((t - t0) * sx) | 0;
        if (!has[c]) { has[c] = 1; mn[c] = mx[c] = fi[c] = la[c] = v; ft[c] = lt[c] = t; }
        else { if (v < mn[c]) mn[c] = v; else if (v > mx[c]) mx[c] = v; la[c] = v; lt[c] = t; }
        if (v < ymin) ymin = v; if (v > ymax) ymax = v;
      }
      this.pointsDrawn += i1 - i0;
      // a pause much longer than the usual spacing is drawn as a gap, not a line
      const span = i1 - i0 > 1 ? (ts[i1 - 1] - ts[i0]) / (i1 - i0 - 1) : Infinity;
      const gap = Math.max(span * 10, 3 / sx, 1000);
      cols.push({ mn, mx, fi, la, has, pre, post, ft, lt, gap });
    }
    if (!(ymin <= ymax)) { ymin = 0; ymax = 1; }
    if (ymin === ymax) { ymin -= 1; ymax += 1; }
    const padY = (ymax - ymin) * 0.06; ymin -= padY; ymax += padY;
    this._ymin = ymin; this._ymax = ymax;
    const sy = p.h / (ymax - ymin), yOf = (v) => p.y + p.h - (v - ymin) * sy;
    // grid
    this._xTicks(p);
    const step = niceStep(ymax - ymin, Math.max(2, Math.floor(p.h / 40)));
    ctx.strokeStyle = theme.grid; ctx.fillStyle = theme.axis; ctx.textAlign = 'right'; ctx.textBaseline = 'middle';
    ctx.beginPath();
    for (let v = Math.ceil(ymin / step) * step; v <= ymax; v += step) {
      const y = Math.round(yOf(v)) + 0.5; ctx.moveTo(p.x, y); ctx.lineTo(p.x + p.w, y);
      ctx.fillText(fmtNum(Math.abs(v) < step * 1e-6 ? 0 : v), p.x - 6, y);
    }
    ctx.stroke();
    // series
    ctx.save(); ctx.beginPath(); ctx.rect(p.x, p.y - 1, p.w, p.h + 2); ctx.clip();
    ctx.lineJoin = 'round';
    this.series.forEach((s, k) => {
      const c = cols[k]; if (!c) return;
      ctx.strokeStyle = s.color; ctx.lineWidth = this.lineWidth || 1; // 1 px: Skia's fast hairline path (1.5 px is several times slower in software raster)
      if (c.band) {
        const off = s.offset;
        ctx.beginPath();
        for (let i = c.i0; i < c.i1; i++) { const x = p.x + (s.t[i] + off - t0) * sx; i === c.i0 ? ctx.moveTo(x, yOf(s.mx[i])) : ctx.lineTo(x, yOf(s.mx[i])); }
        for (let i = c.i1 - 1; i >= c.i0; i--) ctx.lineTo(p.x + (s.t[i] + off - t0) * sx, yOf(s.mn[i]));
        ctx.closePath(); ctx.globalAlpha = 0.18; ctx.fillStyle = s.color; ctx.fill(); ctx.globalAlpha = 1;
        ctx.beginPath();
        for (let i = c.i0; i < c.i1; i++) { const x = p.x + (s.t[i] + off - t0) * sx, y = yOf(s.v[i]); i === c.i0 ? ctx.moveTo(x, y) : ctx.lineTo(x, y); }
        ctx.stroke();
        if (c.i1 - c.i0 === 1) { ctx.fillStyle = s.color; ctx.fillRect(p.x + (s.t[c.i0] + off - t0) * sx - 2, yOf(s.v[c.i0]) - 2, 4, 4); }
        return;
      }
      ctx.beginPath();
      let started = false, count = 0, prevT = c.pre >= 0 ? s.t[c.pre] + s.offset : -Infinity;
      if (c.pre >= 0) { ctx.moveTo(p.x + (s.t[c.pre] + s.offset - t0) * sx, yOf(s.v[c.pre])); started = true; }
      for (let x = 0; x <= W; x++) {
        if (!c.has[x]) continue;
        const px = p.x + x + 0.5; count++;
        if (!started || c.ft[x] - prevT > c.gap) { ctx.moveTo(px, yOf(c.fi[x])); started = true; } else ctx.lineTo(px, yOf(c.fi[x]));
        prevT = c.lt[x];
        if (c.mn[x] !== c.mx[x]) { ctx.lineTo(px, yOf(c.mn[x])); ctx.lineTo(px, yOf(c.mx[x])); }
        ctx.lineTo(px, yOf(c.la[x]));
      }
      if (c.post >= 0 && s.t[c.post] + s.offset - prevT <= c.gap) { ctx.lineTo(p.x + (s.t[c.post] + s.offset - t0) * sx, yOf(s.v[c.post])); }
      ctx.stroke();
      if (count === 1 && c.pre < 0 && c.post < 0) { for (let x = 0; x <= W; x++) if (c.has[x]) { ctx.fillStyle = s.color; ctx.fillRect(p.x + x - 1.5, yOf(c.la[x]) - 1.5, 3, 3); } }
    });
    ctx.restore();
    this._drawCursor(p);
  }

  _drawState() {
    const ctx = this.ctx, p = this.plot;
    this._xTicks(p);
    const s = this.series[0]; if (!s) return;
    const n = s.n; if (!n) return;
    let i = Math.max(0, s.atOrBefore(this.t0));
    const rowH = p.h;
    const end = Math.min(this.t1, this.follow ? this.t1 : Infinity);
    ctx.save(); ctx.beginPath(); ctx.rect(p.x, p.y, p.w, p.h); ctx.clip();
    ctx.textBaseline = 'middle'; ctx.textAlign = 'left';
    let lastX = -1;
    for (; i < n; i++) {
      const ta = s.t[i] + s.offset; if (ta > this.t1) break;
      while (i + 1 < n && s.v[i + 1] === s.v[i] && s.t[i + 1] + s.offset <= this.t1) i++; // merge repeats
      const tb = i + 1 < n ? s.t[i + 1] + s.offset : Math.max(ta, this.follow ? end : Math.max(s.last, this.dataEnd || 0));
      const xa = Math.max(p.x, this.xOf(ta)), xb = Math.min(p.x + p.w, i + 1 < n ? this.xOf(tb) : (this.follow ? p.x + p.w : this.xOf(tb) + 2));
      if (xb < lastX + 0.25 && i + 1 < n) continue; // sub-pixel segments share a column
      lastX = xb;
      ctx.fillStyle = s.colors.get(s.v[i]) || '#888';
      ctx.globalAlpha = 0.85; ctx.fillRect(xa, p.y, Math.max(1, xb - xa), rowH); ctx.globalAlpha = 1;
      const w = xb - xa; const label = s.v[i];
      if (w > 24) {
        ctx.fillStyle = '#fff';
        const txt = ctx.measureText(label).width > w - 8 ? label.slice(0, Math.max(1, Math.floor((w - 8) / 7))) + '…' : label;
        ctx.fillText(txt, xa + 4, p.y + rowH / 2);
      }
      this.pointsDrawn++;
    }
    ctx.restore();
    this._drawCursor(p);
  }

  _drawWave() {
    const ctx = this.ctx, p = this.plot;
    let w = this.wave;
    if (this.cursor && this.cursor.t != null && this.waveHistory && this.waveHistory.length) {
      const h = this.waveHistory; let lo = 0, hi = h.length;
      while (lo < hi) { const m = (lo + hi) >> 1; if (h[m].t <= this.cursor.t) lo = m + 1; else hi = m; }
      w = h[Math.max(0, lo - 1)];
    }
    this._waveShown = w;
    ctx.strokeStyle = theme.grid; ctx.strokeRect(p.x + 0.5, p.y + 0.5, p.w - 1, p.h - 1);
    if (!w || !w.values.length) return;
    const vs = w.values; let a = Infinity, b = -Infinity;
    for (const v of vs) { if (v < a) a = v; if (v > b) b = v; }
    if (a === b) { a -= 1; b += 1; }
    const padY = (b - a) * 0.06; a -= padY; b += padY;
    const sy = p.h / (b - a), sx = p.w / Math.max(1, vs.length - 1);
    ctx.fillStyle = theme.axis; ctx.textAlign = 'right'; ctx.textBaseline = 'top';
    ctx.fillText(fmtNum(b), p.x - 6, p.y); ctx.textBaseline = 'bottom'; ctx.fillText(fmtNum(a), p.x - 6, p.y + p.h);
    ctx.strokeStyle = this.series[0]?.color || PALETTE[0]; ctx.lineWidth = 1.5; ctx.beginPath();
    vs.forEach((v, i) => { const x = p.x + i * sx, y = p.y + p.h - (v - a) * sy; i ? ctx.lineTo(x, y) : ctx.moveTo(x, y); });
    ctx.stroke();
    ctx.fillStyle = theme.axis; ctx.textAlign = 'left'; ctx.textBaseline = 'top';
    ctx.fillText(`${vs.length} samples · ${this.relative ? fmtRel(w.t) : fmtTime(w.t, 1000)}`, p.x + 6, p.y + 4);
    this.pointsDrawn = vs.length;
  }

  _drawCursor(p) {
    const t = this.cursor ? this.cursor.t : this._hoverT;
    if (t == null || t < this.t0 || t > this.t1) return;
    const ctx = this.ctx, x = Math.round(this.xOf(t)) + 0.5;
    ctx.strokeStyle = theme.cursor; ctx.lineWidth = 1; ctx.setLineDash([3, 3]);
    ctx.beginPath(); ctx.moveTo(x, p.y); ctx.lineTo(x, p.y + p.h); ctx.stroke(); ctx.setLineDash([]);
    if (this.kind === 'line' && this._ymin != null) {
      const sy = p.h / (this._ymax - this._ymin);
      for (const s of this.series) {
        if (!s.n || s.hidden) continue;
        const i = s.atOrBefore(t); if (i < 0) continue;
        const y = p.y + p.h - (s.v[i] - this._ymin) * sy;
        ctx.fillStyle = s.color; ctx.beginPath(); ctx.arc(x, y, 3, 0, Math.PI * 2); ctx.fill();
      }
    }
  }

  // values at a time (cursor readout / tooltip / tests)
  valuesAt(t) {
    const out = [];
    if (this.kind === 'wave') { const w = this._waveShown || this.wave; if (w) out.push({ name: this.title, value: `[${w.values.length} values]`, raw: JSON.stringify(w.values.slice(0, 32)) + (w.values.length > 32 ? '…' : '') }); return out; }
    for (const s of this.series) {
      if (!s.n) continue;
      const i = s.atOrBefore(t); if (i < 0) continue;
      if (this.kind === 'state') out.push({ name: s.name, color: s.colors.get(s.v[i]), value: s.v[i], raw: s.raw[i], t: s.t[i] + s.offset });
      else out.push({ name: s.name, color: s.color, value: s.mn ? `${fmtNum(s.v[i])} (min ${fmtNum(s.mn[i])}, max ${fmtNum(s.mx[i])})` : fmtNum(s.v[i]), raw: s.raw ? s.raw[i] : (s.mn ? JSON.stringify({ avg: s.v[i], min: s.mn[i], max: s.mx[i] }) : JSON.stringify(s.v[i])), t: s.t[i] + s.offset });
    }
    return out;
  }
  latest() {
    if (this.kind === 'wave') return this.wave ? { t: this.wave.t, value: this.wave.values } : null;
    let best = null;
    for (const s of this.series) if (s.n && (!best || s.last > best.t)) best = { t: s.last, value: s.v[s.n - 1] };
    return best;
  }
  state() {
    return {
      title: this.title, kind: this.kind, t0: this.t0, t1: this.t1, follow: this.follow,
      series: this.series.map((s) => ({ name: s.name, n: s.n, last: s.n ? s.v[s.n - 1] : null, lastT: s.n ? s.last : null, band: !!s.mn })),
      wave: this.wave ? this.wave.values.length : 0, drawCount: this.drawCount, lastDrawMs: this.lastDrawMs,
      pointsDrawn: this.pointsDrawn, cursor: this.cursor ? this.cursor.t : null,
    };
  }
  _scheduleAria() {
    if (this._ariaTimer) return;
    this._ariaTimer = setTimeout(() => {
      this._ariaTimer = 0;
      const l = this.latest();
      let desc = this.title || 'chart';
      if (l) desc += `: latest ${Array.isArray(l.value) ? l.value.length + ' samples' : (typeof l.value === 'number' ? fmtNum(l.value) : l.value)} at ${new Date(l.t).toLocaleTimeString()}`;
      else desc += ': no data';
      if (this.series.length > 1) desc += ` (${this.series.map((s) => s.name).join(', ')})`;
      this.canvas.setAttribute('aria-label', desc);
    }, 1000);
  }

  // ---------- interaction ----------
  _bind() {
    const cv = this.canvas;
    const local = (e) => { const r = cv.getBoundingClientRect(); return [e.clientX - r.left, e.clientY - r.top]; };
    cv.addEventListener('pointermove', (e) => {
      const [x, y] = local(e); const p = this.plot;
      if (this._sel) { this._sel.x1 = Math.max(p.x, Math.min(p.x + p.w, x)); this.markDirty(); }
      if (x < p.x || x > p.x + p.w) { this._hideTip(); return; }
      const t = this.tOf(x);
      if (this.cursor && !this.cursor.locked) this.cursor.set(t); else { this._hoverT = t; this.markDirty(); }
      this._showTip(x, y, t);
    });
    cv.addEventListener('pointerleave', () => { this._hideTip(); if (this.cursor && !this.cursor.locked) this.cursor.set(null); this._hoverT = null; this.markDirty(); });
    cv.addEventListener('pointerdown', (e) => {
      if (!this.onZoom || e.button !== 0 || this.kind === 'wave') return;
      const [x] = local(e); this._sel = { x0: x, x1: x }; cv.setPointerCapture(e.pointerId);
    });
    cv.addEventListener('pointerup', () => {
      const s = this._sel; this._sel = null; this.markDirty();
      if (!s || Math.abs(s.x1 - s.x0) < 5) return;
      const a = this.tOf(Math.min(s.x0, s.x1)), b = this.tOf(Math.max(s.x0, s.x1));
      this.onZoom(a, b);
    });
    cv.addEventListener('dblclick', () => { if (this.onReset) this.onReset(); });
    cv.addEventListener('keydown', (e) => {
      const span = this.t1 - this.t0; const cur = (this.cursor ? this.cursor.t : this._hoverT) ?? (this.t0 + span / 2);
      let nt = null;
      if (e.key === 'ArrowLeft') nt = cur - span / (e.shiftKey ? 10 : 50);
      else if (e.key === 'ArrowRight') nt = cur + span / (e.shiftKey ? 10 : 50);
      else if (e.key === 'Home') nt = this.t0; else if (e.key === 'End') nt = this.t1;
      else if ((e.key === '+' || e.key === '=') && this.onZoom) { this.onZoom(cur - span / 4, cur + span / 4); e.preventDefault(); return; }
      else if ((e.key === '-' || e.key === '_') && this.onZoom) { this.onZoom(cur - span, cur + span); e.preventDefault(); return; }
      else if (e.key === 'Escape') { if (this.cursor) this.cursor.set(null); this._hoverT = null; this._hideTip(); this.markDirty(); return; }
      if (nt == null) return;
      e.preventDefault();
      nt = Math.max(this.t0, Math.min(this.t1, nt));
      if (this.cursor) this.cursor.set(nt); else { this._hoverT = nt; this.markDirty(); }
      this._showTip(this.xOf(nt), 20, nt);
      const vals = this.valuesAt(nt).map((v) => `${v.name} ${v.value}`).join(', ');
      this.canvas.setAttribute('aria-label', `${this.title} at ${this.relative ? fmtRel(nt) : new Date(nt).toLocaleTimeString()}: ${vals || 'no data'}`);
    });
  }
  _showTip(x, y, t) {
    const vals = this.valuesAt(t);
    if (!vals.length) { this._hideTip(); return; }
    const tip = this.tip; tip.hidden = false;
    tip.replaceChildren();
    const head = document.createElement('div'); head.className = 'tip-time';
    head.textContent = this.kind === 'wave' ? this.title : (this.relative ? fmtRel(t) : new Date(t).toLocaleString() + '.' + pad(Math.floor(t % 1000), 3));
    tip.append(head);
    const raws = new Set();
    for (const v of vals.slice(0, 8)) {
      const row = document.createElement('div'); row.className = 'tip-row';
      const sw = document.createElement('i'); sw.style.background = v.color || 'transparent';
      const nm = document.createElement('span'); nm.textContent = v.name + ': ';
      const val = document.createElement('code'); val.textContent = String(v.value);
      row.append(sw, nm, val); tip.append(row);
      const raw = typeof v.raw === 'string' ? v.raw : JSON.stringify(v.raw);
      if (raw !== undefined && raw !== String(v.value)) raws.add(raw);
    }
    for (const r of [...raws].slice(0, 3)) {
      const row = document.createElement('div'); row.className = 'tip-raw';
      const c = document.createElement('code'); c.textContent = r.length > 300 ? r.slice(0, 300) + '…' : r;
      row.append(c); tip.append(row);
    }
    const tw = tip.offsetWidth; const left = x + 14 + tw > this._w ? Math.max(0, x - tw - 14) : x + 14;
    tip.style.left = left + 'px'; tip.style.top = Math.max(0, Math.min(this._h - tip.offsetHeight, y - 10)) + 'px';
  }
  _hideTip() { this.tip.hidden = true; }
}

// ---------- value classification ----------
export function classify(value) {
  if (typeof value === 'number') return 'number';
  if (typeof value === 'boolean' || typeof value === 'string') return 'state';
  if (Array.isArray(value)) return value.every((v) => typeof v === 'number') ? 'array' : 'state';
  if (value && typeof value === 'object') {
    const ks = Object.keys(value);
    if (ks.length && ks.length <= 64 && ks.every((k) => typeof value[k] === 'number' && isFinite(value[k]))) return 'vector';
    return 'state';
  }
  return 'state';
}
export function stateLabel(v) { return typeof v === 'string' ? v : JSON.stringify(v); }

// A metric view: picks the right chart for the metric's value type and feeds it points.
export class MetricView {
  constructor(container, name, firstValue, opts = {}) {
    this.name = name; this.type = classify(firstValue);
    this.el = document.createElement('section'); this.el.className = 'metric-card';
    this.el.dataset.metric = name;
    const head = document.createElement('header');
    const h = document.createElement('h3'); h.textContent = name;
    this.valEl = document.createElement('span'); this.valEl.className = 'metric-val'; this.valEl.setAttribute('aria-live', 'off');
    this.legend = document.createElement('div'); this.legend.className = 'legend';
    head.append(h, this.valEl); this.el.append(head);
    container.appendChild(this.el);
    const kind = this.type === 'state' ? 'state' : this.type === 'array' ? 'wave' : 'line';
    this.chart = new TimeChart(this.el, { ...opts, kind, title: name, height: kind === 'state' ? 56 : (opts.height || 170) });
    this.el.append(this.legend);
    this.fields = new Map(); // vector field -> Series
    this.maxPoints = opts.maxPoints || 0;
    if (kind === 'line' && this.type === 'number') this.chart.addSeries(new Series(name, opts.color || colorFor(0), { maxPoints: this.maxPoints }));
    if (kind === 'state') this.chart.addSeries(new StateSeries(name));
    if (kind === 'wave') { this.chart.addSeries(new Series(name, opts.color || colorFor(0))); this.chart.waveHistory = opts.waveHistory ? [] : null; }
    this._lastText = ''; this._lastReadAt = 0; this._lastReadT = undefined;
  }
  _field(k) {
    let s = this.fields.get(k);
    if (!s) {
      s = this.chart.addSeries(new Series(k, colorFor(this.fields.size), { maxPoints: this.maxPoints, keepRaw: true }));
      this.fields.set(k, s);
      const item = document.createElement('span'); item.className = 'legend-item'; item.innerHTML = `<i style="background:${s.color}"></i>`;
      item.append(document.createTextNode(k)); this.legend.append(item);
    }
    return s;
  }
  push(t, value) {
    const c = this.chart;
    switch (this.type) {
      case 'number': if (typeof value === 'number') c.series[0].push(t, value); break;
      case 'vector': if (value && typeof value === 'object') { const raw = JSON.stringify(value); for (const k in value) if (typeof value[k] === 'number') this._field(k).push(t, value[k], raw); } break;
      case 'array': if (Array.isArray(value)) { c.wave = { t, values: value }; if (c.waveHistory) c.waveHistory.push(c.wave); } break;
      default: c.series[0].push(t, stateLabel(value), JSON.stringify(value));
    }
    this.last = value; this.lastT = t;
    c.dirty = true;
  }
  // the time of the oldest point shown (Infinity when empty)
  get firstT() {
    let f = Infinity;
    for (const s of this.chart.series) if (s.n) f = Math.min(f, s.first);
    if (this.type === 'array' && this.chart.wave) f = Math.min(f, this.chart.wave.t);
    return f;
  }
  // a batch of older points (time order), all before firstT
  prependBatch(ts, values) {
    const c = this.chart;
    if (!ts.length) return;
    if (this.type === 'number') c.series[0].prepend(ts, values.map((x) => (typeof x === 'number' ? x : NaN)));
    else if (this.type === 'vector') {
      const raws = values.map((x) => JSON.stringify(x));
      const keys = new Set(); for (const x of values) if (x && typeof x === 'object') for (const k in x) keys.add(k);
      for (const k of keys) {
        const keep = []; for (let i = 0; i < values.length; i++) if (values[i] && typeof values[i][k] === 'number') keep.push(i);
        this._field(k).prepend(keep.map((i) => ts[i]), keep.map((i) => values[i][k]), keep.map((i) => raws[i]));
      }
    } else if (this.type === 'array') { if (!c.wave) c.wave = { t: ts[ts.length - 1], values: values[values.length - 1] }; }
    else c.series[0].prepend(ts, values.map(stateLabel), values.map((x) => JSON.stringify(x)));
    if (this.last === undefined) { this.last = values[values.length - 1]; this.lastT = ts[ts.length - 1]; }
    c.markDirty();
  }
  updateReadout(t) {
    // text changes cost style + layout: at most ~12 updates a second (people can't read faster)
    const now = performance.now();
    if (t === this._lastReadT && now - this._lastReadAt < 80) return;
    if (now - this._lastReadAt < (t == null ? 80 : 30)) return;
    this._lastReadAt = now; this._lastReadT = t;
    let txt = '';
    if (t != null) {
      if (this.type === 'array') { const w = this.chart._waveShown; txt = w ? `${w.values.length} samples` : ''; }
      else txt = this.chart.valuesAt(t).map((v) => (this.type === 'number' || this.type === 'state' ? v.value : `${v.name} ${v.value}`)).join('  ');
    }
    if (!txt) {
      const v = this.last;
      if (v === undefined) txt = '';
      else if (this.type === 'number') txt = fmtNum(v);
      else if (this.type === 'vector') txt = Object.entries(v).map(([k, x]) => `${k} ${fmtNum(x)}`).join('  ');
      else if (this.type === 'array') txt = `${v.length} samples`;
      else txt = stateLabel(v);
    }
    if (txt !== this._lastText) { this._lastText = txt; this.valEl.textContent = txt; this.valEl.title = this.last !== undefined ? JSON.stringify(this.last) : ''; }
  }
  destroy() { this.chart.destroy(); this.el.remove(); }
}
