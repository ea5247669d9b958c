// The page's capture window (src/capture_data.js): intervals kept and replaced by seq, bounded,
// merged per node and over time ranges exactly, heatmap cells adding up to the counts.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { CaptureData, HEATMAP_ROWS_PER_OCTAVE } from '../src/capture_data.js';
import { Sketch } from '../src/sketch.js';
import { kernelMapping } from './support.js';

const mapping = kernelMapping();

// A deterministic interval: node k's function f has calls at a few bins that depend on seq.
function interval(seq, { nodes = ['a@h1', 'b@h2'], functions = ['m:f/1', 'm:g/2'], gap = 0 } = {}) {
  return {
    seq, end_ms: 1_700_000_000_000 + (seq + gap) * 1000, interval_ms: 1000,
    nodes: nodes.map((node, k) => ({
      node, host: node.split('@')[1], lost: k,
      functions: functions.map((name, j) => {
        const bins = [[640 + ((seq * 7 + k * 13 + j) % 300), 1 + k], [1200 + (seq % 50), 2 + j]];
        return { name, calls: 3 + k + j, exceptions: j, wall: { zero: k, bins }, cpu: { zero: 0, bins: bins.slice(0, 1) } };
      }),
    })),
  };
}

function expectedSketch(events, fn, kind, node) {
  const sketch = new Sketch(mapping);
  for (const e of events) {
    for (const n of e.nodes) {
      if (node && n.node !== node) continue;
      for (const f of n.functions) if (f.name === fn) sketch.addBins(f[kind]);
    }
  }
  return sketch;
}

test('the window keeps the last intervals by seq; a replay replaces, an old one is refused', () => {
  const data = new CaptureData(mapping, { keep: 10 });
  for (let seq = 1; seq <= 25; ++seq) data.addInterval(interval(seq));
  assert.equal(data.intervals.size, 10);
  assert.equal(data.minSeq, 16);
  assert.equal(data.maxSeq, 25);
  assert.equal(data.addInterval(interval(15)), false);
  assert.equal(data.addInterval(interval(20)), true);  // replayed after a reconnect
  assert.equal(data.intervals.size, 10);
  assert.equal(data.rangeCounts('m:f/1').calls, 10 * (3 + 4));
  const bytes = data.bytes();
  for (let seq = 26; seq <= 200; ++seq) data.addInterval(interval(seq));
  assert.ok(data.bytes() <= bytes * 1.01, 'memory stays bounded');
  assert.ok(data.summaries.size <= 10);
});

test('range sketches and counts merge exactly the intervals in the range, per node too', () => {
  const data = new CaptureData(mapping);
  const events = [];
  for (let seq = 1; seq <= 60; ++seq) {
    events.push(interval(seq));
    data.addInterval(events[events.length - 1]);
  }
  const t = (seq) => (1_700_000_000_000 + seq * 1000) / 1000;
  const inRange = events.filter((e) => e.seq > 10 && e.seq <= 30);
  for (const kind of ['wall', 'cpu']) {
    assert.deepEqual(data.rangeSketch('m:g/2', kind, t(10), t(30)).bins(), expectedSketch(inRange, 'm:g/2', kind).bins());
    assert.deepEqual(data.rangeSketch('m:g/2', kind).bins(), expectedSketch(events, 'm:g/2', kind).bins());
  }
  const a = expectedSketch(inRange, 'm:f/1', 'wall', 'a@h1');
  assert.deepEqual(data.rangeSketch('m:f/1', 'wall', t(10), t(30), 'a@h1').bins(), a.bins());
  assert.deepEqual(data.rangeCounts('m:f/1', t(10), t(30)), { calls: 20 * 7, exceptions: 0, lost: 20, intervals: 20 });
  const perNode = data.perNode('m:f/1', t(10), t(30));
  assert.deepEqual(perNode.map((n) => [n.node, n.host, n.calls]), [['a@h1', 'h1', 60], ['b@h2', 'h2', 80]]);
  assert.equal(perNode[0].p99, a.quantile(0.99));
  data.setNodeFilter('b@h2');
  assert.equal(data.rangeCounts('m:f/1').calls, 60 * 4);
  assert.deepEqual(data.rangeSketch('m:f/1', 'wall').bins(), expectedSketch(events, 'm:f/1', 'wall', 'b@h2').bins());
});

test('series: one point per interval, quantiles of that interval, a null at a gap', () => {
  const data = new CaptureData(mapping);
  data.addInterval(interval(1));
  data.addInterval(interval(2));
  data.addInterval(interval(5));
  const s = data.series('m:f/1');
  assert.equal(s.t.length, 4);
  assert.deepEqual(s.callsPerSecond, [7, 7, null, 7]);
  const one = expectedSketch([interval(2)], 'm:f/1', 'wall');
  assert.equal(s.wall.p99[1], one.quantile(0.99));
  assert.equal(s.wall.max[1], one.max());
  assert.equal(s.cpu.p50[2], null);
  assert.equal(data.series('m:none/0').wall.p50[0], null);
});

test('heatmap cells add up to every bin count, in the row of its bucket', () => {
  const data = new CaptureData(mapping);
  const events = [];
  for (let seq = 1; seq <= 30; ++seq) {
    events.push(interval(seq));
    data.addInterval(events[events.length - 1]);
  }
  const map = data.heatmap('m:f/1', 'wall');
  const total = map.cells.reduce((a, b) => a + b, 0);
  const sketch = expectedSketch(events, 'm:f/1', 'wall');
  assert.equal(total, sketch.count() - sketch.zero);
  assert.equal(map.columns, 30);
  const binsPerRow = 64 / HEATMAP_ROWS_PER_OCTAVE;
  assert.equal(map.rowMin, Math.floor(sketch.minIndex / binsPerRow));
  assert.equal(map.rowMax, Math.floor(sketch.maxIndex / binsPerRow));
  assert.equal(map.rowHigh(map.rowMin), map.rowLow(map.rowMin + 1));
  assert.equal(data.heatmap('m:none/0', 'wall'), null);
});

test('a heatmap column stays the same object until its interval is replaced (the chart repaints only those that change)', () => {
  const data = new CaptureData(mapping, { keep: 10 });
  for (let seq = 1; seq <= 12; ++seq) data.addInterval(interval(seq));
  const before = data.heatmapColumns('m:f/1', 'wall');
  assert.equal(before.firstSeq, 3);
  assert.equal(before.columns, 10);
  assert.equal(before.keep, 10);
  data.addInterval(interval(13));
  data.addInterval(interval(8, { functions: ['m:f/1'] }));  // a replay replaces seq 8
  const after = data.heatmapColumns('m:f/1', 'wall');
  assert.equal(after.firstSeq, 4);
  for (let seq = 4; seq <= 12; ++seq) {
    if (seq === 8) assert.notEqual(after.column(seq), before.column(seq));
    else assert.equal(after.column(seq), before.column(seq), `seq ${seq}`);
  }
  assert.equal(before.column(13), undefined);
  assert.ok(after.column(13).row.length);
  assert.equal(after.maxCount, Math.max(...[...Array(10).keys()].map((c) => after.column(4 + c).max)));
});
