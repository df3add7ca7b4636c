// One device: live charts and controls.
import { api, live, h, enc, canWrite } from '/assets/core.js';
import { MetricView, CursorGroup, onFrame } from '/assets/chart.js';
import {
  metaText, recordingText, takeExpired, timeoutStatus, takePending, stopVerdict, streamFields, sessionFields,
  configureFields, startStreamLog, concernsDevice, roundTrip, rateText, cardAfter, backfillSeries, countBefore,
} from '/assets/pages/device-model.js';

const WINDOWS = [[10000, '10 s'], [30000, '30 s'], [60000, '1 min'], [300000, '5 min'], [900000, '15 min']];

// The page's state, shared by the functions below (`ui` holds its elements).
function deviceState(id) {
  return {
    id, cursor: new CursorGroup(), windowMs: 60000, paused: false,
    views: new Map(), offs: [], knownMetrics: new Set(),
    pending: [], // control messages waiting for the server / device: {type, el, at, sent}
    recording: null, // {session_id, started, name}
    lastSeen: null, pointsIn: 0, lastRateT: 0, pingAt: 0,
    // start_stream is confirmed by telemetry arriving after it was sent; stop_stream by
    // telemetry ceasing (the spec has no reply frame for either).
    streamWatch: { armed: false, stopping: null }, lastTelemetryAt: 0,
    ui: {},
  };
}

export async function devicePage(root, [id]) {
  const ctx = deviceState(id);
  renderPage(root, ctx);
  const recTimer = setInterval(() => tick(ctx), 1000);
  try { const src = ((await api('GET', '/v1/sources')).devices || []).find((d) => d.source_id === id); if (src) ctx.lastSeen = src.last_seen_ms; } catch { /* ignore */ }
  ctx.lastRateT = performance.now();
  const stopTimer = setInterval(() => watchStop(ctx), 250);
  ctx.offs.push(() => clearInterval(stopTimer));
  bindCharts(ctx);
  bindControls(ctx);
  bindLive(ctx);
  const unsub = live.subscribe(id);
  const cur = live.online.get(id);
  if (cur) { addMetrics(ctx, cur.metrics); loadRecording(ctx, cur.recording); }
  paintStatus(ctx);
  backfill(ctx);
  return () => { unsub(); ctx.offs.forEach((f) => f()); clearInterval(recTimer); for (const v of ctx.views.values()) v.destroy(); };
}

// ---- rendering ----
function renderPage(root, ctx) {
  const { ui } = ctx;
  ui.grid = h('div', { class: 'chart-grid', 'aria-label': 'Live charts' });
  ui.emptyCharts = h('div', { class: 'empty' }, h('p', null, 'Waiting for telemetry… Charts appear as soon as the device sends data.'));
  ui.log = h('ol', { class: 'log', 'aria-label': 'Control activity', 'aria-live': 'polite' });
  ui.readOnlyNote = h('p', { class: 'muted note', hidden: true }, 'You have view-only access: device controls are disabled.');
  root.append(h('div', { class: 'page' }, renderHeader(ctx),
    h('div', { class: 'device-layout' },
      h('div', { class: 'device-main' }, renderToolbar(ctx), ui.emptyCharts, ui.grid),
      h('aside', { class: 'device-side' }, ui.readOnlyNote, renderControls(ctx), h('section', { class: 'card' }, h('h2', null, 'Activity'), ui.log)))));
}

function renderHeader({ id, ui }) {
  ui.statusEl = h('span', { class: 'status off' }, h('i', { 'aria-hidden': 'true' }), 'offline');
  ui.metaEl = h('span', { class: 'muted' });
  ui.recEl = h('span', { class: 'rec', hidden: true, role: 'status' });
  return h('div', { class: 'page-head' },
    h('a', { href: '/devices', 'data-link': true, class: 'back', 'aria-label': 'Back to devices' }, '←'),
    h('h1', null, id), ui.statusEl, ui.recEl, ui.metaEl);
}

