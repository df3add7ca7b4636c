// Devices list: every source, live online/offline.
import { api, live, h, fmtAgo, enc, navigate } from '/assets/core.js';

function sensorText(s) {
  if (!Array.isArray(s) || !s.length) return '—';
  return s.map((x) => (x && typeof x === 'object' ? (x.name || x.id || JSON.stringify(x)) : String(x))).join(', ');
}

export async function devicesPage(root) {
  const tbody = h('tbody');
  const count = h('span', { class: 'muted' });
  const empty = h('div', { class: 'empty', hidden: true },
    h('h2', null, 'No devices yet'),
    h('p', null, 'Create an API key in ', h('a', { href: '/settings', 'data-link': true }, 'Settings → Developer'), ' and run the setup command on your device:'),
    h('pre', { class: 'code' }, `curl -sL ${location.origin}/setup | bash -s -- --key plx_…`));
  const filter = h('input', { type: 'search', placeholder: 'Filter devices', 'aria-label': 'Filter devices', class: 'filter' });
  root.append(h('div', { class: 'page' },
    h('div', { class: 'page-head' }, h('h1', null, 'Devices'), count, h('div', { class: 'spacer' }), filter),
    h('div', { class: 'table-wrap' }, h('table', { class: 'table devices', 'aria-label': 'Devices' },
      h('thead', null, h('tr', null, ['Device', 'Status', 'Platform', 'Agent', 'Sensors', 'Last seen'].map((t) => h('th', { scope: 'col' }, t)))), tbody)),
    empty));

  const devices = new Map();
  function merge(d) {
    const cur = devices.get(d.source_id) || { source_id: d.source_id };
    for (const k of ['platform', 'agent_version', 'sensors', 'connected_at_ms', 'last_seen_ms']) if (d[k] !== undefined && d[k] !== null) cur[k] = d[k];
    if (d.online !== undefined) cur.online = d.online;
    devices.set(d.source_id, cur);
  }
  function row(d) {
    const st = h('span', { class: `status ${d.online ? 'on' : 'off'}` }, h('i', { 'aria-hidden': 'true' }), d.online ? 'online' : 'offline');
    const tr = h('tr', { dataset: { source: d.source_id }, class: 'clickable' + (d.online ? ' is-online' : ''), onclick: (e) => { if (!e.target.closest('a') && !getSelection().toString()) navigate(`/devices/${enc(d.source_id)}`); } },
      h('td', { 'data-label': 'Device' }, h('a', { href: `/devices/${enc(d.source_id)}`, 'data-link': true, class: 'strong' }, d.source_id)),
      h('td', { 'data-label': 'Status' }, st),
      h('td', { 'data-label': 'Platform' }, d.platform || '—'),
      h('td', { 'data-label': 'Agent' }, d.agent_version || '—'),
      h('td', { 'data-label': 'Sensors', class: 'wrap' }, sensorText(d.sensors)),
      h('td', { 'data-label': 'Last seen', title: d.last_seen_ms ? new Date(d.last_seen_ms).toLocaleString() : '' }, d.online && d.last_seen_ms && Date.now() - d.last_seen_ms < 5000 ? 'just now' : fmtAgo(d.last_seen_ms)));
    return tr;
  }
  function paint() {
    const f = filter.value.trim().toLowerCase();
    const list = [...devices.values()].filter((d) => !f || d.source_id.toLowerCase().includes(f) || (d.platform || '').toLowerCase().includes(f))
      .sort((a, b) => (b.online - a.online) || a.source_id.localeCompare(b.source_id));
    tbody.replaceChildren(...list.map(row));
    const on = [...devices.values()].filter((d) => d.online).length;
    count.textContent = `${devices.size} total · ${on} online`;
    empty.hidden = devices.size > 0;
  }
  async function load() {
    try {
      const r = await api('GET', '/v1/sources');
      for (const d of r.devices || []) merge(d);
      for (const [id, s] of live.online) merge({ ...s, online: true });
      paint();
    } catch (e) { if (e.status !== 401) tbody.replaceChildren(h('tr', null, h('td', { colspan: 6, class: 'form-error' }, e.message))); }
  }
  filter.addEventListener('input', paint);
  const offs = [
    live.on('source', (m) => { merge({ ...m, online: m.status === 'online' }); if (m.status === 'offline') { const d = devices.get(m.source_id); if (d) d.last_seen_ms = Date.now(); } paint(); }),
    live.on('init', (m) => { for (const d of devices.values()) d.online = false; for (const s of m.online_sources || []) merge({ ...s, online: true }); paint(); }),
  ];
  await load();
  const timer = setInterval(load, 15000);
  return () => { offs.forEach((f) => f()); clearInterval(timer); };
}
