// The devices list's logic (assets/pages/devices-model.js): merging reports about a
// device, filtering and ordering, the text of its cells.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadModule } from './load.mjs';

const M = await loadModule('assets/pages/devices-model.js');

test('a report replaces the fields it has and keeps the others', () => {
  const devices = new Map();
  M.mergeDevice(devices, { source_id: 'rig', platform: 'linux', agent_version: '1.0', last_seen_ms: 5, online: true });
  M.mergeDevice(devices, { source_id: 'rig', platform: null, agent_version: '1.1', status: 'online', extra: 1 });
  assert.deepEqual(devices.get('rig'), { source_id: 'rig', platform: 'linux', agent_version: '1.1', last_seen_ms: 5, online: true });
  M.mergeDevice(devices, { source_id: 'rig', online: false });
  assert.equal(devices.get('rig').online, false);
  assert.equal(devices.size, 1);
});

test('the list: filtered by name or platform, online first, then by name', () => {
  const devices = new Map();
  for (const d of [{ source_id: 'zeta', online: true }, { source_id: 'Alpha', online: false, platform: 'Pi' }, { source_id: 'beta', online: false }, { source_id: 'gamma', online: true, platform: 'pi zero' }]) M.mergeDevice(devices, d);
  assert.deepEqual(M.visibleDevices(devices, '').map((d) => d.source_id), ['gamma', 'zeta', 'Alpha', 'beta']);
  assert.deepEqual(M.visibleDevices(devices, '  PI ').map((d) => d.source_id), ['gamma', 'Alpha']);
  assert.deepEqual(M.visibleDevices(devices, 'ta').map((d) => d.source_id), ['zeta', 'beta']);
  assert.equal(M.countText(devices), '4 total · 2 online');
});

test('sensors and last seen', () => {
  assert.equal(M.sensorText([{ name: 'IMU' }, { id: 'x1' }, { a: 1 }, 'raw', 7]), 'IMU, x1, {"a":1}, raw, 7');
  assert.equal(M.sensorText([]), '—');
  assert.equal(M.sensorText(undefined), '—');
  const now = Date.now();
  assert.equal(M.lastSeenText({ online: true, last_seen_ms: now - 4000 }, now), 'just now');
  assert.equal(M.lastSeenText({ online: true, last_seen_ms: now - 3600e3 }, now), '1 h ago');
  assert.equal(M.lastSeenText({ online: false }, now), 'never');
});
