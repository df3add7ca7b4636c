// Settings: developer (API keys, setup command), members & invites, account.
import { api, state, h, fmtDate, errorBox, copyText, isOwner, canWrite, toast, navigate, setMe, live } from '/assets/core.js';
import {
  SCOPES, EXPIRIES, setupCommand, keyRequest, keyFlags, keyStatusText, keyExpiresText, setupChoices, inviteText,
} from '/assets/pages/settings-model.js';

export async function settingsPage(root) {
  const page = h('div', { class: 'page settings' });
  root.append(page);
  page.append(h('div', { class: 'page-head' }, h('h1', null, 'Settings'), h('span', { class: 'muted' }, `${state.me.org.name} · signed in as ${state.me.user.email} (${state.me.user.role})`)));
  const ctx = { secrets: new Map(), ui: {} }; // secrets: id -> full key, only for keys created in this visit
  page.append(renderDeveloper(ctx));
  // Keys are for owners and members; the server refuses viewers the list.
  if (canWrite()) await loadKeys(ctx);
  else ctx.ui.keysBody.append(h('tr', null, h('td', { colspan: 7, class: 'muted' }, 'Only members and owners manage API keys.')));
  if (isOwner()) await renderMembers(page);
  page.append(renderAccount());
}

function copyButton(text) {
  const b = h('button', { class: 'btn small', type: 'button', onclick: () => copyText(typeof text === 'function' ? text() : text, b) }, 'Copy');
  return b;
}

// ---------- Developer ----------
function renderDeveloper(ctx) {
  const ui = ctx.ui;
  ui.keysBody = h('tbody');
  ui.setupKeySel = h('select', { 'aria-label': 'Key for the setup command' });
  ui.setupCmd = h('code', { id: 'setup-cmd' });
  const setupCopy = copyButton(() => ui.setupCmd.textContent);
  ui.setupKeySel.addEventListener('change', () => paintSetup(ctx));
  const createForm = renderCreateForm(ctx);
  return h('section', { class: 'card', 'aria-labelledby': 'dev-h' },
    h('h2', { id: 'dev-h' }, 'Developer · API keys'),
    h('p', { class: 'muted' }, 'Devices and scripts use API keys (', h('code', null, 'x-api-key: plx_…'), '). A key is shown once when it is created.'),
    canWrite() ? createForm : h('p', { class: 'muted' }, 'Viewers cannot see or create keys.'), ui.createErr, ui.newKeyBox,
    h('div', { class: 'table-wrap mt' }, h('table', { class: 'table keys', 'aria-label': 'API keys' },
      h('thead', null, h('tr', null, ['Name', 'Key', 'Scopes', 'Created', 'Expires', 'Status', ''].map((t) => h('th', { scope: 'col' }, t)))), ui.keysBody)),
    h('h3', null, 'Device setup'),
    h('p', { class: 'muted' }, 'Run this on a device to install the agent and connect it with the chosen key.'),
    h('div', { class: 'row gap wrap' }, ui.setupKeySel),
    h('div', { class: 'cmd' }, ui.setupCmd, setupCopy));
}

function paintSetup({ secrets, ui }) { ui.setupCmd.textContent = setupCommand(location.origin, secrets.get(ui.setupKeySel.value)); }

function renderCreateForm(ctx) {
  const ui = ctx.ui;
  ui.keyName = h('input', { type: 'text', required: true, placeholder: 'e.g. drone-fleet', 'aria-label': 'Key name', maxlength: 100 });
  ui.scopeBoxes = SCOPES.map(([s, d]) => h('label', { class: 'inline', title: d }, h('input', { type: 'checkbox', value: s, checked: s !== 'admin', name: 'scope' }), ' ' + s));
  ui.expSel = h('select', { 'aria-label': 'Expires' }, EXPIRIES.map(([v, l]) => h('option', { value: v }, l)));
  ui.createErr = h('div');
  ui.newKeyBox = h('div', { class: 'secret', hidden: true, role: 'status' });
  return h('form', { class: 'form inline-form', onsubmit: (e) => createKey(ctx, e) },
    h('label', { class: 'grow' }, h('span', null, 'Name'), ui.keyName), h('fieldset', { class: 'scopes' }, h('legend', null, 'Scopes'), ui.scopeBoxes),
    h('label', null, h('span', null, 'Expires'), ui.expSel), h('button', { class: 'btn primary', type: 'submit' }, 'Create key'));
}

