// The Explore page's logic (assets/pages/explore-model.js): the selection and the URL,
// time windows, query parameters, live points folded into rollup buckets.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadModule } from './load.mjs';

const M = await loadModule('assets/pages/explore-model.js');
const { Series } = await loadModule('assets/chart.js');

const T = 1_800_000_000_000;

test('datetime-local values are local time to the second', () => {
  for (const ms of [T, T + 999, 1_700_000_123_456]) {
    const v = M.toLocalInput(ms);
    assert.match(v, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d$/);
    assert.equal(Date.parse(v), Math.floor(ms / 1000) * 1000); // parsed back as local time
  }
});

test('sources: those asked for that exist, else the first online, else the first', () => {
  const sources = [{ source_id: 'a' }, { source_id: 'b', online: true }, { source_id: 'c', online: true }];
  assert.deepEqual([...M.initialSources(['c', 'zz', 'a'], sources)], ['c', 'a']);
  assert.deepEqual([...M.initialSources(['zz'], sources)], ['b']);
  assert.deepEqual([...M.initialSources([], [{ source_id: 'a' }, { source_id: 'b' }])], ['a']);
  assert.equal(M.initialSources([], []).size, 0);
});

test('metrics: the selected ones that exist, else the first six that are not vector fields', () => {
  const all = new Set(['accel', 'accel.x', 'accel.y', 'b', 'c', 'd', 'e', 'f', 'g', 'gyro.z']);
  const names = [...all].sort();
  assert.deepEqual([...M.pickMetrics(new Set(['c', 'gone']), names, all)], ['c']);
  assert.deepEqual([...M.pickMetrics(new Set(['gone']), names, all)], ['accel', 'b', 'c', 'd', 'e', 'f']);
  assert.deepEqual([...M.pickMetrics(new Set(), ['gyro.z'], new Set(['gyro.z']))], ['gyro.z']); // no vector beside it
});

test('time windows', () => {
  assert.deepEqual(M.timeWindow('abs', 1000, 2000, T), { start: 1000, end: 2000, relative: false });
  assert.deepEqual(M.timeWindow('5m', 0, 0, T), { start: T - 300000, end: T, relative: true, ms: 300000, last: '5m' });
  assert.equal(M.timeWindow('30d', 0, 0, T).ms, 30 * 86400e3);
});

test('the page URL keeps the selection, the interval unless auto, absolute times rounded', () => {
  const q = (o) => M.exploreQuery({ sources: ['a', 'b c'], metrics: new Set(['temp']), range: '1h', interval: 'auto', absStart: 0, absEnd: 0, ...o }).toString();
  assert.equal(q({}), 'source=a&source=b+c&metric=temp&range=1h');
  assert.equal(q({ range: 'abs', interval: '1m', absStart: 1000.4, absEnd: 2000.6 }), 'source=a&source=b+c&metric=temp&range=abs&interval=1m&start=1000&end=2001');
});

test('query parameters: last for a relative window, whole ms around an absolute one', () => {
  assert.equal(M.queryParams(['a', 'b'], 'auto', M.timeWindow('15m', 0, 0, T)).toString(), 'metrics=a%2Cb&interval=auto&last=15m');
  assert.equal(M.queryParams(['a'], 'raw', { start: 1000.7, end: 2000.2, relative: false }).toString(), 'metrics=a&interval=raw&start=1000&end=2001');
});

test('metrics a rollup lacks are asked again raw', () => {
  const params = new URLSearchParams('metrics=temp%2Cmode%2Cwave&interval=auto&last=1h');
  const p2 = M.rawRetry(params, { interval: '1m', series: { temp: {} } }, ['temp', 'mode', 'wave']);
  assert.equal(p2.toString(), 'metrics=mode%2Cwave&interval=raw&last=1h');
  assert.equal(params.get('interval'), 'auto'); // the first query's parameters stay
  assert.equal(M.rawRetry(params, { interval: 'raw', series: {} }, ['temp']), null);
  assert.equal(M.rawRetry(params, { interval: '1m', series: { temp: {} } }, ['temp']), null);
});

test('the status line', () => {
  assert.equal(M.infoText({ count: 12, interval: 'raw', ms: 3.6, truncated: false, follow: true }), '12 points in 4 ms · live · drag to zoom, double-click to reset');
  assert.equal(M.infoText({ count: 3, interval: '1m', ms: 10, truncated: true, follow: false }),
    '3 1m buckets in 10 ms · truncated at 10,000 rows: narrow the range or pick a coarser interval · drag to zoom, double-click to reset');
});

function rollup() {
  const s = new Series('temp', '#000');
  s.setData([T - 60000, T], [10, 20], [5, 15], [12, 25]); // avg, min, max of two 1-minute buckets
  return s;
}

test('a live point in the current bucket updates its running average, min and max', () => {
  const s = rollup();
  M.addLivePoint(s, 60000, T + 1000, 30);
  assert.equal(s.n, 2);
  assert.equal(s.v[1], 25); // the bucket's average counts as one point: (20 + 30) / 2
  assert.equal(s.mx[1], 30);
  M.addLivePoint(s, 60000, T + 2000, 1);
  assert.equal(s.v[1], (25 * 2 + 1) / 3);
  assert.equal(s.mn[1], 1);
  assert.equal(s.mx[1], 30);
});

test('a live point after the last bucket starts a new one; one before it is dropped', () => {
  const s = rollup();
  M.addLivePoint(s, 60000, T + 61000, 7);
  assert.deepEqual([s.n, s.t[2], s.v[2], s.mn[2], s.mx[2]], [3, T + 60000, 7, 7, 7]);
  M.addLivePoint(s, 60000, T - 30000, 99);
  assert.equal(s.n, 3);
  assert.equal(s.v[0], 10);
});

test('raw series and unknown bucket sizes take live points as they are', () => {
  const raw = new Series('temp', '#000');
  raw.setData([T], [1]);
  M.addLivePoint(raw, 60000, T + 5, 2);
  assert.deepEqual([raw.n, raw.t[1], raw.v[1]], [2, T + 5, 2]);
  const s = rollup();
  M.addLivePoint(s, M.BUCKET_MS['raw'], T + 5, 3);
  assert.deepEqual([s.n, s.t[2], s.v[2]], [3, T + 5, 3]);
});
