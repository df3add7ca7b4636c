// Shared plumbing: API client (cookie + CSRF), the live WebSocket, DOM helpers.

export const state = { me: null, csrf: null, canControl: false };

export class ApiError extends Error {
  constructor(status, code, message) { super(message); this.status = status; this.code = code; }
}

export async function api(method, path, body, opts = {}) {
  const headers = {};
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (method !== 'GET' && state.csrf) headers['x-csrf-token'] = state.csrf;
  let res;
  try {
    res = await fetch(path, { method, headers, body: body !== undefined ? JSON.stringify(body) : undefined, credentials: 'same-origin' });
  } catch (e) {
    throw new ApiError(0, 'NETWORK', 'Could not reach the server. Check your connection.');
  }
  if (res.status === 204) return null;
  const text = await res.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = null; }
  if (!res.ok) {
    const msg = (data && (data.error || data.message)) || `${res.status} ${res.statusText}`;
    const err = new ApiError(res.status, data && data.code, msg);
    if (res.status === 401 && !opts.allow401 && state.me) { state.me = null; window.dispatchEvent(new CustomEvent('plexus:signedout')); }
    throw err;
  }
  return data;
}

export function setMe(data) {
  state.me = data ? { user: data.user, org: data.org } : null;
  state.csrf = data ? data.csrf_token : null;
}
export const role = () => state.me?.user?.role || 'viewer';
export const canWrite = () => role() !== 'viewer';
export const isOwner = () => role() === 'owner';

// ---------- DOM helpers ----------
export function h(tag, attrs, ...kids) {
  const el = document.createElement(tag);
  if (attrs) for (const [k, v] of Object.entries(attrs)) {
    if (v == null || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2).toLowerCase(), v);
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k === 'value') el.value = v;
    else if (k === 'checked' || k === 'disabled' || k === 'selected') el[k] = !!v;
    else el.setAttribute(k, v === true ? '' : v);
  }
  for (const k of kids.flat(Infinity)) {
    if (k == null || k === false) continue;
    el.append(k instanceof Node ? k : document.createTextNode(String(k)));
  }
  return el;
}
export function toast(msg, kind = 'info') {
  const t = h('div', { class: `toast ${kind}` }, msg);
  document.getElementById('toasts').append(t);
  setTimeout(() => t.remove(), kind === 'error' ? 7000 : 3500);
}
export function fmtAgo(ms) {
  if (!ms) return 'never';
  const d = (Date.now() - ms) / 1000;
  if (d < 5) return 'just now';
  if (d < 60) return `${Math.floor(d)} s ago`;
  if (d < 3600) return `${Math.floor(d / 60)} min ago`;
  if (d < 86400) return `${Math.floor(d / 3600)} h ago`;
  return `${Math.floor(d / 86400)} d ago`;
}
export function fmtDate(v) {
  if (v == null) return '—';
  const d = new Date(v); if (isNaN(d)) return String(v);
  return d.toLocaleString();
}
export function fmtDuration(ms) {
  if (ms == null || !isFinite(ms)) return '—';
  const s = Math.max(0, Math.floor(ms / 1000)), hh = Math.floor(s / 3600), mm = Math.floor((s % 3600) / 60), ss = s % 60;
  return (hh ? hh + ':' + String(mm).padStart(2, '0') : mm) + ':' + String(ss).padStart(2, '0');
}
export function navigate(path, replace = false) {
  if (replace) history.replaceState(null, '', path); else history.pushState(null, '', path);
  window.dispatchEvent(new Event('plexus:navigate'));
}
export function enc(s) { return encodeURIComponent(s); }
export function errorBox(err) { return h('p', { class: 'form-error', role: 'alert' }, err.message || String(err)); }
export async function copyText(text, btn) {
  try { await navigator.clipboard.writeText(text); }
  catch {
    const ta = h('textarea', { style: 'position:fixed;opacity:0' }, text); document.body.append(ta); ta.select();
    try { document.execCommand('copy'); } catch { /* ignore */ } ta.remove();
  }
  if (btn) { const o = btn.textContent; btn.textContent = 'Copied'; setTimeout(() => (btn.textContent = o), 1500); }
}

