// Sign in, sign up, invite, CLI approval.
import { api, setMe, state, h, navigate, errorBox, enc } from '/assets/core.js';

function safeNext(q) {
  const n = q.get('next');
  return n && n.startsWith('/') && !n.startsWith('//') ? n : '/devices';
}

function authShell(title, sub, form, foot) {
  return h('div', { class: 'auth-wrap' },
    h('div', { class: 'auth-card' },
      logo(),
      h('h1', null, title), sub ? h('p', { class: 'muted' }, sub) : null, form, foot));
}
function logo() {
  const d = h('div', { class: 'auth-brand' });
  d.innerHTML = '<svg viewBox="0 0 16 16" width="28" height="28" aria-hidden="true"><path d="M1 9h3l2-6 4 10 2-4h3" fill="none" stroke="currentColor" stroke-width="2"/></svg><span>Plexus</span>';
  return d;
}
function field(label, input, hint) {
  return h('label', { class: 'field' }, h('span', null, label), input, hint ? h('small', { class: 'muted' }, hint) : null);
}

export function signin(root, _p, q) {
  const email = h('input', { type: 'email', name: 'email', autocomplete: 'username', required: true, autofocus: true });
  const pw = h('input', { type: 'password', name: 'password', autocomplete: 'current-password', required: true });
  const err = h('div', { 'aria-live': 'assertive' });
  const btn = h('button', { class: 'btn primary wide', type: 'submit' }, 'Sign in');
  const form = h('form', { class: 'form', novalidate: false, onsubmit: async (e) => {
    e.preventDefault(); err.replaceChildren(); btn.disabled = true; btn.textContent = 'Signing in…';
    try {
      const me = await api('POST', '/api/auth/signin', { email: email.value.trim(), password: pw.value }, { allow401: true });
      setMe(me); window.dispatchEvent(new Event('plexus:signedin')); navigate(safeNext(q), true);
    } catch (ex) {
      err.replaceChildren(errorBox(ex.code === 'INVALID_CREDENTIALS' ? { message: ex.message || 'Wrong email or password.' } : ex));
      btn.disabled = false; btn.textContent = 'Sign in'; pw.select();
    }
  } }, field('Email', email), field('Password', pw), err, btn);
  const next = q.get('next');
  root.append(authShell('Sign in', 'Telemetry for your hardware, live.', form,
    h('p', { class: 'auth-foot' }, 'No account? ', h('a', { href: '/signup' + (next ? '?next=' + enc(next) : ''), 'data-link': true }, 'Create one'))));
}

export async function signup(root, _p, q) {
  const invite = q.get('invite');
  let inviteInfo = null, inviteErr = null;
  if (invite) {
    try { inviteInfo = await api('GET', `/api/invites/${enc(invite)}`, undefined, { allow401: true }); }
    catch (e) { inviteErr = e; }
  }
  const name = h('input', { type: 'text', name: 'name', autocomplete: 'name' });
  const email = h('input', { type: 'email', name: 'email', autocomplete: 'username', required: true });
  const pw = h('input', { type: 'password', name: 'password', autocomplete: 'new-password', required: true, minlength: 8 });
  const err = h('div', { 'aria-live': 'assertive' });
  const btn = h('button', { class: 'btn primary wide', type: 'submit' }, inviteInfo ? `Join ${inviteInfo.org.name}` : 'Create account');
  const form = h('form', { class: 'form', onsubmit: async (e) => {
    e.preventDefault(); err.replaceChildren(); btn.disabled = true;
    const body = { email: email.value.trim(), password: pw.value };
    if (name.value.trim()) body.name = name.value.trim();
    if (invite && !inviteErr) body.invite = invite;
    try {
      const me = await api('POST', '/api/auth/signup', body, { allow401: true });
      setMe(me); window.dispatchEvent(new Event('plexus:signedin')); navigate(safeNext(q), true);
    } catch (ex) { err.replaceChildren(errorBox(ex)); btn.disabled = false; }
  } }, field('Name', name), field('Email', email), field('Password', pw, 'At least 8 characters.'), err, btn);
  let sub = 'Start with your own organisation. Invite your team later.';
  let banner = null;
  if (inviteInfo) sub = `You are joining ${inviteInfo.org.name} as ${inviteInfo.role}.`;
  if (inviteErr) banner = h('p', { class: 'form-error', role: 'alert' }, inviteErr.status === 410 ? 'This invite has expired or was already used. Ask the owner for a new link; you can still create your own organisation.' : inviteErr.status === 404 ? 'This invite link is not valid.' : inviteErr.message);
  root.append(authShell('Create your account', sub, h('div', null, banner, form),
    h('p', { class: 'auth-foot' }, 'Already have an account? ', h('a', { href: '/signin', 'data-link': true }, 'Sign in'))));
}

