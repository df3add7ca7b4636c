// Settings: developer (API keys, setup command), members & invites, account.
import { api, state, h, fmtDate, errorBox, copyText, isOwner, canWrite, toast, navigate, setMe, live } from '/assets/core.js';

const SCOPES = [['read', 'Read data and watch live'], ['write', 'Send data, record sessions, control devices'], ['admin', 'Everything, incl. deleting sessions']];

export async function settingsPage(root) {
  const page = h('div', { class: 'page settings' });
  root.append(page);
  page.append(h('div', { class: 'page-head' }, h('h1', null, 'Settings'), h('span', { class: 'muted' }, `${state.me.org.name} · signed in as ${state.me.user.email} (${state.me.user.role})`)));

  // ---------- Developer ----------
  const secrets = new Map(); // id -> full key, only for keys created in this visit
  const keysBody = h('tbody');
  const keyName = h('input', { type: 'text', required: true, placeholder: 'e.g. drone-fleet', 'aria-label': 'Key name', maxlength: 100 });
  const scopeBoxes = SCOPES.map(([s, d]) => h('label', { class: 'inline', title: d }, h('input', { type: 'checkbox', value: s, checked: s !== 'admin', name: 'scope' }), ' ' + s));
  const expSel = h('select', { 'aria-label': 'Expires' }, [['', 'Never expires'], ['7d', '7 days'], ['30d', '30 days'], ['90d', '90 days'], ['365d', '1 year']].map(([v, l]) => h('option', { value: v }, l)));
  const createErr = h('div');
  const newKeyBox = h('div', { class: 'secret', hidden: true, role: 'status' });
  const setupKeySel = h('select', { 'aria-label': 'Key for the setup command' });
  const setupCmd = h('code', { id: 'setup-cmd' });
  const setupCopy = h('button', { class: 'btn small', type: 'button', onclick: () => copyText(setupCmd.textContent, setupCopy) }, 'Copy');
  function paintSetup() {
    const k = secrets.get(setupKeySel.value);
    setupCmd.textContent = `curl -sL ${location.origin}/setup | bash -s -- --key ${k || 'plx_…'}`;
  }
  setupKeySel.addEventListener('change', paintSetup);
  const createForm = h('form', { class: 'form inline-form', onsubmit: async (e) => {
    e.preventDefault(); createErr.replaceChildren();
    const scopes = scopeBoxes.map((l) => l.querySelector('input')).filter((c) => c.checked).map((c) => c.value);
    if (!keyName.value.trim()) { createErr.append(errorBox({ message: 'Give the key a name.' })); return; }
    if (!scopes.length) { createErr.append(errorBox({ message: 'Pick at least one scope.' })); return; }
    const body = { name: keyName.value.trim(), scopes }; if (expSel.value) body.expires_in = expSel.value;
    try {
      const k = await api('POST', '/api/keys', body);
      secrets.set(k.id, k.key);
      const copy = h('button', { class: 'btn small', type: 'button', onclick: () => copyText(k.key, copy) }, 'Copy');
      newKeyBox.hidden = false;
      newKeyBox.replaceChildren(h('p', null, h('strong', null, `Key “${k.name}” created.`), ' Copy it now: it is shown only once.'),
        h('div', { class: 'row gap' }, h('code', { class: 'key-secret', id: 'new-key' }, k.key), copy));
      keyName.value = '';
      await loadKeys();
      setupKeySel.value = k.id; paintSetup();
    } catch (ex) { createErr.append(errorBox(ex)); }
  } }, h('label', { class: 'grow' }, h('span', null, 'Name'), keyName), h('fieldset', { class: 'scopes' }, h('legend', null, 'Scopes'), scopeBoxes),
    h('label', null, h('span', null, 'Expires'), expSel), h('button', { class: 'btn primary', type: 'submit' }, 'Create key'));

  async function loadKeys() {
    try {
      const r = await api('GET', '/api/keys');
      const keys = r.keys || [];
      keysBody.replaceChildren(...keys.map((k) => {
        const revoked = !!k.revoked_at, expired = k.expires_at && Date.parse(k.expires_at) < Date.now();
        const rv = h('button', { class: 'btn small danger', type: 'button', disabled: revoked || !canWrite(), 'aria-label': `Revoke key ${k.name}`, onclick: async () => {
          if (!rv.dataset.confirm) { rv.dataset.confirm = '1'; rv.textContent = 'Click again to revoke'; setTimeout(() => { if (rv.isConnected && !rv.disabled) { delete rv.dataset.confirm; rv.textContent = 'Revoke'; } }, 4000); return; }
          rv.disabled = true;
          try { await api('DELETE', `/api/keys/${encodeURIComponent(k.id)}`); toast(`Key ${k.name} revoked`); secrets.delete(k.id); await loadKeys(); }
          catch (ex) { toast(ex.message, 'error'); rv.disabled = false; }
        } }, revoked ? 'Revoked' : 'Revoke');
        return h('tr', { dataset: { key: k.id }, class: revoked ? 'revoked' : '' },
          h('td', { 'data-label': 'Name', class: 'strong' }, k.name),
          h('td', { 'data-label': 'Key', class: 'mono' }, (k.prefix || '') + '…'),
          h('td', { 'data-label': 'Scopes' }, (k.scopes || []).map((s) => h('span', { class: 'badge' }, s))),
          h('td', { 'data-label': 'Created' }, fmtDate(k.created_at)),
          h('td', { 'data-label': 'Expires' }, k.expires_at ? fmtDate(k.expires_at) + (expired ? ' (expired)' : '') : 'never'),
          h('td', { 'data-label': 'Status' }, revoked ? h('span', { class: 'badge st-aborted' }, 'revoked ' + fmtDate(k.revoked_at)) : expired ? h('span', { class: 'badge st-aborted' }, 'expired') : h('span', { class: 'badge st-active' }, 'active')),
          h('td', null, rv));
      }));
      if (!keys.length) keysBody.append(h('tr', null, h('td', { colspan: 7, class: 'muted' }, 'No API keys yet.')));
      const cur = setupKeySel.value;
      setupKeySel.replaceChildren(h('option', { value: '' }, 'Choose a key created now…'),
        ...keys.filter((k) => !k.revoked_at && secrets.has(k.id)).map((k) => h('option', { value: k.id }, k.name)));
      if (secrets.has(cur)) setupKeySel.value = cur;
      paintSetup();
    } catch (e) { keysBody.replaceChildren(h('tr', null, h('td', { colspan: 7 }, errorBox(e)))); }
  }

  page.append(h('section', { class: 'card', 'aria-labelledby': 'dev-h' },
    h('h2', { id: 'dev-h' }, 'Developer · API keys'),
    h('p', { class: 'muted' }, 'Devices and scripts use API keys (', h('code', null, 'x-api-key: plx_…'), '). A key is shown once when it is created.'),
    canWrite() ? createForm : h('p', { class: 'muted' }, 'Viewers cannot see or create keys.'), createErr, newKeyBox,
    h('div', { class: 'table-wrap mt' }, h('table', { class: 'table keys', 'aria-label': 'API keys' },
      h('thead', null, h('tr', null, ['Name', 'Key', 'Scopes', 'Created', 'Expires', 'Status', ''].map((t) => h('th', { scope: 'col' }, t)))), keysBody)),
    h('h3', null, 'Device setup'),
    h('p', { class: 'muted' }, 'Run this on a device to install the agent and connect it with the chosen key.'),
    h('div', { class: 'row gap wrap' }, setupKeySel),
    h('div', { class: 'cmd' }, setupCmd, setupCopy)));
  // Keys are for owners and members; the server refuses viewers the list.
  if (canWrite()) await loadKeys();
  else keysBody.append(h('tr', null, h('td', { colspan: 7, class: 'muted' }, 'Only members and owners manage API keys.')));

  // ---------- Members ----------
  if (isOwner()) {
    const membersBody = h('tbody');
    const roleSel = h('select', { 'aria-label': 'Role for the invite' }, h('option', { value: 'member' }, 'member'), h('option', { value: 'viewer' }, 'viewer'));
    const inviteOut = h('div', { class: 'secret', hidden: true });
    const inviteErr = h('div');
    const inviteBtn = h('button', { class: 'btn primary', type: 'button', onclick: async () => {
      inviteErr.replaceChildren();
      try {
        const r = await api('POST', '/api/invites', { role: roleSel.value });
        const url = location.origin + r.url;
        const copy = h('button', { class: 'btn small', type: 'button', onclick: () => copyText(url, copy) }, 'Copy');
        inviteOut.hidden = false;
        inviteOut.replaceChildren(h('p', null, `Invite link for a ${r.role}` + (r.expires_at ? `, valid until ${fmtDate(r.expires_at)}` : '') + ':'), h('div', { class: 'row gap' }, h('code', { id: 'invite-url' }, url), copy));
      } catch (e) { inviteErr.append(errorBox(e)); }
    } }, 'Create invite link');
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

  // ---------- Account ----------
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
  page.append(h('section', { class: 'card', 'aria-labelledby': 'acct-h' }, h('h2', { id: 'acct-h' }, 'Account'), pwForm, h('hr'), signOut));
}
