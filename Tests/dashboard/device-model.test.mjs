// The device page's logic (assets/pages/device-model.js): what the controls send, what
// their statuses read, which frames concern the page.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadModule } from './load.mjs';

const M = await loadModule('assets/pages/device-model.js');

test('start_stream fields: metrics trimmed, empty ones dropped, interval rounded to at least 1 ms', () => {
  // the frame is JSON of {type, source_id, ...fields}: the key order is part of what is sent
  assert.equal(JSON.stringify(M.streamFields(' temp, accel ,, ', '40.4')), '{"interval_ms":40,"metrics":["temp","accel"]}');
  assert.deepEqual(M.streamFields('', ''), { interval_ms: 100 });
  assert.deepEqual(M.streamFields(' , ', 'abc'), { interval_ms: 100 });
  assert.deepEqual(M.streamFields('x', '0'), { interval_ms: 100, metrics: ['x'] }); // 0 means the default
  assert.deepEqual(M.streamFields('x', '0.2'), { interval_ms: 1, metrics: ['x'] });
  assert.deepEqual(M.streamFields('x', '-5'), { interval_ms: 1, metrics: ['x'] });
});

test('start_session names the session only when a name was typed', () => {
  assert.deepEqual(M.sessionFields('  Run A '), { session_name: 'Run A' });
  assert.deepEqual(M.sessionFields('   '), {});
});

test('configure needs a sensor and a finite sample rate', () => {
  assert.deepEqual(M.configureFields(' IMU ', '50'), { sensor: 'IMU', config: { sample_rate: 50 } });
  assert.deepEqual(M.configureFields('IMU', '0'), { sensor: 'IMU', config: { sample_rate: 0 } });
  assert.equal(M.configureFields('  ', '50'), null);
  assert.equal(M.configureFields('IMU', ''), null);
  assert.equal(M.configureFields('IMU', 'abc'), null);
});

test('controls waiting 10 s or more leave the pending list, the newest first', () => {
  const a = { type: 'ping', at: 0 }, b = { type: 'configure', at: 500 }, c = { type: 'start_session', at: 5000 };
  const pending = [a, b, c];
  assert.deepEqual(M.takeExpired(pending, 10400), [a]);
  assert.deepEqual(pending, [b, c]);
  assert.deepEqual(M.takeExpired(pending, 20000), [c, b]);
  assert.deepEqual(pending, []);
  assert.equal(M.takeExpired([{ at: 0 }], 9999).length, 0);
  assert.equal(M.takeExpired([{ at: 0 }], 10000).length, 1); // 10 s exactly is too long
});

test('the status of a control nobody answered', () => {
  assert.deepEqual(M.timeoutStatus({ type: 'ping', sent: false }), ['no answer from the server', 'err']);
  assert.deepEqual(M.timeoutStatus({ type: 'ping', sent: true }), ['sent · no pong within 10 s', 'pending']);
  assert.deepEqual(M.timeoutStatus({ type: 'stop_session', sent: true }), ['stopped on the server · device did not confirm', 'pending']);
  // start_stream and stop_stream are confirmed by telemetry: their status stays
  assert.equal(M.timeoutStatus({ type: 'start_stream', sent: true }), null);
});

test('takePending takes the first control of the given types', () => {
  const p = [{ type: 'ping', n: 1 }, { type: 'configure', n: 2 }, { type: 'ping', n: 3 }];
  assert.equal(M.takePending(p, ['configure', 'ping']).n, 1);
  assert.equal(M.takePending(p, ['ping']).n, 3);
  assert.equal(M.takePending(p, ['ping']), null);
  assert.deepEqual(p.map((x) => x.n), [2]);
});

test('stop_stream: stopped after 2 s without telemetry, still streaming after 10 s', () => {
  assert.equal(M.stopVerdict(3000, 0, 1000), 'stopped'); // nothing since it was sent
  assert.equal(M.stopVerdict(4000, 2000, 1000), 'stopped'); // exactly 2 s of silence
  assert.equal(M.stopVerdict(3999, 2000, 1000), null);
  assert.equal(M.stopVerdict(11001, 11000, 1000), 'streaming');
  assert.equal(M.stopVerdict(11000, 10900, 1000), null); // 10 s exactly: still waiting
});

test('activity lines and round trips', () => {
  assert.equal(M.startStreamLog({ metrics: ['temp', 'accel'], interval_ms: 40 }), 'Start stream sent (temp, accel) every 40 ms');
  assert.equal(M.startStreamLog({}), 'Start stream sent');
  assert.equal(M.roundTrip({ at: 100 }, 50, 350), 250);
  assert.equal(M.roundTrip(null, 50, 350), 300); // a pong after the pending entry timed out
  assert.equal(M.roundTrip(null, 0, 350), null);
  assert.equal(M.rateText(0, 1000), '');
  assert.equal(M.rateText(250, 1250), '200 points/s');
});

test('frames for this device, and source-less errors only while a control waits', () => {
  assert.equal(M.concernsDevice({ type: 'pong', source_id: 'd1' }, 'd1', 0), true);
  assert.equal(M.concernsDevice({ type: 'pong', source_id: 'd2' }, 'd1', 3), false);
  assert.equal(M.concernsDevice({ type: 'error' }, 'd1', 1), true);
  assert.equal(M.concernsDevice({ type: 'error' }, 'd1', 0), false);
  assert.equal(M.concernsDevice({ type: 'error', source_id: 'd2' }, 'd1', 1), false);
});

test('a new chart card goes before the next name in order', () => {
  assert.equal(M.cardAfter(['temp', 'accel', 'mode'], 'mode'), 'temp');
  assert.equal(M.cardAfter(['temp', 'accel', 'mode'], 'accel'), 'mode');
  assert.equal(M.cardAfter(['temp', 'accel', 'mode'], 'temp'), undefined);
  assert.equal(M.cardAfter(new Map([['b', 1], ['a', 2]]).keys(), 'a'), 'b');
});

test('backfill draws non-empty series but not the fields stored beside a vector', () => {
  const series = {
    accel: { timestamp_ms: [1], value: [{ x: 1 }] }, 'accel.x': { timestamp_ms: [1], value: [1] },
    'zz.q': { timestamp_ms: [1], value: [5] }, empty: { timestamp_ms: [], value: [] }, none: { timestamp_ms: [] },
  };
  assert.deepEqual(M.backfillSeries(series).map(([m]) => m), ['accel', 'zz.q']);
  assert.deepEqual(M.backfillSeries(undefined), []);
  assert.equal(M.countBefore([1, 2, 3, 4], 3), 2);
  assert.equal(M.countBefore([1, 2], Infinity), 2); // an empty view takes everything
  assert.equal(M.countBefore([5], 5), 0);
});

test('the header line and the REC badge', () => {
  const now = Date.now();
  assert.equal(M.metaText({ platform: 'sim', agent_version: '1.0', last_seen_ms: now }, null), 'sim · agent 1.0 · last seen just now');
  assert.equal(M.metaText({ last_seen_ms: now - 125000 }, null), 'last seen 2 min ago');
  assert.equal(M.metaText(undefined, now - 30000), 'last seen 30 s ago');
  assert.equal(M.metaText(undefined, null), '');
  assert.deepEqual(M.recordingText({ session_id: 'S1', started: 1000 }, 66000), { elapsed: '1:05', name: 'S1', label: 'Recording S1, 1:05 elapsed' });
  assert.equal(M.recordingText({ session_id: 'S1', name: 'Run A', started: 0 }, 3723000).label, 'Recording Run A, 1:02:03 elapsed');
});