function renderToolbar({ id, ui, windowMs }) {
  ui.winSel = h('select', { 'aria-label': 'Time window' }, WINDOWS.map(([ms, l]) => h('option', { value: ms, selected: ms === windowMs }, l)));
  ui.pauseBtn = h('button', { class: 'btn', type: 'button', 'aria-pressed': 'false' }, 'Pause');
  ui.rateEl = h('span', { class: 'muted small', 'aria-live': 'off' });
  return h('div', { class: 'toolbar' }, h('label', { class: 'inline' }, 'Window ', ui.winSel), ui.pauseBtn, ui.rateEl, h('div', { class: 'spacer' }),
    h('a', { class: 'btn', href: `/explore?source=${enc(id)}`, 'data-link': true }, 'Explore history'),
    h('a', { class: 'btn', href: `/sessions?source_id=${enc(id)}`, 'data-link': true }, 'Sessions'));
}

function ctlStatus() { return h('span', { class: 'ctl-status', role: 'status', 'aria-live': 'polite' }); }
function ctlButton(type, label, primary) { return h('button', { class: primary ? 'btn primary' : 'btn', type: 'button', 'data-ctl': type }, label); }
function field(cls, label, input) { return h('label', { class: cls }, h('span', null, label), input); }

function renderControls(ctx) {
  const ui = ctx.ui;
  ui.controlsCard = h('section', { class: 'card controls', 'aria-label': 'Device controls' },
    renderStreaming(ctx), renderRecording(ui), renderConfigure(ui), renderPing(ui));
  return ui.controlsCard;
}

function renderStreaming({ id, ui }) {
  ui.streamMetrics = h('input', { type: 'text', placeholder: 'all metrics', 'aria-label': 'Metrics to stream (comma separated)', list: 'metric-list-' + id });
  ui.metricList = h('datalist', { id: 'metric-list-' + id });
  ui.streamInterval = h('input', { type: 'number', min: 1, step: 1, value: 100, 'aria-label': 'Interval in milliseconds' });
  ui.streamSt = ctlStatus();
  ui.startStreamBtn = ctlButton('start_stream', 'Start stream', true);
  ui.stopStreamBtn = ctlButton('stop_stream', 'Stop stream');
  return h('div', { class: 'ctl' }, h('h2', null, 'Streaming'),
    h('div', { class: 'ctl-row' }, field('grow', 'Metrics', ui.streamMetrics), ui.metricList, field('narrow', 'Interval ms', ui.streamInterval)),
    h('div', { class: 'ctl-row' }, ui.startStreamBtn, ui.stopStreamBtn, ui.streamSt));
}

function renderRecording(ui) {
  ui.sessName = h('input', { type: 'text', placeholder: 'e.g. Motor test 3', 'aria-label': 'Session name', maxlength: 200 });
  ui.sessSt = ctlStatus();
  ui.startSessBtn = ctlButton('start_session', '● Record', true);
  ui.stopSessBtn = ctlButton('stop_session', '■ Stop recording');
  return h('div', { class: 'ctl' }, h('h2', null, 'Recording'),
    h('div', { class: 'ctl-row' }, field('grow', 'Session name', ui.sessName)),
    h('div', { class: 'ctl-row' }, ui.startSessBtn, ui.stopSessBtn, ui.sessSt));
}

function renderConfigure(ui) {
  ui.cfgSensor = h('input', { type: 'text', placeholder: 'sensor, e.g. MPU6050', 'aria-label': 'Sensor name' });
  ui.cfgRate = h('input', { type: 'number', min: 0, step: 'any', placeholder: 'Hz', 'aria-label': 'Sample rate (Hz)' });
  ui.cfgSt = ctlStatus();
  ui.cfgBtn = ctlButton('configure', 'Apply');
  return h('div', { class: 'ctl' }, h('h2', null, 'Configure sensor'),
    h('div', { class: 'ctl-row' }, field('grow', 'Sensor', ui.cfgSensor), field('narrow', 'Sample rate', ui.cfgRate)),
    h('div', { class: 'ctl-row' }, ui.cfgBtn, ui.cfgSt));
}