async function createKey(ctx, e) {
  const ui = ctx.ui;
  e.preventDefault(); ui.createErr.replaceChildren();
  const scopes = ui.scopeBoxes.map((l) => l.querySelector('input')).filter((c) => c.checked).map((c) => c.value);
  const req = keyRequest(ui.keyName.value, scopes, ui.expSel.value);
  if (req.error) { ui.createErr.append(errorBox({ message: req.error })); return; }
  try {
    const k = await api('POST', '/api/keys', req.body);
    ctx.secrets.set(k.id, k.key);
    ui.newKeyBox.hidden = false;
    ui.newKeyBox.replaceChildren(h('p', null, h('strong', null, `Key “${k.name}” created.`), ' Copy it now: it is shown only once.'),
      h('div', { class: 'row gap' }, h('code', { class: 'key-secret', id: 'new-key' }, k.key), copyButton(k.key)));
    ui.keyName.value = '';
    await loadKeys(ctx);
    ui.setupKeySel.value = k.id; paintSetup(ctx);
  } catch (ex) { ui.createErr.append(errorBox(ex)); }
}

async function loadKeys(ctx) {
  const { secrets, ui } = ctx;
  try {
    const r = await api('GET', '/api/keys');
    const keys = r.keys || [];
    ui.keysBody.replaceChildren(...keys.map((k) => keyRow(ctx, k)));
    if (!keys.length) ui.keysBody.append(h('tr', null, h('td', { colspan: 7, class: 'muted' }, 'No API keys yet.')));
    const cur = ui.setupKeySel.value;
    ui.setupKeySel.replaceChildren(h('option', { value: '' }, 'Choose a key created now…'),
      ...setupChoices(keys, secrets).map((k) => h('option', { value: k.id }, k.name)));
    if (secrets.has(cur)) ui.setupKeySel.value = cur;
    paintSetup(ctx);
  } catch (e) { ui.keysBody.replaceChildren(h('tr', null, h('td', { colspan: 7 }, errorBox(e)))); }
}

function keyRow(ctx, k) {
  const flags = keyFlags(k);
  const rv = h('button', { class: 'btn small danger', type: 'button', disabled: flags.revoked || !canWrite(), 'aria-label': `Revoke key ${k.name}`, onclick: () => revokeKey(ctx, k, rv) }, flags.revoked ? 'Revoked' : 'Revoke');
  return h('tr', { dataset: { key: k.id }, class: flags.revoked ? 'revoked' : '' },
    h('td', { 'data-label': 'Name', class: 'strong' }, k.name),
    h('td', { 'data-label': 'Key', class: 'mono' }, (k.prefix || '') + '…'),
    h('td', { 'data-label': 'Scopes' }, (k.scopes || []).map((s) => h('span', { class: 'badge' }, s))),
    h('td', { 'data-label': 'Created' }, fmtDate(k.created_at)),
    h('td', { 'data-label': 'Expires' }, keyExpiresText(k, flags)),
    h('td', { 'data-label': 'Status' }, h('span', { class: `badge ${flags.revoked || flags.expired ? 'st-aborted' : 'st-active'}` }, keyStatusText(k, flags))),
    h('td', null, rv));
}

// Revoke asks for a second click within 4 s.
async function revokeKey(ctx, k, rv) {
  if (!rv.dataset.confirm) { rv.dataset.confirm = '1'; rv.textContent = 'Click again to revoke'; setTimeout(() => { if (rv.isConnected && !rv.disabled) { delete rv.dataset.confirm; rv.textContent = 'Revoke'; } }, 4000); return; }
  rv.disabled = true;
  try { await api('DELETE', `/api/keys/${encodeURIComponent(k.id)}`); toast(`Key ${k.name} revoked`); ctx.secrets.delete(k.id); await loadKeys(ctx); }
  catch (ex) { toast(ex.message, 'error'); rv.disabled = false; }
}

