// Unit tests of the dashboard's chart maths, with node's built-in runner (no npm):
//   node --test Tests/dashboard/
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadModule } from './load.mjs';

const { Series, StateSeries, fmtNum, fmtRel, classify } = await loadModule('assets/chart.js');

const T = 1_800_000_000_000; // ms, where 1e-9 no longer changes a double

function series(times, values) {
  const s = new Series('m', '#000');
  times.forEach((t, i) => s.push(t, values ? values[i] : i));
  return s;
}

test('atOrBefore finds the point exactly at the cursor (the value shown at T+0)', () => {
  const s = series([T, T + 1000, T + 2000]);
  assert.equal(s.atOrBefore(T), 0);
  assert.equal(s.atOrBefore(T + 1000), 1);
  assert.equal(s.atOrBefore(T + 2000), 2); // the last point at the session's end, not the second to last
  assert.equal(s.atOrBefore(T + 999.5), 0);
  assert.equal(s.atOrBefore(T - 1), -1);
  assert.equal(s.atOrBefore(T + 1e9), 2);
});

test('atOrBefore with an offset (sessions compared relative to their start)', () => {
  const s = series([0, 10, 20]);
  s.offset = T;
  assert.equal(s.atOrBefore(T + 10), 1);
  assert.equal(s.atOrBefore(T + 9.999), 0);
});

test('atOrBefore on an empty series, and with equal timestamps takes the last of them', () => {
  assert.equal(new Series('m', '#000').atOrBefore(T), -1);
  const s = series([T, T, T + 5]);
  assert.equal(s.atOrBefore(T), 1);
});

test('lowerBound and upperBound bracket equal times', () => {
  const s = series([T, T + 1, T + 1, T + 2]);
  assert.equal(s.lowerBound(T + 1), 1);
  assert.equal(s.upperBound(T + 1), 3);
  assert.equal(s.t[s.nearest(T + 1.4)], T + 1);
  assert.equal(s.nearest(T + 1.6), 3);
});

test('points pushed out of order are kept sorted', () => {
  const s = series([T + 2, T, T + 1], [2, 0, 1]);
  assert.deepEqual([...s.t.subarray(0, s.n)], [T, T + 1, T + 2]);
  assert.deepEqual([...s.v.subarray(0, s.n)], [0, 1, 2]);
});

test('state series: atOrBefore is inclusive too', () => {
  const s = new StateSeries('state');
  s.push(T, 'idle'); s.push(T + 1000, 'running');
  assert.equal(s.atOrBefore(T + 1000), 1);
  assert.equal(s.atOrBefore(T + 999), 0);
});

test('fmtNum is finite-safe', () => {
  for (const v of [NaN, Infinity, -Infinity]) assert.equal(typeof fmtNum(v), 'string');
  assert.equal(typeof fmtNum(72.5), 'string');
});

test('fmtNum: significant digits by magnitude, exponents for the very large and small', () => {
  assert.equal(fmtNum(0), '0.000');
  assert.equal(fmtNum(0.5), '0.500');
  assert.equal(fmtNum(72.5), '72.50');
  assert.equal(fmtNum(150.25), '150.3');
  assert.equal(fmtNum(-1234.4), '-1234');
  assert.equal(fmtNum(2e6), '2.00e+6');
  assert.equal(fmtNum(0.0001), '1.00e-4');
});

test('fmtRel: time from T+0 (playback, compare)', () => {
  assert.equal(fmtRel(0), 'T+0s');
  assert.equal(fmtRel(1500), 'T+1.50s');
  assert.equal(fmtRel(12500), 'T+12.5s');
  assert.equal(fmtRel(-2000), 'T-2s');
  assert.equal(fmtRel(75000), 'T+1:15');
  assert.equal(fmtRel(3600000), 'T+1h00');
});

test('classify picks the chart of a metric from its first value', () => {
  assert.equal(classify(1.5), 'number');
  assert.equal(classify('armed'), 'state');
  assert.equal(classify(false), 'state');
  assert.equal(classify(null), 'state');
  assert.equal(classify([1, 2, 3]), 'array');
  assert.equal(classify([1, 'a']), 'state');
  assert.equal(classify({ x: 1, y: -2 }), 'vector');
  assert.equal(classify({ x: NaN }), 'state');
  assert.equal(classify({ x: 'a' }), 'state');
  assert.equal(classify({}), 'state');
});

test('a series with maxPoints keeps the newest points', () => {
  const s = new Series('m', '#000', { capacity: 4, maxPoints: 4 });
  for (let i = 0; i < 10; i++) s.push(T + i, i);
  assert.deepEqual([...s.t.subarray(0, s.n)], [T + 6, T + 7, T + 8, T + 9]);
  assert.deepEqual([...s.v.subarray(0, s.n)], [6, 7, 8, 9]);
});

test('prepend puts older points before the first', () => {
  const s = series([T + 2, T + 3], [2, 3]);
  s.prepend([T, T + 1], [0, 1]);
  assert.deepEqual([...s.t.subarray(0, s.n)], [T, T + 1, T + 2, T + 3]);
  assert.deepEqual([...s.v.subarray(0, s.n)], [0, 1, 2, 3]);
  assert.equal(s.first, T);
  assert.equal(s.last, T + 3);
});
