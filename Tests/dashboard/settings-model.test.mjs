// The settings page's logic (assets/pages/settings-model.js): key requests, key states,
// the setup command, invite lines.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadModule } from './load.mjs';

const M = await loadModule('assets/pages/settings-model.js');
const { fmtDate } = await loadModule('assets/core.js');

test('the setup command, with a placeholder until a key is chosen', () => {
  assert.equal(M.setupCommand('https://plexus.example', undefined), 'curl -sL https://plexus.example/setup | bash -s -- --key plx_…');
  assert.equal(M.setupCommand('http://127.0.0.1:8080', 'plx_abc'), 'curl -sL http://127.0.0.1:8080/setup | bash -s -- --key plx_abc');
});

test('a key request needs a name and a scope; expiry only when chosen', () => {
  assert.deepEqual(M.keyRequest('   ', ['read'], ''), { error: 'Give the key a name.' });
  assert.deepEqual(M.keyRequest('fleet', [], '7d'), { error: 'Pick at least one scope.' });
  assert.equal(JSON.stringify(M.keyRequest('  fleet ', ['read', 'write'], '30d').body), '{"name":"fleet","scopes":["read","write"],"expires_in":"30d"}');
  assert.deepEqual(M.keyRequest('fleet', ['admin'], ''), { body: { name: 'fleet', scopes: ['admin'] } });
});

test('key states: revoked, expired, both or active', () => {
  const now = Date.parse('2026-06-01T00:00:00Z');
  const past = '2026-01-01T00:00:00Z', future = '2027-01-01T00:00:00Z';
  assert.deepEqual(M.keyFlags({ expires_at: future }, now), { revoked: false, expired: false });
  assert.deepEqual(M.keyFlags({ expires_at: past }, now), { revoked: false, expired: true });
  assert.deepEqual(M.keyFlags({ revoked_at: past, expires_at: past }, now), { revoked: true, expired: true });
  assert.deepEqual(M.keyFlags({}, now), { revoked: false, expired: false });
  const k = { revoked_at: past, expires_at: past };
  assert.equal(M.keyStatusText(k, { revoked: true, expired: true }), 'revoked ' + fmtDate(past));
  assert.equal(M.keyStatusText(k, { revoked: false, expired: true }), 'expired');
  assert.equal(M.keyStatusText({}, { revoked: false, expired: false }), 'active');
  assert.equal(M.keyExpiresText(k, { expired: true }), fmtDate(past) + ' (expired)');
  assert.equal(M.keyExpiresText({ expires_at: future }, { expired: false }), fmtDate(future));
  assert.equal(M.keyExpiresText({}, { expired: false }), 'never');
});

test('the setup command offers only live keys created on this visit', () => {
  const keys = [{ id: 'a' }, { id: 'b', revoked_at: 'x' }, { id: 'c' }];
  assert.deepEqual(M.setupChoices(keys, new Map([['b', 'plx_b'], ['c', 'plx_c']])).map((k) => k.id), ['c']);
});

test('the invite line', () => {
  assert.equal(M.inviteText({ role: 'member' }), 'Invite link for a member:');
  const at = '2026-06-01T00:00:00Z';
  assert.equal(M.inviteText({ role: 'viewer', expires_at: at }), `Invite link for a viewer, valid until ${fmtDate(at)}:`);
});