// ---------- live WebSocket (/ws/browser) ----------
class Live extends EventTarget {
  constructor() {
    super();
    this.ws = null; this.status = 'offline'; this.online = new Map(); this.subs = new Map();
    this.backoff = 500; this.timer = 0; this.wanted = false; this.clockOffset = 0; this.canControl = false; this.ready = false;
  }
  start() { this.wanted = true; if (!this.ws) this._connect(); }
  stop() { this.wanted = false; clearTimeout(this.timer); if (this.ws) { const w = this.ws; this.ws = null; w.close(1000); } this._set('offline'); this.online.clear(); }
  _set(s) { this.status = s; this.dispatchEvent(new CustomEvent('status', { detail: s })); }
  _connect() {
    clearTimeout(this.timer);
    this._set('connecting'); this.ready = false;
    const ws = new WebSocket(`${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws/browser`);
    this.ws = ws;
    ws.onopen = () => { ws.send(JSON.stringify({ type: 'browser_auth', batch: true })); };
    ws.onmessage = (ev) => { let m; try { m = JSON.parse(ev.data); } catch { return; } this._msg(m); };
    ws.onclose = (ev) => {
      if (this.ws !== ws) return;
      this.ws = null; this.ready = false;
      for (const id of this.online.keys()) this.dispatchEvent(new CustomEvent('source', { detail: { source_id: id, status: 'offline', _conn: true } }));
      this.online.clear();
      if (!this.wanted) { this._set('offline'); return; }
      const delay = Math.min(30000, this.backoff) * (0.75 + Math.random() * 0.5);
      this.backoff = Math.min(30000, this.backoff * 2);
      this._set('reconnecting');
      this.retryAt = Date.now() + delay;
      this.timer = setTimeout(() => this._connect(), delay);
      if (ev.code === 1008) { // auth failed: maybe signed out
        fetch('/api/auth/me', { credentials: 'same-origin' }).then((r) => { if (r.status === 401) window.dispatchEvent(new CustomEvent('plexus:signedout')); }).catch(() => {});
      }
    };
    ws.onerror = () => {};
  }
  _msg(m) {
    switch (m.type) {
      case 'init':
        this.backoff = 500; this.ready = true;
        this.clockOffset = (m.server_time_ms || Date.now()) - Date.now();
        this.canControl = !!m.can_control; state.canControl = this.canControl;
        this.online.clear();
        for (const s of m.online_sources || []) this.online.set(s.source_id, s);
        this._set('live');
        for (const [id, metrics] of this.subs) this._sendSub(id);
        this.dispatchEvent(new CustomEvent('init', { detail: m }));
        break;
      case 'source_status':
        if (m.status === 'online') this.online.set(m.source_id, m); else this.online.delete(m.source_id);
        this.dispatchEvent(new CustomEvent('source', { detail: m }));
        break;
      case 'telemetry':
        { const o = this.online.get(m.source_id); if (o) o.last_seen_ms = Date.now() + this.clockOffset; }
        this.dispatchEvent(new CustomEvent('telemetry', { detail: m }));
        break;
      case 'telemetry_batch':
        // every source of one server write: handed on as one telemetry event per source
        for (const s of m.sources || []) this._msg({ type: 'telemetry', source_id: s.source_id, points: s.points || [] });
        break;
      case 'gap':
        // live points the server dropped because this page fell behind (the stored data is complete)
        this.dispatchEvent(new CustomEvent('gap', { detail: m }));
        break;
      case 'error':
        this.dispatchEvent(new CustomEvent('error-frame', { detail: m }));
        this.dispatchEvent(new CustomEvent('frame', { detail: m }));
        break;
      default:
        this.dispatchEvent(new CustomEvent('frame', { detail: m }));
    }
  }
  send(obj) { if (this.ws && this.ws.readyState === 1 && this.ready) { this.ws.send(JSON.stringify(obj)); return true; } return false; }
  _sendSub(id) { this.send({ type: 'subscribe', source_id: id }); }
  subscribe(id) {
    const c = (this.subs.get(id) || 0) + 1; this.subs.set(id, c);
    if (c === 1) this._sendSub(id);
    return () => {
      const n = (this.subs.get(id) || 1) - 1;
      if (n <= 0) { this.subs.delete(id); if (!this.subs.has('*')) this.send({ type: 'unsubscribe', source_id: id }); }
      else this.subs.set(id, n);
    };
  }
  on(type, fn) { const f = (e) => fn(e.detail); this.addEventListener(type, f); return () => this.removeEventListener(type, f); }
  now() { return Date.now() + this.clockOffset; }
}
export const live = new Live();