function renderPing(ui) {
  ui.pingSt = ctlStatus();
  ui.pingBtn = ctlButton('ping', 'Ping');
  return h('div', { class: 'ctl' }, h('h2', null, 'Ping'), h('div', { class: 'ctl-row' }, ui.pingBtn, ui.pingSt));
}

// ---- activity log and control statuses ----
function logLine({ ui }, text, kind = '') {
  const li = h('li', { class: kind }, h('time', null, new Date().toLocaleTimeString()), ' ', text);
  ui.log.prepend(li); while (ui.log.children.length > 30) ui.log.lastChild.remove();
}
function setStatus(el, text, kind) { el.textContent = text; el.className = 'ctl-status ' + (kind || ''); }
// A new status that keeps the "open session" link the status held.
function setStatusKeepLink(el, text, kind) {
  const keep = el.querySelector('a'); setStatus(el, text, kind); if (keep) el.append(' ', keep);
}

// ---- status / recording ----
const canControl = () => canWrite() && live.canControl;

function syncControls({ id, ui }) {
  const ok = canControl(), online = live.online.has(id);
  for (const b of ui.controlsCard.querySelectorAll('button, input')) b.disabled = !ok || (b.tagName === 'BUTTON' && !online);
  ui.controlsCard.classList.toggle('disabled', !ok);
  ui.readOnlyNote.hidden = ok || live.status !== 'live';
  if (ok && !online) ui.readOnlyNote.hidden = true;
  ui.controlsCard.title = !ok ? 'View-only access' : !online ? 'Device is offline' : '';
}

function paintStatus(ctx) {
  const { ui } = ctx, s = live.online.get(ctx.id);
  ui.statusEl.className = `status ${s ? 'on' : 'off'}`;
  ui.statusEl.lastChild.textContent = s ? 'online' : 'offline';
  ui.metaEl.textContent = metaText(s, ctx.lastSeen);
  syncControls(ctx);
}

function paintRec({ recording, ui }) {
  if (!recording) { ui.recEl.hidden = true; return; }
  ui.recEl.hidden = false;
  const r = recordingText(recording, Date.now());
  ui.recEl.replaceChildren(h('i', { 'aria-hidden': 'true' }), 'REC ', h('span', { class: 'mono' }, r.elapsed), ' ',
    h('a', { href: `/sessions/${enc(recording.session_id)}`, 'data-link': true }, r.name));
  ui.recEl.setAttribute('aria-label', r.label);
}

// Every second: the REC badge's time, the status line, and controls that got no answer.
function tick(ctx) {
  if (ctx.recording) paintRec(ctx); paintStatus(ctx);
  for (const p of takeExpired(ctx.pending, performance.now())) {
    const st = timeoutStatus(p);
    if (!st) continue;
    if (p.sent) setStatusKeepLink(p.el, st[0], st[1]); else setStatus(p.el, st[0], st[1]);
  }
}

async function loadRecording(ctx, sid) {
  if (!sid) { ctx.recording = null; paintRec(ctx); return; }
  ctx.recording = { session_id: sid, started: Date.now() };
  try { const s = await api('GET', `/api/sessions/${enc(sid)}`); ctx.recording.started = Date.parse(s.started_at) - live.clockOffset; ctx.recording.name = s.name; } catch { /* keep */ }
  paintRec(ctx);
}

// ---- charts ----
function view(ctx, metric, value) {
  const { views, ui } = ctx;
  let v = views.get(metric);
  if (!v) {
    ui.emptyCharts.hidden = true;
    v = new MetricView(ui.grid, metric, value, { cursor: ctx.cursor, maxPoints: 200000 });
    v.chart.setFollow(ctx.windowMs, live.clockOffset);
    views.set(metric, v);
    const next = cardAfter(views.keys(), metric);
    if (next !== undefined) ui.grid.insertBefore(v.el, views.get(next).el);
    ctx.knownMetrics.add(metric); refreshMetricList(ctx);
  }
  return v;
}

