// The device page's logic without the DOM: what a control sends, what its status reads,
// which frames concern the page. Unit-tested in Tests/dashboard/device-model.test.mjs.
import { fmtAgo, fmtDuration } from '/assets/core.js';

// What a control reads when the device said nothing within 10 s of the server sending it.
const NO_REPLY = { start_session: 'recording on the server · device did not confirm', stop_session: 'stopped on the server · device did not confirm', configure: 'sent · no reply from device', ping: 'sent · no pong within 10 s' };

// The header's line under the name: platform, agent and last seen while online.
export function metaText(online, lastSeen) {
  if (online) return [online.platform, online.agent_version && 'agent ' + online.agent_version, 'last seen ' + fmtAgo(online.last_seen_ms)].filter(Boolean).join(' · ');
  return lastSeen ? 'last seen ' + fmtAgo(lastSeen) : '';
}

// The REC badge: elapsed time and the session's name (its id until the name is known).
export function recordingText(rec, now) {
  const elapsed = fmtDuration(now - rec.started), name = rec.name || rec.session_id;
  return { elapsed, name, label: `Recording ${name}, ${elapsed} elapsed` };
}

// Controls still waiting after `ms`, taken out of `pending`, the newest first.
export function takeExpired(pending, now, ms = 10000) {
  const out = [];
  for (let i = pending.length - 1; i >= 0; i--) {
    if (now - pending[i].at < ms) continue;
    out.push(pending.splice(i, 1)[0]);
  }
  return out;
}

// The status of a control that waited too long: [text, kind], or null to leave it as is.
export function timeoutStatus(p) {
  if (!p.sent) return ['no answer from the server', 'err'];
  return NO_REPLY[p.type] ? [NO_REPLY[p.type], 'pending'] : null;
}

// The first waiting control of one of `types`, taken out of `pending` (null: none).
export function takePending(pending, types) {
  const i = pending.findIndex((p) => types.includes(p.type));
  return i < 0 ? null : pending.splice(i, 1)[0];
}

// stop_stream is confirmed by telemetry ceasing for 2 s: 'stopped'; after 10 s of
// telemetry still arriving: 'streaming'; otherwise null (keep watching).
export function stopVerdict(now, lastTelemetryAt, sentAt) {
  if (now - Math.max(lastTelemetryAt, sentAt) >= 2000) return 'stopped';
  if (now - sentAt > 10000) return 'streaming';
  return null;
}

// The fields of start_stream from the form: metrics (comma separated, empty: all) and
// the interval in ms (at least 1, default 100).
export function streamFields(metricsText, intervalText) {
  const metrics = metricsText.split(',').map((s) => s.trim()).filter(Boolean);
  const f = { interval_ms: Math.max(1, Math.round(+intervalText || 100)) };
  if (metrics.length) f.metrics = metrics;
  return f;
}

// The fields of start_session: the name, when one was given.
export function sessionFields(nameText) {
  const f = {};
  if (nameText.trim()) f.session_name = nameText.trim();
  return f;
}

// The fields of configure, or null when the sensor or the sample rate is missing.
export function configureFields(sensorText, rateText) {
  const sensor = sensorText.trim(), rate = rateText === '' ? NaN : +rateText;
  if (!sensor || !isFinite(rate)) return null;
  return { sensor, config: { sample_rate: rate } };
}

// The activity line for a start_stream the server sent on.
export function startStreamLog(frame) {
  return 'Start stream sent' + (frame.metrics ? ` (${frame.metrics.join(', ')})` : '') + (frame.interval_ms ? ` every ${frame.interval_ms} ms` : '');
}

// A frame for this device, or an error without a source while a control waits for an answer.
export function concernsDevice(m, id, waiting) {
  return m.source_id === id || (m.type === 'error' && !m.source_id && waiting > 0);
}

// The round trip of a ping: from its pending entry, else from the last click (null: unknown).
export function roundTrip(p, pingAt, now) {
  return p ? now - p.at : (pingAt ? now - pingAt : null);
}

// The toolbar's rate: points per second over the last `dt` ms ('' when none arrived).
export function rateText(points, dt) {
  return points ? `${Math.round(points * 1000 / dt)} points/s` : '';
}

// Chart cards stay in name order: the name of the card a new metric goes before (undefined: last).
export function cardAfter(names, metric) {
  const sorted = [...names].sort();
  const idx = sorted.indexOf(metric);
  return idx < sorted.length - 1 ? sorted[idx + 1] : undefined;
}

// The series of a query answer to draw: not empty, and not a vector's field stored beside it.
export function backfillSeries(series) {
  return Object.entries(series || {}).filter(([metric, s]) => {
    if (metric.includes('.') && series[metric.slice(0, metric.lastIndexOf('.'))]) return false;
    return !!(s.value && s.value.length);
  });
}

// How many of the (time ordered) timestamps lie before `first`.
export function countBefore(ts, first) {
  let k = 0;
  while (k < ts.length && ts[k] < first) k++;
  return k;
}
