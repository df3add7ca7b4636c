// The devices list's logic without the DOM: merging what the API and the live socket say
// about a device, filtering and ordering the list. Unit-tested in Tests/dashboard/devices-model.test.mjs.
import { fmtAgo } from '/assets/core.js';

const FIELDS = ['platform', 'agent_version', 'sensors', 'connected_at_ms', 'last_seen_ms'];

// Folds a report about a device into `devices` (source_id -> device): fields given
// replace those known, missing ones keep them.
export function mergeDevice(devices, d) {
  const cur = devices.get(d.source_id) || { source_id: d.source_id };
  for (const k of FIELDS) if (d[k] !== undefined && d[k] !== null) cur[k] = d[k];
  if (d.online !== undefined) cur.online = d.online;
  devices.set(d.source_id, cur);
  return cur;
}

// The devices matching the filter (name or platform), online first, then by name.
export function visibleDevices(devices, filterText) {
  const f = filterText.trim().toLowerCase();
  return [...devices.values()].filter((d) => !f || d.source_id.toLowerCase().includes(f) || (d.platform || '').toLowerCase().includes(f))
    .sort((a, b) => (b.online - a.online) || a.source_id.localeCompare(b.source_id));
}

export function countText(devices) {
  const on = [...devices.values()].filter((d) => d.online).length;
  return `${devices.size} total · ${on} online`;
}

export function sensorText(s) {
  if (!Array.isArray(s) || !s.length) return '—';
  return s.map((x) => (x && typeof x === 'object' ? (x.name || x.id || JSON.stringify(x)) : String(x))).join(', ');
}

// "just now" for an online device heard from in the last 5 s.
export function lastSeenText(d, now = Date.now()) {
  return d.online && d.last_seen_ms && now - d.last_seen_ms < 5000 ? 'just now' : fmtAgo(d.last_seen_ms);
}