function refreshMetricList({ knownMetrics, ui }) { ui.metricList.replaceChildren(...[...knownMetrics].sort().map((m) => h('option', { value: m }))); }
function addMetrics(ctx, metrics) { for (const x of metrics || []) ctx.knownMetrics.add(x); refreshMetricList(ctx); }

// Every 250 ms while a stop_stream waits: telemetry ceased for 2 s, or still flows after 10 s.
function watchStop(ctx) {
  const w = ctx.streamWatch.stopping;
  if (!w) return;
  const verdict = stopVerdict(performance.now(), ctx.lastTelemetryAt, w.at);
  if (!verdict) return;
  ctx.streamWatch.stopping = null;
  if (verdict === 'stopped') { setStatus(ctx.ui.streamSt, 'stopped ✓ no telemetry for 2 s', 'ok'); logLine(ctx, 'Stream stopped: no telemetry for 2 s', 'ok'); }
  else { setStatus(ctx.ui.streamSt, 'sent · device is still streaming', 'pending'); logLine(ctx, 'Stop stream: the device is still sending telemetry'); }
}

function bindCharts(ctx) {
  const { ui, offs } = ctx;
  // The server dropped live points because this page fell behind: mark the hole on every
  // chart (the stored data is complete; a reload of the window shows it).
  offs.push(live.on('gap', (m) => onGap(ctx, m)));
  offs.push(live.on('telemetry', (m) => onTelemetry(ctx, m)));
  offs.push(onFrame(() => {
    const now = performance.now();
    if (now - ctx.lastRateT > 1000) { ui.rateEl.textContent = rateText(ctx.pointsIn, now - ctx.lastRateT); ctx.pointsIn = 0; ctx.lastRateT = now; }
    const t = ctx.cursor.t;
    for (const v of ctx.views.values()) v.updateReadout(t);
  }));
  ui.winSel.addEventListener('change', () => { ctx.windowMs = +ui.winSel.value; for (const v of ctx.views.values()) v.chart.setFollow(ctx.windowMs, live.clockOffset); backfill(ctx); });
  ui.pauseBtn.addEventListener('click', () => togglePause(ctx));
}

function togglePause(ctx) {
  const paused = ctx.paused = !ctx.paused, btn = ctx.ui.pauseBtn;
  btn.textContent = paused ? 'Resume' : 'Pause'; btn.setAttribute('aria-pressed', String(paused));
  for (const v of ctx.views.values()) { if (paused) v.chart.setRange(v.chart.t0, v.chart.t1); else v.chart.setFollow(ctx.windowMs, live.clockOffset); }
}

function onGap(ctx, m) {
  const g = (m.sources || []).find((x) => x.source_id === ctx.id);
  if (!g) return;
  for (const v of ctx.views.values()) v.chart.addGap(g.from_ms, g.to_ms);
  logLine(ctx, `Live view fell behind: ${g.points} points not shown (stored, not lost)`, 'warn');
}

function onTelemetry(ctx, m) {
  if (m.source_id !== ctx.id) return;
  ctx.lastTelemetryAt = performance.now();
  if (ctx.streamWatch.armed) { ctx.streamWatch.armed = false; setStatus(ctx.ui.streamSt, 'streaming ✓ telemetry arriving', 'ok'); logLine(ctx, 'Streaming: telemetry is arriving', 'ok'); }
  // Paused: the view stands still but keeps every point, so Resume shows no hole
  // (an array's waveform alone is not replaced while paused).
  for (const p of m.points) {
    if (ctx.paused && Array.isArray(p.value)) continue;
    view(ctx, p.metric, p.value).push(p.timestamp, p.value); ctx.pointsIn++;
  }
}

