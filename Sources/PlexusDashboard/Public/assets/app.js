// Plexus dashboard: boot, routing (History API), top bar, theme.
import { api, setMe, state, live, h, navigate } from '/assets/core.js';
import { themeChanged, allCharts, chartStats } from '/assets/chart.js';

const routes = [
  [/^\/signin\/?$/, () => import('/assets/pages/auth.js').then((m) => m.signin), { public: true }],
  [/^\/signup\/?$/, () => import('/assets/pages/auth.js').then((m) => m.signup), { public: true }],
  [/^\/invite\/([^/]+)\/?$/, () => import('/assets/pages/auth.js').then((m) => m.invite), { public: true }],
  [/^\/auth\/cli\/?$/, () => import('/assets/pages/auth.js').then((m) => m.cliApprove), {}],
  [/^\/devices\/?$/, () => import('/assets/pages/devices.js').then((m) => m.devicesPage), {}],
  [/^\/devices\/([^/]+)\/?$/, () => import('/assets/pages/device.js').then((m) => m.devicePage), {}],
  [/^\/sessions\/?$/, () => import('/assets/pages/sessions.js').then((m) => m.sessionsPage), {}],
  [/^\/sessions\/compare\/?$/, () => import('/assets/pages/sessions.js').then((m) => m.comparePage), {}],
  [/^\/sessions\/([^/]+)\/?$/, () => import('/assets/pages/sessions.js').then((m) => m.sessionPage), {}],
  [/^\/explore\/?$/, () => import('/assets/pages/explore.js').then((m) => m.explorePage), {}],
  [/^\/settings\/?$/, () => import('/assets/pages/settings.js').then((m) => m.settingsPage), {}],
];

let cleanup = null;
let renderSeq = 0;
const main = document.getElementById('main');

async function loadMe() {
  try { setMe(await api('GET', '/api/auth/me', undefined, { allow401: true })); }
  catch (e) { if (e.status === 401) setMe(null); else throw e; }
}

function updateChrome() {
  const signed = !!state.me;
  document.getElementById('topbar').hidden = !signed;
  if (signed) {
    const u = state.me.user;
    document.getElementById('whoami').textContent = `${u.name || u.email} · ${state.me.org.name}`;
    document.getElementById('whoami').title = `${u.email} (${u.role})`;
    live.start();
  } else live.stop();
  const path = location.pathname;
  for (const a of document.querySelectorAll('.nav a')) {
    const on = path === a.getAttribute('href') || path.startsWith(a.getAttribute('href') + '/');
    a.classList.toggle('active', on);
    if (on) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
  }
}

async function render() {
  const seq = ++renderSeq;
  if (cleanup) { try { cleanup(); } catch (e) { console.warn(e); } cleanup = null; }
  let path = location.pathname;
  if (path === '/' || path === '') { navigate(state.me ? '/devices' : '/signin', true); return; }
  let match = null, route = null;
  for (const r of routes) { const m = path.match(r[0]); if (m) { match = m; route = r; break; } }
  if (!route) { updateChrome(); main.replaceChildren(h('div', { class: 'page narrow' }, h('h1', null, 'Not found'), h('p', null, 'No page at ', h('code', null, path), '. ', h('a', { href: '/devices', 'data-link': true }, 'Go to devices')))); return; }
  if (!route[2].public && !state.me) {
    const next = path + location.search;
    navigate('/signin' + (next && next !== '/devices' ? '?next=' + encodeURIComponent(next) : ''), true); return;
  }
  if ((path.startsWith('/signin') || path.startsWith('/signup')) && state.me) { navigate('/devices', true); return; }
  updateChrome();
  const page = await route[1]();
  if (seq !== renderSeq) return;
  main.replaceChildren();
  const params = match.slice(1).map(decodeURIComponent);
  const query = new URLSearchParams(location.search);
  try {
    cleanup = (await page(main, params, query)) || null;
  } catch (e) {
    console.warn(e);
    main.append(h('p', { class: 'form-error', role: 'alert' }, e.message || String(e)));
  }
  if (seq !== renderSeq && cleanup) { cleanup(); cleanup = null; }
  const h1 = main.querySelector('h1'); document.title = h1 ? `${h1.textContent} · Plexus` : 'Plexus';
}

// links
document.addEventListener('click', (e) => {
  const a = e.target.closest('a[data-link], a[href^="/"]');
  if (!a || e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || a.target || a.hasAttribute('download')) return;
  const href = a.getAttribute('href');
  if (!href || !href.startsWith('/') || href.startsWith('/api/') || href.startsWith('/v1/') || href.startsWith('//')) return;
  e.preventDefault();
  if (href !== location.pathname + location.search) navigate(href);
});
window.addEventListener('popstate', render);
window.addEventListener('plexus:navigate', render);
window.addEventListener('plexus:signedout', () => { setMe(null); live.stop(); navigate('/signin', true); });
window.addEventListener('plexus:signedin', () => { updateChrome(); });

document.getElementById('signout-top').addEventListener('click', async () => {
  try { await api('POST', '/api/auth/signout'); } catch (e) { if (e.status !== 401) return; }
  window.dispatchEvent(new CustomEvent('plexus:signedout'));
});

// connection indicator
const conn = document.getElementById('conn');
live.addEventListener('status', (e) => {
  const s = e.detail;
  conn.className = 'conn ' + s;
  conn.querySelector('span').textContent = s === 'live' ? 'live' : s === 'connecting' ? 'connecting…' : s === 'reconnecting' ? 'reconnecting…' : 'offline';
  conn.title = s === 'reconnecting' ? 'Connection lost; retrying with backoff' : 'Live connection: ' + s;
});

// theme
const media = matchMedia('(prefers-color-scheme: dark)');
function effectiveTheme() { return document.documentElement.dataset.theme || (media.matches ? 'dark' : 'light'); }
function syncThemeButton() {
  const b = document.getElementById('theme-toggle');
  const dark = effectiveTheme() === 'dark';
  b.setAttribute('aria-pressed', String(dark)); b.textContent = dark ? '☀' : '☾';
  b.setAttribute('aria-label', dark ? 'Switch to light theme' : 'Switch to dark theme');
}
document.getElementById('theme-toggle').addEventListener('click', () => {
  const next = effectiveTheme() === 'dark' ? 'light' : 'dark';
  document.documentElement.dataset.theme = next;
  try { localStorage.setItem('plexus-theme', next); } catch { /* private mode */ }
  syncThemeButton(); themeChanged();
});
media.addEventListener('change', () => { syncThemeButton(); themeChanged(); });
syncThemeButton();

// state exposed for tests and debugging (read-only use)
window.__plexus = {
  charts: () => allCharts().map((c) => c.state()),
  chartStats, live, state,
};

(async function boot() {
  try { await loadMe(); }
  catch (e) { main.replaceChildren(h('div', { class: 'page narrow' }, h('h1', null, 'Server unreachable'), h('p', null, e.message))); return; }
  render();
})();
