// The latency axis (src/format.js): it starts and ends at round latencies and is labelled at
// round values only (1 µs, 10 µs, 100 µs, 1 ms...), whatever the data's own range.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { formatRoundNs, latencyTicks, roundLatency } from '../src/format.js';

const axis = (low, high) => latencyTicks(roundLatency(low), roundLatency(high, true)).map(formatRoundNs);

test('an axis is labelled at round latencies, not at the data ends (10.8 ms..108 ms)', () => {
  assert.deepEqual(axis(10.8e6 / 1.05, 108e6 * 1.05), ['10 ms', '100 ms']);
  assert.deepEqual(axis(900, 5e9), ['1 µs', '100 µs', '10 ms', '1 s']);
  assert.deepEqual(axis(1, 1e9), ['1 ns', '100 ns', '10 µs', '1 ms', '100 ms']);
});

test('a narrow range still has two round labels or more', () => {
  assert.deepEqual(axis(10.3e3, 12.1e3), ['10 µs', '20 µs']);
  assert.deepEqual(axis(574, 620), ['500 ns', '1 µs']);
  assert.deepEqual(axis(2.2e3, 4.4e3), ['2 µs', '5 µs']);
});

test('round latencies: 1-2-5 steps below and above', () => {
  assert.equal(roundLatency(10.8e6), 10e6);
  assert.equal(roundLatency(10.8e6, true), 20e6);
  assert.equal(roundLatency(5000), 5000);
  assert.equal(roundLatency(5000, true), 5000);
  assert.equal(roundLatency(0.3), 0.2);
  assert.equal(formatRoundNs(2e6), '2 ms');
  assert.equal(formatRoundNs(1e9), '1 s');
});