export async function invite(root, [token]) {
  const box = h('div');
  root.append(authShell('Invitation', null, box, null));
  try {
    const inv = await api('GET', `/api/invites/${enc(token)}`, undefined, { allow401: true });
    box.append(h('div', null,
      h('p', { class: 'invite-line' }, 'You have been invited to join ', h('strong', null, inv.org.name), ' as ', h('span', { class: `badge role-${inv.role}` }, inv.role), '.'),
      inv.expires_at ? h('p', { class: 'muted' }, 'The link expires ', new Date(inv.expires_at).toLocaleString(), '.') : null,
      state.me ? h('p', { class: 'muted' }, `You are signed in as ${state.me.user.email}. Sign out first to accept it with a new account.`) : null,
      h('a', { class: 'btn primary wide', href: `/signup?invite=${enc(token)}`, 'data-link': true }, 'Accept and create account')));
  } catch (e) {
    box.append(h('p', { class: 'form-error', role: 'alert' },
      e.status === 410 ? 'This invite has expired or has already been used. Ask the organisation owner for a new link.'
        : e.status === 404 ? 'This invite link is not valid.' : e.message),
      h('a', { class: 'btn', href: '/signin', 'data-link': true }, 'Go to sign in'));
  }
}

export function cliApprove(root, _p, q) {
  const st = q.get('state') || '', cb = q.get('callback') || '', name = q.get('name') || 'plexus CLI';
  const err = h('div', { 'aria-live': 'assertive' });
  let host = '', loopback = false;
  try { const u = new URL(cb); host = u.host; loopback = u.protocol === 'http:' && ['127.0.0.1', 'localhost', '[::1]'].includes(u.hostname); } catch { host = cb; }
  const approve = h('button', { class: 'btn primary', type: 'button', onclick: async () => {
    approve.disabled = true; err.replaceChildren();
    try {
      const r = await api('POST', '/api/auth/cli/approve', { state: st, callback: cb, name });
      approve.textContent = 'Approved — returning to the terminal…';
      location.href = r.redirect;
    } catch (e) { err.replaceChildren(errorBox(e)); approve.disabled = false; }
  } }, 'Approve');
  const deny = h('button', { class: 'btn', type: 'button', onclick: () => navigate('/devices') }, 'Cancel');
  root.append(h('div', { class: 'page narrow' },
    h('h1', null, 'Approve command-line sign-in'),
    h('div', { class: 'card' },
      h('p', null, h('strong', null, name), ' is asking for an API key for ', h('strong', null, state.me.org.name), ` as ${state.me.user.email}.`),
      h('p', { class: 'muted' }, 'The key will be sent to ', h('code', null, host || '(no callback)'), ' on this computer. Approve only if you just ran a Plexus command.'),
      (!st || !cb) ? h('p', { class: 'form-error' }, 'This link is missing its state or callback.') : null,
      (cb && !loopback) ? h('p', { class: 'form-error', role: 'alert' }, 'Warning: the callback is not on this computer (loopback). Do not approve unless you trust it.') : null,
      err, h('div', { class: 'row gap' }, approve, deny))));
  if (!st || !cb) approve.disabled = true;
}
