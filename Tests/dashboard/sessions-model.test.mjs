// The sessions pages' logic (assets/pages/sessions-model.js): list filters, loading every
// point of a session page by page, playback positions, what two sessions can compare.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadModule } from './load.mjs';

const M = await loadModule('assets/pages/sessions-model.js');

const T = 1_800_000_000_000;

test('list filters as a query string', () => {
  assert.equal(M.sessionsQuery('rig 1', 'active'), 'source_id=rig+1&status=active');
  assert.equal(M.sessionsQuery('', 'aborted'), 'status=aborted');
  assert.equal(M.sessionsQuery('', ''), '');
});

test('duration runs to the end, or to now while recording', () => {
  const s = { started_at: new Date(T).toISOString(), ended_at: new Date(T + 95000).toISOString() };
  assert.equal(M.duration(s), '1:35');
  assert.equal(M.duration({ started_at: new Date(T).toISOString() }, T + 3723000), '1:02:03');
});

test('the limiter runs at most n at once, in the order given', async () => {
  const limit = M.limiter(2);
  let active = 0, most = 0;
  const started = [], gates = [];
  const jobs = [0, 1, 2, 3, 4].map((i) => limit(() => {
    started.push(i); active++; most = Math.max(most, active);
    return new Promise((ok) => gates.push(() => { active--; ok(i * 10); }));
  }));
  assert.deepEqual(started, [0, 1]);
  while (gates.length) { gates.shift()(); await new Promise((r) => setTimeout(r, 0)); }
  assert.deepEqual(await Promise.all(jobs), [0, 10, 20, 30, 40]);
  assert.deepEqual(started, [0, 1, 2, 3, 4]);
  assert.equal(most, 2);
});

test('the limiter passes a failure on and goes on with the next', async () => {
  const limit = M.limiter(1);
  const a = limit(() => Promise.reject(new Error('boom')));
  const b = limit(() => Promise.resolve('next'));
  await assert.rejects(a, /boom/);
  assert.equal(await b, 'next');
});

test('chunks: one per 40,000 points of a metric, 1 to 16', () => {
  assert.equal(M.chunkCount(0, 3), 1);
  assert.equal(M.chunkCount(undefined, 3), 1);
  assert.equal(M.chunkCount(80000, 2), 1);
  assert.equal(M.chunkCount(200000, 4), 2);
  assert.equal(M.chunkCount(1e9, 1), 16);
  assert.equal(M.chunkCount(100, 0), 1);
  assert.deepEqual(M.chunkRanges(T + 0.5, T + 100.5, 1), [[T + 0.5, T + 100.5]]);
  assert.deepEqual(M.chunkRanges(T, T + 10, 3), [[T, T + 3], [T + 3, T + 6], [T + 6, T + 10]]);
});

test('the next page starts after the last point, also near 1.8e12 ms', () => {
  const s = M.nextPageStart([T - 5, T]);
  assert.ok(s > T, String(s));
  assert.ok(s - T < 0.01);
});

// A fake GET of /api/sessions/<id>/data: pages of at most `cap` points in [start, end).
function fakeData(points, cap, log) {
  return async (url) => {
    const q = new URL(url, 'http://x').searchParams, m = q.get('metrics'), a = +q.get('start'), b = +q.get('end');
    log.push([m, a, b]);
    const ts = (points[m] || []).filter((t) => t >= a && t < b);
    return { truncated: ts.length > cap, series: ts.length ? { [m]: { timestamp_ms: ts.slice(0, cap), value: ts.slice(0, cap).map((t) => t - T) } } : {} };
  };
}
const times = (n, step = 10) => Array.from({ length: n }, (_, i) => T + i * step);