// ---------- Members ----------
async function renderMembers(page) {
  const membersBody = h('tbody');
  const roleSel = h('select', { 'aria-label': 'Role for the invite' }, h('option', { value: 'member' }, 'member'), h('option', { value: 'viewer' }, 'viewer'));
  const inviteOut = h('div', { class: 'secret', hidden: true });
  const inviteErr = h('div');
  const inviteBtn = h('button', { class: 'btn primary', type: 'button', onclick: () => createInvite(roleSel.value, inviteOut, inviteErr) }, 'Create invite link');
  page.append(h('section', { class: 'card', 'aria-labelledby': 'mem-h' },
    h('h2', { id: 'mem-h' }, 'Members'),
    h('div', { class: 'table-wrap' }, h('table', { class: 'table', 'aria-label': 'Members' }, h('thead', null, h('tr', null, ['Name', 'Email', 'Role', 'Joined'].map((t) => h('th', { scope: 'col' }, t)))), membersBody)),
    h('h3', null, 'Invite someone'),
    h('div', { class: 'row gap' }, h('label', { class: 'inline' }, 'Role ', roleSel), inviteBtn), inviteErr, inviteOut));
  try {
    const r = await api('GET', '/api/members');
    membersBody.replaceChildren(...(r.members || []).map((m) => h('tr', null, h('td', { 'data-label': 'Name' }, m.name || '—'), h('td', { 'data-label': 'Email' }, m.email), h('td', { 'data-label': 'Role' }, h('span', { class: `badge role-${m.role}` }, m.role)), h('td', { 'data-label': 'Joined' }, fmtDate(m.created_at)))));
  } catch (e) { membersBody.replaceChildren(h('tr', null, h('td', { colspan: 4 }, errorBox(e)))); }
}

async function createInvite(role, inviteOut, inviteErr) {
  inviteErr.replaceChildren();
  try {
    const r = await api('POST', '/api/invites', { role });
    const url = location.origin + r.url;
    inviteOut.hidden = false;
    inviteOut.replaceChildren(h('p', null, inviteText(r)), h('div', { class: 'row gap' }, h('code', { id: 'invite-url' }, url), copyButton(url)));
  } catch (e) { inviteErr.append(errorBox(e)); }
}

// ---------- Account ----------
function renderAccount() {
  const cur = h('input', { type: 'password', autocomplete: 'current-password', required: true });
  const nw = h('input', { type: 'password', autocomplete: 'new-password', required: true, minlength: 8 });
  const pwMsg = h('div', { 'aria-live': 'polite' });
  const pwForm = h('form', { class: 'form narrow-form', onsubmit: async (e) => {
    e.preventDefault(); pwMsg.replaceChildren();
    try { await api('POST', '/api/auth/password', { current_password: cur.value, new_password: nw.value }); cur.value = nw.value = ''; pwMsg.append(h('p', { class: 'ok' }, 'Password changed.')); }
    catch (ex) { pwMsg.append(errorBox(ex)); }
  } }, h('label', { class: 'field' }, h('span', null, 'Current password'), cur), h('label', { class: 'field' }, h('span', null, 'New password'), nw, h('small', { class: 'muted' }, 'At least 8 characters.')), pwMsg,
    h('button', { class: 'btn primary', type: 'submit' }, 'Change password'));
  const signOut = h('button', { class: 'btn', type: 'button', id: 'signout', onclick: async () => {
    try { await api('POST', '/api/auth/signout'); } catch (e) { if (e.status !== 401) { toast(e.message, 'error'); return; } }
    setMe(null); live.stop(); navigate('/signin', true);
  } }, 'Sign out');
  return h('section', { class: 'card', 'aria-labelledby': 'acct-h' }, h('h2', { id: 'acct-h' }, 'Account'), pwForm, h('hr'), signOut);
}
