// One device: live charts and controls.
import { api, live, h, enc, fmtAgo, fmtDuration, canWrite } from '/assets/core.js';
import { MetricView, CursorGroup, onFrame } from '/assets/chart.js';

const WINDOWS = [[10000, '10 s'], [30000, '30 s'], [60000, '1 min'], [300000, '5 min'], [900000, '15 min']];

export async function devicePage(root, [id]) {
  const cursor = new CursorGroup();
  let windowMs = 60000;
  let paused = false;
  const views = new Map();
  const offs = [];
  const knownMetrics = new Set();
  const pending = []; // control messages waiting for the server / device: {type, el, at, sent}

  // ---- header ----
  const statusEl = h('span', { class: 'status off' }, h('i', { 'aria-hidden': 'true' }), 'offline');
  const metaEl = h('span', { class: 'muted' });
  const recEl = h('span', { class: 'rec', hidden: true, role: 'status' });
  const head = h('div', { class: 'page-head' },
    h('a', { href: '/devices', 'data-link': true, class: 'back', 'aria-label': 'Back to devices' }, '←'),
    h('h1', null, id), statusEl, recEl, metaEl);

  // ---- charts toolbar ----
  const winSel = h('select', { 'aria-label': 'Time window' }, WINDOWS.map(([ms, l]) => h('option', { value: ms, selected: ms === windowMs }, l)));
  const pauseBtn = h('button', { class: 'btn', type: 'button', 'aria-pressed': 'false' }, 'Pause');
  const rateEl = h('span', { class: 'muted small', 'aria-live': 'off' });
  const grid = h('div', { class: 'chart-grid', 'aria-label': 'Live charts' });
  const emptyCharts = h('div', { class: 'empty' }, h('p', null, 'Waiting for telemetry… Charts appear as soon as the device sends data.'));

  // ---- controls ----
  const can = () => canWrite() && live.canControl;
  const log = h('ol', { class: 'log', 'aria-label': 'Control activity', 'aria-live': 'polite' });
  function logLine(text, kind = '') {
    const li = h('li', { class: kind }, h('time', null, new Date().toLocaleTimeString()), ' ', text);
    log.prepend(li); while (log.children.length > 30) log.lastChild.remove();
  }
  function ctlStatus() { return h('span', { class: 'ctl-status', role: 'status', 'aria-live': 'polite' }); }
  function setStatus(el, text, kind) { el.textContent = text; el.className = 'ctl-status ' + (kind || ''); }

  const streamMetrics = h('input', { type: 'text', placeholder: 'all metrics', 'aria-label': 'Metrics to stream (comma separated)', list: 'metric-list-' + id });
  const metricList = h('datalist', { id: 'metric-list-' + id });
  const streamInterval = h('input', { type: 'number', min: 1, step: 1, value: 100, 'aria-label': 'Interval in milliseconds' });
  const streamSt = ctlStatus();
  const startStreamBtn = h('button', { class: 'btn primary', type: 'button', 'data-ctl': 'start_stream' }, 'Start stream');
  const stopStreamBtn = h('button', { class: 'btn', type: 'button', 'data-ctl': 'stop_stream' }, 'Stop stream');

  const sessName = h('input', { type: 'text', placeholder: 'e.g. Motor test 3', 'aria-label': 'Session name', maxlength: 200 });
  const sessSt = ctlStatus();
  const startSessBtn = h('button', { class: 'btn primary', type: 'button', 'data-ctl': 'start_session' }, '● Record');
  const stopSessBtn = h('button', { class: 'btn', type: 'button', 'data-ctl': 'stop_session' }, '■ Stop recording');

  const cfgSensor = h('input', { type: 'text', placeholder: 'sensor, e.g. MPU6050', 'aria-label': 'Sensor name' });
  const cfgRate = h('input', { type: 'number', min: 0, step: 'any', placeholder: 'Hz', 'aria-label': 'Sample rate (Hz)' });
  const cfgSt = ctlStatus();
  const cfgBtn = h('button', { class: 'btn', type: 'button', 'data-ctl': 'configure' }, 'Apply');

  const pingSt = ctlStatus();
  const pingBtn = h('button', { class: 'btn', type: 'button', 'data-ctl': 'ping' }, 'Ping');

  const controlsCard = h('section', { class: 'card controls', 'aria-label': 'Device controls' },
    h('div', { class: 'ctl' }, h('h2', null, 'Streaming'),
      h('div', { class: 'ctl-row' }, h('label', { class: 'grow' }, h('span', null, 'Metrics'), streamMetrics), metricList,
        h('label', { class: 'narrow' }, h('span', null, 'Interval ms'), streamInterval)),
      h('div', { class: 'ctl-row' }, startStreamBtn, stopStreamBtn, streamSt)),
    h('div', { class: 'ctl' }, h('h2', null, 'Recording'),
      h('div', { class: 'ctl-row' }, h('label', { class: 'grow' }, h('span', null, 'Session name'), sessName)),
      h('div', { class: 'ctl-row' }, startSessBtn, stopSessBtn, sessSt)),
    h('div', { class: 'ctl' }, h('h2', null, 'Configure sensor'),
      h('div', { class: 'ctl-row' }, h('label', { class: 'grow' }, h('span', null, 'Sensor'), cfgSensor), h('label', { class: 'narrow' }, h('span', null, 'Sample rate'), cfgRate)),
      h('div', { class: 'ctl-row' }, cfgBtn, cfgSt)),
    h('div', { class: 'ctl' }, h('h2', null, 'Ping'),
      h('div', { class: 'ctl-row' }, pingBtn, pingSt)));
  const readOnlyNote = h('p', { class: 'muted note', hidden: true }, 'You have view-only access: device controls are disabled.');

  root.append(h('div', { class: 'page' }, head,
    h('div', { class: 'device-layout' },
      h('div', { class: 'device-main' },
        h('div', { class: 'toolbar' }, h('label', { class: 'inline' }, 'Window ', winSel), pauseBtn, rateEl, h('div', { class: 'spacer' }),
          h('a', { class: 'btn', href: `/explore?source=${enc(id)}`, 'data-link': true }, 'Explore history'),
          h('a', { class: 'btn', href: `/sessions?source_id=${enc(id)}`, 'data-link': true }, 'Sessions')),
        emptyCharts, grid),
      h('aside', { class: 'device-side' }, readOnlyNote, controlsCard, h('section', { class: 'card' }, h('h2', null, 'Activity'), log)))));

  function syncControls() {
    const ok = can(), online = live.online.has(id);
    for (const b of controlsCard.querySelectorAll('button, input')) b.disabled = !ok || (b.tagName === 'BUTTON' && !online);
    controlsCard.classList.toggle('disabled', !ok);
    readOnlyNote.hidden = ok || live.status !== 'live';
    if (ok && !online) readOnlyNote.hidden = true;
    controlsCard.title = !ok ? 'View-only access' : !online ? 'Device is offline' : '';
  }

  // ---- status / recording ----
  let recording = null; // {session_id, started, confirmed}
  function paintStatus() {
    const s = live.online.get(id);
    statusEl.className = `status ${s ? 'on' : 'off'}`;
    statusEl.lastChild.textContent = s ? 'online' : 'offline';
    metaEl.textContent = s ? [s.platform, s.agent_version && 'agent ' + s.agent_version, 'last seen ' + fmtAgo(s.last_seen_ms)].filter(Boolean).join(' · ') : (lastSeen ? 'last seen ' + fmtAgo(lastSeen) : '');
    syncControls();
  }
  function paintRec() {
    if (!recording) { recEl.hidden = true; startSessBtn.hidden = false; return; }
    recEl.hidden = false;
    recEl.replaceChildren(h('i', { 'aria-hidden': 'true' }), 'REC ', h('span', { class: 'mono' }, fmtDuration(Date.now() - recording.started)), ' ',
      h('a', { href: `/sessions/${enc(recording.session_id)}`, 'data-link': true }, recording.name || recording.session_id));
    recEl.setAttribute('aria-label', `Recording ${recording.name || recording.session_id}, ${fmtDuration(Date.now() - recording.started)} elapsed`);
  }
  const NO_REPLY = { start_session: 'recording on the server · device did not confirm', stop_session: 'stopped on the server · device did not confirm', configure: 'sent · no reply from device', ping: 'sent · no pong within 10 s' };
  const recTimer = setInterval(() => {
    if (recording) paintRec(); paintStatus();
    const now = performance.now();
    for (let i = pending.length - 1; i >= 0; i--) {
      const p = pending[i];
      if (now - p.at < 10000) continue;
      pending.splice(i, 1);
      if (!p.sent) { setStatus(p.el, 'no answer from the server', 'err'); continue; }
      if (NO_REPLY[p.type]) { const keep = p.el.querySelector('a'); setStatus(p.el, NO_REPLY[p.type], 'pending'); if (keep) p.el.append(' ', keep); }
    }
  }, 1000);
  async function loadRecording(sid) {
    if (!sid) { recording = null; paintRec(); return; }
    recording = { session_id: sid, started: Date.now() };
    try { const s = await api('GET', `/api/sessions/${enc(sid)}`); recording.started = Date.parse(s.started_at) - live.clockOffset; recording.name = s.name; } catch { /* keep */ }
    paintRec();
  }

  let lastSeen = null;
  try { const src = ((await api('GET', '/v1/sources')).devices || []).find((d) => d.source_id === id); if (src) lastSeen = src.last_seen_ms; } catch { /* ignore */ }

  // ---- charts ----
  function view(metric, value) {
    let v = views.get(metric);
    if (!v) {
      emptyCharts.hidden = true;
      v = new MetricView(grid, metric, value, { cursor, maxPoints: 200000 });
      v.chart.setFollow(windowMs, live.clockOffset);
      views.set(metric, v);
      // keep cards sorted by name
      const sorted = [...views.keys()].sort();
      const idx = sorted.indexOf(metric);
      if (idx < sorted.length - 1) grid.insertBefore(v.el, views.get(sorted[idx + 1]).el);
      knownMetrics.add(metric); refreshMetricList();
    }
    return v;
  }
  function refreshMetricList() { metricList.replaceChildren(...[...knownMetrics].sort().map((m) => h('option', { value: m }))); }
  let pointsIn = 0, lastRateT = performance.now();
  // start_stream is confirmed by telemetry arriving after it was sent; stop_stream by
  // telemetry ceasing (the spec has no reply frame for either).
  const streamWatch = { armed: false, stopping: null };
  let lastTelemetryAt = 0;
  const stopTimer = setInterval(() => {
    const w = streamWatch.stopping;
    if (!w) return;
    const now = performance.now();
    if (now - Math.max(lastTelemetryAt, w.at) >= 2000) {
      streamWatch.stopping = null;
      setStatus(streamSt, 'stopped ✓ no telemetry for 2 s', 'ok'); logLine('Stream stopped: no telemetry for 2 s', 'ok');
    } else if (now - w.at > 10000) {
      streamWatch.stopping = null;
      setStatus(streamSt, 'sent · device is still streaming', 'pending'); logLine('Stop stream: the device is still sending telemetry');
    }
  }, 250);
  offs.push(() => clearInterval(stopTimer));
  // The server dropped live points because this page fell behind: mark the hole on every
  // chart (the stored data is complete; a reload of the window shows it).
  offs.push(live.on('gap', (m) => {
    const g = (m.sources || []).find((x) => x.source_id === id);
    if (!g) return;
    for (const v of views.values()) v.chart.addGap(g.from_ms, g.to_ms);
    logLine(`Live view fell behind: ${g.points} points not shown (stored, not lost)`, 'warn');
  }));
  offs.push(live.on('telemetry', (m) => {
    if (m.source_id !== id) return;
    lastTelemetryAt = performance.now();
    if (streamWatch.armed) { streamWatch.armed = false; setStatus(streamSt, 'streaming ✓ telemetry arriving', 'ok'); logLine('Streaming: telemetry is arriving', 'ok'); }
    // Paused: the view stands still but keeps every point, so Resume shows no hole
    // (an array's waveform alone is not replaced while paused).
    for (const p of m.points) {
      if (paused && Array.isArray(p.value)) continue;
      view(p.metric, p.value).push(p.timestamp, p.value); pointsIn++;
    }
  }));
  offs.push(onFrame(() => {
    const now = performance.now();
    if (now - lastRateT > 1000) { rateEl.textContent = pointsIn ? `${Math.round(pointsIn * 1000 / (now - lastRateT))} points/s` : ''; pointsIn = 0; lastRateT = now; }
    const t = cursor.t;
    for (const v of views.values()) v.updateReadout(t);
  }));
  winSel.addEventListener('change', () => { windowMs = +winSel.value; for (const v of views.values()) v.chart.setFollow(windowMs, live.clockOffset); backfill(); });
  pauseBtn.addEventListener('click', () => {
    paused = !paused; pauseBtn.textContent = paused ? 'Resume' : 'Pause'; pauseBtn.setAttribute('aria-pressed', String(paused));
    for (const v of views.values()) { if (paused) v.chart.setRange(v.chart.t0, v.chart.t1); else v.chart.setFollow(windowMs, live.clockOffset); }
  });

  async function backfill() {
    try {
      const secs = Math.ceil(windowMs / 1000);
      const r = await api('GET', `/v1/sources/${enc(id)}/metrics/query?last=${secs}s&interval=raw`);
      const cutoff = {};
      for (const [metric, s] of Object.entries(r.series || {})) {
        if (metric.includes('.') && r.series[metric.slice(0, metric.lastIndexOf('.'))]) continue; // derived vector field
        const vs = s.value; if (!vs || !vs.length) continue;
        const v = view(metric, vs[0]);
        const first = v.firstT; // only what is older than the points already shown
        let k = 0; while (k < vs.length && s.timestamp_ms[k] < first) k++;
        v.prependBatch(s.timestamp_ms.slice(0, k), vs.slice(0, k));
        cutoff[metric] = true;
      }
      try { for (const m of await api('GET', `/v1/sources/${enc(id)}/metrics`)) knownMetrics.add(m); refreshMetricList(); } catch { /* ignore */ }
    } catch (e) { if (e.status !== 401) logLine('Could not load recent data: ' + e.message, 'err'); }
  }

  // ---- sending controls ----
  function send(type, fields, el, label) {
    if (!can()) { setStatus(el, 'not allowed (view-only)', 'err'); return false; }
    const msg = { type, source_id: id, ...fields };
    if (!live.send(msg)) { setStatus(el, 'not sent: live connection is down', 'err'); logLine(`${label}: not sent (connection down)`, 'err'); return false; }
    pending.push({ type, el, at: performance.now(), label });
    setStatus(el, 'sending…', 'pending');
    return true;
  }
  startStreamBtn.addEventListener('click', () => {
    const metrics = streamMetrics.value.split(',').map((s) => s.trim()).filter(Boolean);
    const interval = Math.max(1, Math.round(+streamInterval.value || 100));
    const f = { interval_ms: interval }; if (metrics.length) f.metrics = metrics;
    if (send('start_stream', f, streamSt, 'Start stream')) streamWatch.stopping = null;
  });
  stopStreamBtn.addEventListener('click', () => { streamWatch.armed = false; send('stop_stream', { id: '*' }, streamSt, 'Stop stream'); });
  startSessBtn.addEventListener('click', () => {
    const f = {}; if (sessName.value.trim()) f.session_name = sessName.value.trim();
    send('start_session', f, sessSt, 'Start recording');
  });
  stopSessBtn.addEventListener('click', () => send('stop_session', recording ? { session_id: recording.session_id } : {}, sessSt, 'Stop recording'));
  cfgBtn.addEventListener('click', () => {
    const sensor = cfgSensor.value.trim(); const rate = cfgRate.value === '' ? NaN : +cfgRate.value;
    if (!sensor || !isFinite(rate)) { setStatus(cfgSt, 'enter a sensor and a sample rate', 'err'); return; }
    send('configure', { sensor, config: { sample_rate: rate } }, cfgSt, `Configure ${sensor}`);
  });
  let pingAt = 0;
  pingBtn.addEventListener('click', () => { pingAt = performance.now(); send('ping', {}, pingSt, 'Ping'); });
  function takePending(types) { const i = pending.findIndex((p) => types.includes(p.type)); return i < 0 ? null : pending.splice(i, 1)[0]; }

  offs.push(live.on('frame', (m) => {
    if (m.source_id !== id && !(m.type === 'error' && !m.source_id && pending.length)) return;
    switch (m.type) {
      case 'control_sent': {
        const p = pending.find((x) => x.type === m.command && !x.sent); if (p) p.sent = true;
        const el = p ? p.el : null;
        if (m.command === 'start_stream') { streamWatch.armed = true; el && setStatus(el, 'sent · waiting for telemetry', 'pending'); logLine('Start stream sent' + (m.frame.metrics ? ` (${m.frame.metrics.join(', ')})` : '') + (m.frame.interval_ms ? ` every ${m.frame.interval_ms} ms` : '')); takePending(['start_stream']); }
        else if (m.command === 'stop_stream') { el && setStatus(el, 'sent · waiting for telemetry to stop', 'pending'); logLine('Stop stream sent'); takePending(['stop_stream']); streamWatch.stopping = { at: performance.now() }; }
        else if (m.command === 'start_session') {
          el && setStatus(el, 'recording · waiting for device to confirm', 'pending');
          logLine(`Recording started: ${m.frame.session_id}`);
          recording = { session_id: m.frame.session_id, started: Date.now(), name: m.frame.session_name || m.frame.session_id }; paintRec();
        } else if (m.command === 'stop_session') {
          el && setStatus(el, 'stopped · waiting for device to confirm', 'pending');
          logLine(`Recording stopped: ${m.frame.session_id || ''}`);
          const sid = m.frame.session_id || recording?.session_id;
          if (sid) sessSt.append(' ', h('a', { href: `/sessions/${enc(sid)}`, 'data-link': true }, 'open session'));
          recording = null; paintRec();
        } else if (m.command === 'configure') { el && setStatus(el, 'sent · waiting for device', 'pending'); logLine(`Configure sent: ${m.frame.sensor} sample_rate ${m.frame.config?.sample_rate}`); }
        else if (m.command === 'ping') { el && setStatus(el, 'sent · waiting for pong', 'pending'); }
        break;
      }
      case 'session_started': { const p = takePending(['start_session']); setStatus(sessSt, 'recording · device confirmed ✓', 'ok'); logLine(`Device confirmed recording ${m.session_id || ''}`, 'ok'); if (recording) recording.confirmed = true; void p; break; }
      case 'session_stopped': { takePending(['stop_session']); const keep = sessSt.querySelector('a'); setStatus(sessSt, 'stopped · device confirmed ✓', 'ok'); if (keep) sessSt.append(' ', keep); logLine(`Device confirmed stop ${m.session_id || ''}`, 'ok'); break; }
      case 'pong': {
        const p = takePending(['ping']);
        const rtt = p ? performance.now() - p.at : (pingAt ? performance.now() - pingAt : null);
        setStatus(pingSt, rtt != null ? `pong ✓ ${rtt.toFixed(0)} ms round trip` : 'pong ✓', 'ok');
        logLine(`Pong${rtt != null ? ` in ${rtt.toFixed(0)} ms` : ''}`, 'ok'); break;
      }
      case 'command_ack': case 'command_result': case 'configured': case 'config_applied': {
        const p = takePending(['configure']);
        if (p) setStatus(cfgSt, `device replied ✓ ${m.status || m.event || m.type}`, 'ok');
        logLine(`Device: ${JSON.stringify(m)}`, 'ok'); break;
      }
      case 'error': {
        const p = pending.shift();
        const el = p ? p.el : null;
        if (el) setStatus(el, `failed: ${m.detail || m.message}`, 'err');
        logLine(`Error ${m.code || ''}: ${m.detail || m.message}`, 'err');
        if (p && p.type === 'start_session') { recording = null; paintRec(); }
        break;
      }
      case 'heartbeat': case 'subscribed': case 'unsubscribed': break;
      default: logLine(`Device frame: ${m.type}`);
    }
  }));
  offs.push(live.on('source', (m) => {
    if (m.source_id !== id) return;
    if (!m._conn) logLine(`Device ${m.status}`, m.status === 'online' ? 'ok' : 'err');
    if (m.status === 'offline') lastSeen = Date.now();
    paintStatus();
  }));
  offs.push(live.on('init', (m) => {
    const s = (m.online_sources || []).find((x) => x.source_id === id);
    for (const v of views.values()) v.chart.clockOffset = live.clockOffset;
    if (s) { for (const x of s.metrics || []) knownMetrics.add(x); refreshMetricList(); loadRecording(s.recording); }
    paintStatus();
  }));
  offs.push(live.on('status', paintStatus));

  const unsub = live.subscribe(id);
  const cur = live.online.get(id);
  if (cur) { for (const x of cur.metrics || []) knownMetrics.add(x); refreshMetricList(); loadRecording(cur.recording); }
  paintStatus();
  backfill();

  return () => { unsub(); offs.forEach((f) => f()); clearInterval(recTimer); for (const v of views.values()) v.destroy(); };
}