test('loadSessionData pages past the row cap and returns every point', async () => {
  const log = [], progress = [];
  const points = { temp: times(25), mode: times(3) };
  const summary = { first_timestamp_ms: T, last_timestamp_ms: T + 240, point_count: 28 };
  const out = await M.loadSessionData(fakeData(points, 10, log), 'S 1', summary, ['temp', 'mode'], (n) => progress.push(n));
  assert.deepEqual(out.temp.timestamp_ms, points.temp);
  assert.deepEqual(out.temp.value, points.temp.map((t) => t - T));
  assert.deepEqual(out.mode.timestamp_ms, points.mode);
  assert.equal(log.filter(([m]) => m === 'temp').length, 3); // 10 + 10 + 5
  assert.equal(progress.at(-1), 28);
  assert.deepEqual(log[0], ['temp', T, T + 241]); // the end is exclusive: one past the last point
});

test('loadSessionData: long sessions in chunks, delivered to onPage in time order', async () => {
  const log = [], pages = [];
  const points = { temp: times(100, 1000) };
  const summary = { first_timestamp_ms: T, last_timestamp_ms: T + 99000, point_count: 120000 }; // 3 chunks
  const out = await M.loadSessionData(fakeData(points, 7, log), 'S1', summary, ['temp'], null, (m, ts) => pages.push(...ts));
  assert.deepEqual(out, {});
  assert.deepEqual(pages, points.temp);
  assert.deepEqual([...new Set(log.map(([, , b]) => b))], [T + 33000, T + 66000, T + 99001]);
});

test('loadSessionData: nothing recorded, or the page left', async () => {
  const log = [];
  assert.deepEqual(await M.loadSessionData(fakeData({}, 10, log), 'S1', { point_count: 0 }, ['temp']), {});
  assert.equal(log.length, 0);
  const out = await M.loadSessionData(fakeData({ temp: times(50) }, 10, log), 'S1', { first_timestamp_ms: T, last_timestamp_ms: T + 490 }, ['temp'], null, null, () => log.length < 2);
  assert.equal(out.temp.timestamp_ms.length, 20);
});

test('vector fields stored beside their vector are not charted alone', () => {
  assert.deepEqual(M.primaryMetrics(['accel', 'accel.x', 'temp', 'temp.c.d', '.odd', 'a.b', 'a.b.c']), ['accel', 'temp', 'temp.c.d', '.odd', 'a.b']);
  const has = (m) => m === 'accel';
  assert.equal(M.isFieldOf('accel.y', has), true);
  assert.equal(M.isFieldOf('accel', has), false);
  assert.equal(M.isFieldOf('gyro.y', has), false);
});

test('live points of an active session', () => {
  assert.equal(M.inSession({ session_id: 'S1' }, 'S1', null), true);
  assert.equal(M.inSession({ session_id: 'S2' }, 'S1', 'S1'), false);
  assert.equal(M.inSession({}, 'S1', 'S1'), true); // untagged while the device records it
  assert.equal(M.inSession({}, 'S1', undefined), false);
});

test('playback: the slider, the time readout and the range', () => {
  assert.equal(M.scrubValue(T + 2500, T, T + 10000), 2500);
  assert.equal(M.scrubValue(T + 10000, T, T + 10000), 10000);
  assert.equal(M.scrubTime('5000', T, T + 10000), T + 5000);
  assert.equal(M.clampTime(T - 1, T, T + 10), T);
  assert.equal(M.clampTime(T + 11, T, T + 10), T + 10);
  assert.deepEqual(M.fullRange(0, 1000), [0, 1010]);
  assert.deepEqual(M.positionText(T + 1500, T, T + 10000), { time: 'T+1.50s / T+10s', valuetext: 'T+1.50s of T+10s' });
  assert.equal(M.positionText(T + 75000, T, T + 3600000).time, 'T+1:15 / T+1h00');
});

test('compare: metrics both have, numeric in both', () => {
  assert.deepEqual(M.commonMetrics(['temp', 'mode', 'x'], ['mode', 'temp', 'y']), ['temp', 'mode']);
  const num = { value: [1, 2] }, str = { value: ['a'] }, none = { value: [] };
  assert.equal(M.comparable(num, num), true);
  assert.equal(M.comparable(num, str), false);
  assert.equal(M.comparable(str, num), false);
  assert.equal(M.comparable(none, num), false);
  assert.equal(M.comparable(undefined, num), false);
});