// The window's stored points older than those shown, and the metrics the device ever sent.
async function backfill(ctx) {
  const { id } = ctx;
  try {
    const secs = Math.ceil(ctx.windowMs / 1000);
    const r = await api('GET', `/v1/sources/${enc(id)}/metrics/query?last=${secs}s&interval=raw`);
    for (const [metric, s] of backfillSeries(r.series)) {
      const vs = s.value;
      const v = view(ctx, metric, vs[0]);
      const k = countBefore(s.timestamp_ms, v.firstT); // only what is older than the points already shown
      v.prependBatch(s.timestamp_ms.slice(0, k), vs.slice(0, k));
    }
    try { for (const m of await api('GET', `/v1/sources/${enc(id)}/metrics`)) ctx.knownMetrics.add(m); refreshMetricList(ctx); } catch { /* ignore */ }
  } catch (e) { if (e.status !== 401) logLine(ctx, 'Could not load recent data: ' + e.message, 'err'); }
}

// ---- sending controls ----
function send(ctx, type, fields, el, label) {
  if (!canControl()) { setStatus(el, 'not allowed (view-only)', 'err'); return false; }
  const msg = { type, source_id: ctx.id, ...fields };
  if (!live.send(msg)) { setStatus(el, 'not sent: live connection is down', 'err'); logLine(ctx, `${label}: not sent (connection down)`, 'err'); return false; }
  ctx.pending.push({ type, el, at: performance.now() });
  setStatus(el, 'sending…', 'pending');
  return true;
}

function bindControls(ctx) {
  const { ui } = ctx;
  ui.startStreamBtn.addEventListener('click', () => {
    if (send(ctx, 'start_stream', streamFields(ui.streamMetrics.value, ui.streamInterval.value), ui.streamSt, 'Start stream')) ctx.streamWatch.stopping = null;
  });
  ui.stopStreamBtn.addEventListener('click', () => { ctx.streamWatch.armed = false; send(ctx, 'stop_stream', { id: '*' }, ui.streamSt, 'Stop stream'); });
  ui.startSessBtn.addEventListener('click', () => send(ctx, 'start_session', sessionFields(ui.sessName.value), ui.sessSt, 'Start recording'));
  ui.stopSessBtn.addEventListener('click', () => send(ctx, 'stop_session', ctx.recording ? { session_id: ctx.recording.session_id } : {}, ui.sessSt, 'Stop recording'));
  ui.cfgBtn.addEventListener('click', () => {
    const f = configureFields(ui.cfgSensor.value, ui.cfgRate.value);
    if (!f) { setStatus(ui.cfgSt, 'enter a sensor and a sample rate', 'err'); return; }
    send(ctx, 'configure', f, ui.cfgSt, `Configure ${f.sensor}`);
  });
  ui.pingBtn.addEventListener('click', () => { ctx.pingAt = performance.now(); send(ctx, 'ping', {}, ui.pingSt, 'Ping'); });
}

// ---- frames from the server and the device ----
function bindLive(ctx) {
  const { id, offs } = ctx;
  offs.push(live.on('frame', (m) => { if (concernsDevice(m, id, ctx.pending.length)) onDeviceFrame(ctx, m); }));
  offs.push(live.on('source', (m) => {
    if (m.source_id !== id) return;
    if (!m._conn) logLine(ctx, `Device ${m.status}`, m.status === 'online' ? 'ok' : 'err');
    if (m.status === 'offline') ctx.lastSeen = Date.now();
    paintStatus(ctx);
  }));
  offs.push(live.on('init', (m) => {
    const s = (m.online_sources || []).find((x) => x.source_id === id);
    for (const v of ctx.views.values()) v.chart.clockOffset = live.clockOffset;
    if (s) { addMetrics(ctx, s.metrics); loadRecording(ctx, s.recording); }
    paintStatus(ctx);
  }));
  offs.push(live.on('status', () => paintStatus(ctx)));
}

