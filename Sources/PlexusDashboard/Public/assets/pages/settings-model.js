// The settings page's logic without the DOM: API key requests, states and the setup
// command. Unit-tested in Tests/dashboard/settings-model.test.mjs.
import { fmtDate } from '/assets/core.js';

export const SCOPES = [['read', 'Read data and watch live'], ['write', 'Send data, record sessions, control devices'], ['admin', 'Everything, incl. deleting sessions']];
export const EXPIRIES = [['', 'Never expires'], ['7d', '7 days'], ['30d', '30 days'], ['90d', '90 days'], ['365d', '1 year']];

// The command that installs the agent with a key (a placeholder until one is chosen).
export function setupCommand(origin, key) { return `curl -sL ${origin}/setup | bash -s -- --key ${key || 'plx_…'}`; }

// POST /api/keys's body, or the reason there is none.
export function keyRequest(nameText, scopes, expiresIn) {
  if (!nameText.trim()) return { error: 'Give the key a name.' };
  if (!scopes.length) return { error: 'Pick at least one scope.' };
  const body = { name: nameText.trim(), scopes }; if (expiresIn) body.expires_in = expiresIn;
  return { body };
}

// Whether a key was revoked, and whether it expired (both can hold).
export function keyFlags(k, now = Date.now()) {
  return { revoked: !!k.revoked_at, expired: !!(k.expires_at && Date.parse(k.expires_at) < now) };
}
export function keyStatusText(k, { revoked, expired }) { return revoked ? 'revoked ' + fmtDate(k.revoked_at) : expired ? 'expired' : 'active'; }
export function keyExpiresText(k, { expired }) { return k.expires_at ? fmtDate(k.expires_at) + (expired ? ' (expired)' : '') : 'never'; }

// The keys the setup command can use: not revoked, and created on this visit (the secret is known).
export function setupChoices(keys, secrets) { return keys.filter((k) => !k.revoked_at && secrets.has(k.id)); }

// The line above a new invite link.
export function inviteText(r) { return `Invite link for a ${r.role}` + (r.expires_at ? `, valid until ${fmtDate(r.expires_at)}` : '') + ':'; }
