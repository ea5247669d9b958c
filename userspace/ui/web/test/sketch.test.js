// The page's sketch code (src/sketch.js) against the C++ library: the same bucket index for
// every integer and double the C++ fixture tool (tests/unit/ui/sketch_fixture_tool.cc) tried,
// the same lower bound and value of every bin, and, for sketches merged from interval parts, the
// same bins, count, max and quantiles, all compared exactly (===).
//
//   ORION_UI_SKETCH_FIXTURE=build/tests/unit/ui/ui_sketch_fixture_tool node --test test/
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { KernelMapping, QUANTILES, Sketch, SparseBins, parseBucketHeader, summarize } from '../src/sketch.js';
import { encodeSketch } from '../src/export.js';
import { kernelMapping, fixtureTool, cppFixture } from './support.js';

const mapping = kernelMapping();
const fixture = cppFixture();

test('gamma and the relative accuracy are the C++ mapping\'s', () => {
  assert.equal(mapping.gamma, fixture.gamma);
  assert.equal(mapping.relativeAccuracy, fixture.relativeAccuracy);
  assert.equal(mapping.relativeAccuracy.toFixed(6), '0.005415');
});

test('the bucket index of every integer is orion_bucket_exact_index', () => {
  assert.ok(fixture.integers.length > 20000);
  for (const [text, index] of fixture.integers) {
    const v = BigInt(text);
    assert.equal(mapping.index(v), index, `index(${text})`);
    if (v <= BigInt(Number.MAX_SAFE_INTEGER)) assert.equal(mapping.index(Number(v)), index, `index(${text})`);
  }
});

test('the bucket index of every double is ExponentialMapping::index(double)', () => {
  assert.ok(fixture.doubles.length > 5000);
  for (const [v, index] of fixture.doubles) assert.equal(mapping.indexOfDouble(v), index, `index(${v})`);
});

test('every bin\'s lower bound and value are the C++ ones, bit for bit', () => {
  for (const [i, lower, value] of fixture.bins) {
    assert.equal(mapping.lowerBound(i), lower, `lower_bound(${i})`);
    assert.equal(mapping.value(i), value, `value(${i})`);
  }
});

test('merging interval parts gives the C++ merge\'s bins, count, max and quantiles', () => {
  for (const [n, expected] of fixture.sketches.entries()) {
    const merged = new Sketch(mapping);
    for (const part of expected.parts) {
      const one = new Sketch(mapping);
      one.addBins(new SparseBins(part));  // the way the page keeps an interval
      merged.merge(one);
    }
    assert.deepEqual(merged.bins(), expected.bins, `sketch ${n}: bins`);
    assert.equal(merged.zero, expected.zero, `sketch ${n}: zero count`);
    assert.equal(merged.count(), expected.count, `sketch ${n}: count`);
    if (expected.count > 0) assert.equal(merged.max(), expected.max, `sketch ${n}: max`);
    for (const [q, v] of expected.quantiles) assert.equal(merged.quantile(q), v, `sketch ${n}: quantile(${q})`);
    const summary = summarize(merged);  // the one-pass version the tables use
    for (const { key, q } of QUANTILES) {
      assert.equal(summary[key], expected.quantiles.find(([x]) => x === q)[1], `sketch ${n}: summarize ${key}`);
    }
    const shrunk = new Sketch(mapping);  // a window that dropped its first part
    for (const part of expected.parts) shrunk.addBins(new SparseBins(part));
    shrunk.subtractBins(new SparseBins(expected.parts[0]));
    const rest = new Sketch(mapping);
    for (const part of expected.parts.slice(1)) rest.addBins(part);
    assert.deepEqual(shrunk.bins(), rest.bins(), `sketch ${n}: subtract`);
    assert.deepEqual(summarize(shrunk), summarize(rest), `sketch ${n}: subtract`);
    assert.deepEqual([shrunk.minIndex, shrunk.maxIndex], [rest.minIndex, rest.maxIndex]);
    const direct = new Sketch(mapping);
    for (const part of expected.parts) direct.addBins(part);  // the wire form, added directly
    assert.deepEqual(direct.bins(), expected.bins);
  }
});

test('an empty sketch has no quantile, a bad q or bin is an error', () => {
  const sketch = new Sketch(mapping);
  assert.ok(Number.isNaN(sketch.quantile(0.5)));
  assert.ok(Number.isNaN(summarize(sketch).p99));
  assert.throws(() => sketch.quantile(1.5), /quantile must be in \[0, 1\]/);
  assert.throws(() => sketch.add(4096, 1), /outside/);
  assert.throws(() => new SparseBins({ bins: [[-1, 1]] }), /outside/);
  const wide = new SparseBins({ zero: 1, bins: [[10, 2 ** 40], [20, 3]] });  // a count past u32
  assert.deepEqual([...wide.count], [2 ** 40, 3]);
  assert.equal(wide.total, 2 ** 40 + 4);
});

test('clear() empties a sketch for reuse', () => {
  const sketch = new Sketch(mapping);
  sketch.addBins({ zero: 2, bins: [[700, 5], [900, 1]] });
  sketch.clear();
  assert.equal(sketch.count(), 0);
  assert.deepEqual(sketch.bins(), []);
  sketch.add(640, 1);
  assert.equal(sketch.quantile(0.5), mapping.value(640));
});

test('a header without the table is refused', () => {
  assert.throws(() => parseBucketHeader('#define ORION_BUCKET_SUBBUCKET_BITS 6'), /not found/);
  assert.ok(new KernelMapping(parseBucketHeader(readFileSync(new URL('../../../../sketch/bucket_index.h', import.meta.url), 'utf8'))));
});

test('an exported sketch decodes in C++ with the same bins and quantiles', () => {
  const dir = mkdtempSync(join(tmpdir(), 'orion-ui-export-'));
  for (const [n, expected] of fixture.sketches.entries()) {
    const sketch = new Sketch(mapping);
    for (const part of expected.parts) sketch.addBins(part);
    const file = join(dir, `s${n}.pb`);
    writeFileSync(file, encodeSketch(sketch));
    const decoded = JSON.parse(execFileSync(fixtureTool(), ['decode', file], { encoding: 'utf8' }));
    assert.deepEqual(decoded.bins, expected.bins, `sketch ${n}: bins`);
    assert.equal(decoded.zero, expected.zero);
    assert.equal(decoded.count, expected.count);
    assert.deepEqual(decoded.quantiles, expected.quantiles, `sketch ${n}: quantiles`);
  }
  rmSync(dir, { recursive: true, force: true });
});