function onDeviceFrame(ctx, m) {
  switch (m.type) {
    case 'control_sent': onControlSent(ctx, m); break;
    case 'session_started': {
      takePending(ctx.pending, ['start_session']);
      setStatus(ctx.ui.sessSt, 'recording · device confirmed ✓', 'ok'); logLine(ctx, `Device confirmed recording ${m.session_id || ''}`, 'ok'); break;
    }
    case 'session_stopped': {
      takePending(ctx.pending, ['stop_session']);
      setStatusKeepLink(ctx.ui.sessSt, 'stopped · device confirmed ✓', 'ok'); logLine(ctx, `Device confirmed stop ${m.session_id || ''}`, 'ok'); break;
    }
    case 'pong': {
      const p = takePending(ctx.pending, ['ping']);
      const rtt = roundTrip(p, ctx.pingAt, performance.now());
      setStatus(ctx.ui.pingSt, rtt != null ? `pong ✓ ${rtt.toFixed(0)} ms round trip` : 'pong ✓', 'ok');
      logLine(ctx, `Pong${rtt != null ? ` in ${rtt.toFixed(0)} ms` : ''}`, 'ok'); break;
    }
    case 'command_ack': case 'command_result': case 'configured': case 'config_applied': {
      const p = takePending(ctx.pending, ['configure']);
      if (p) setStatus(ctx.ui.cfgSt, `device replied ✓ ${m.status || m.event || m.type}`, 'ok');
      logLine(ctx, `Device: ${JSON.stringify(m)}`, 'ok'); break;
    }
    case 'error': onErrorFrame(ctx, m); break;
    case 'heartbeat': case 'subscribed': case 'unsubscribed': break;
    default: logLine(ctx, `Device frame: ${m.type}`);
  }
}

// The server accepted a control and sent it to the device.
function onControlSent(ctx, m) {
  const p = ctx.pending.find((x) => x.type === m.command && !x.sent); if (p) p.sent = true;
  const waiting = (text) => { if (p) setStatus(p.el, text, 'pending'); };
  const f = m.frame;
  switch (m.command) {
    case 'start_stream': ctx.streamWatch.armed = true; waiting('sent · waiting for telemetry'); logLine(ctx, startStreamLog(f)); takePending(ctx.pending, ['start_stream']); break;
    case 'stop_stream': waiting('sent · waiting for telemetry to stop'); logLine(ctx, 'Stop stream sent'); takePending(ctx.pending, ['stop_stream']); ctx.streamWatch.stopping = { at: performance.now() }; break;
    case 'start_session':
      waiting('recording · waiting for device to confirm');
      logLine(ctx, `Recording started: ${f.session_id}`);
      ctx.recording = { session_id: f.session_id, started: Date.now(), name: f.session_name || f.session_id }; paintRec(ctx); break;
    case 'stop_session': {
      waiting('stopped · waiting for device to confirm');
      logLine(ctx, `Recording stopped: ${f.session_id || ''}`);
      const sid = f.session_id || ctx.recording?.session_id;
      if (sid) ctx.ui.sessSt.append(' ', h('a', { href: `/sessions/${enc(sid)}`, 'data-link': true }, 'open session'));
      ctx.recording = null; paintRec(ctx); break;
    }
    case 'configure': waiting('sent · waiting for device'); logLine(ctx, `Configure sent: ${f.sensor} sample_rate ${f.config?.sample_rate}`); break;
    case 'ping': waiting('sent · waiting for pong'); break;
  }
}

function onErrorFrame(ctx, m) {
  const p = ctx.pending.shift();
  if (p) setStatus(p.el, `failed: ${m.detail || m.message}`, 'err');
  logLine(ctx, `Error ${m.code || ''}: ${m.detail || m.message}`, 'err');
  if (p && p.type === 'start_session') { ctx.recording = null; paintRec(ctx); }
}
