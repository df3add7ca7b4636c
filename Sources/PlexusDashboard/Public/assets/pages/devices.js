// Devices list: every source, live online/offline.
import { api, live, h, enc, navigate } from '/assets/core.js';
import { mergeDevice, visibleDevices, countText, sensorText, lastSeenText } from '/assets/pages/devices-model.js';

export async function devicesPage(root) {
  const ctx = { devices: new Map(), ui: renderDevicesPage(root) };
  ctx.ui.filter.addEventListener('input', () => paint(ctx));
  const offs = [
    live.on('source', (m) => {
      mergeDevice(ctx.devices, { ...m, online: m.status === 'online' });
      if (m.status === 'offline') { const d = ctx.devices.get(m.source_id); if (d) d.last_seen_ms = Date.now(); }
      paint(ctx);
    }),
    live.on('init', (m) => { for (const d of ctx.devices.values()) d.online = false; for (const s of m.online_sources || []) mergeDevice(ctx.devices, { ...s, online: true }); paint(ctx); }),
  ];
  await load(ctx);
  const timer = setInterval(() => load(ctx), 15000);
  return () => { offs.forEach((f) => f()); clearInterval(timer); };
}

function renderDevicesPage(root) {
  const ui = {
    tbody: h('tbody'),
    count: h('span', { class: 'muted' }),
    empty: h('div', { class: 'empty', hidden: true },
      h('h2', null, 'No devices yet'),
      h('p', null, 'Create an API key in ', h('a', { href: '/settings', 'data-link': true }, 'Settings → Developer'), ' and run the setup command on your device:'),
      h('pre', { class: 'code' }, `curl -sL ${location.origin}/setup | bash -s -- --key plx_…`)),
    filter: h('input', { type: 'search', placeholder: 'Filter devices', 'aria-label': 'Filter devices', class: 'filter' }),
  };
  root.append(h('div', { class: 'page' },
    h('div', { class: 'page-head' }, h('h1', null, 'Devices'), ui.count, h('div', { class: 'spacer' }), ui.filter),
    h('div', { class: 'table-wrap' }, h('table', { class: 'table devices', 'aria-label': 'Devices' },
      h('thead', null, h('tr', null, ['Device', 'Status', 'Platform', 'Agent', 'Sensors', 'Last seen'].map((t) => h('th', { scope: 'col' }, t)))), ui.tbody)),
    ui.empty));
  return ui;
}

function row(d) {
  const st = h('span', { class: `status ${d.online ? 'on' : 'off'}` }, h('i', { 'aria-hidden': 'true' }), d.online ? 'online' : 'offline');
  return h('tr', { dataset: { source: d.source_id }, class: 'clickable' + (d.online ? ' is-online' : ''), onclick: (e) => { if (!e.target.closest('a') && !getSelection().toString()) navigate(`/devices/${enc(d.source_id)}`); } },
    h('td', { 'data-label': 'Device' }, h('a', { href: `/devices/${enc(d.source_id)}`, 'data-link': true, class: 'strong' }, d.source_id)),
    h('td', { 'data-label': 'Status' }, st),
    h('td', { 'data-label': 'Platform' }, d.platform || '—'),
    h('td', { 'data-label': 'Agent' }, d.agent_version || '—'),
    h('td', { 'data-label': 'Sensors', class: 'wrap' }, sensorText(d.sensors)),
    h('td', { 'data-label': 'Last seen', title: d.last_seen_ms ? new Date(d.last_seen_ms).toLocaleString() : '' }, lastSeenText(d)));
}

function paint({ devices, ui }) {
  ui.tbody.replaceChildren(...visibleDevices(devices, ui.filter.value).map(row));
  ui.count.textContent = countText(devices);
  ui.empty.hidden = devices.size > 0;
}

async function load(ctx) {
  try {
    const r = await api('GET', '/v1/sources');
    for (const d of r.devices || []) mergeDevice(ctx.devices, d);
    for (const [, s] of live.online) mergeDevice(ctx.devices, { ...s, online: true });
    paint(ctx);
  } catch (e) { if (e.status !== 401) ctx.ui.tbody.replaceChildren(h('tr', null, h('td', { colspan: 6, class: 'form-error' }, e.message))); }
}
