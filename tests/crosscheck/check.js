#!/usr/bin/env node
// Cross-check of Orion's DDSketch protobufs with DataDog's @datadog/sketches-js (ctest
// sketch.crosscheck_sketches_js):
//   1. sketches written by Orion decode in sketches-js with the same count and the same count in
//      every bin; sketches-js' quantiles are Orion's divided by gamma (it reads bin k as
//      (gamma^(k-1), gamma^k], sketches-go/-java and Orion as [gamma^k, gamma^(k+1)));
//   2. the sketch printed by `orion sketch summarize --json` decodes the same way;
//   3. sketches written by sketches-js decode in Orion with the same bins (and quantiles times
//      gamma);
//   4. an Orion sketch re-encoded by sketches-js decodes in Orion to the original bins.
//
//   node tests/crosscheck/check.js TOOL ORION
// TOOL is the sketch_crosscheck_tool binary, ORION the orion binary.
'use strict';

const fs = require('fs');
const os = require('os');
const path = require('path');
const { execFileSync } = require('child_process');

function requireOrExplain(name) {
  try {
    return require(name);
  } catch (e) {
    console.error(`check.js: cannot load ${name} (${e.code}): tests/crosscheck/node_modules is ` +
                  'missing or incomplete; run scripts/setup.sh (it runs ' +
                  '`npm ci --prefix tests/crosscheck`)');
    process.exit(1);
  }
}

const { DDSketch } = requireOrExplain('@datadog/sketches-js');
requireOrExplain('protobufjs');

const [tool, orion] = process.argv.slice(2);
if (!tool || !orion) {
  console.error('usage: node check.js SKETCH_CROSSCHECK_TOOL ORION');
  process.exit(2);
}

let failures = 0;
let checks = 0;
function check(condition, what) {
  checks++;
  if (!condition) {
    failures++;
    console.error(`FAIL: ${what}`);
  }
}
function close(a, b, relative) {
  return a === b || Math.abs(a - b) <= relative * Math.max(Math.abs(a), Math.abs(b));
}

// Non-empty bins of a sketches-js DenseStore, as a Map index -> count.
function jsBins(store) {
  const bins = new Map();
  store.bins.forEach((count, i) => {
    if (count !== 0) bins.set(i + store.offset, count);
  });
  return bins;
}
function orionBins(pairs) {
  return new Map(pairs.map(([index, count]) => [index, count]));
}
function sameBins(a, b) {
  if (a.size !== b.size) return false;
  for (const [index, count] of a) if (b.get(index) !== count) return false;
  return true;
}

// sketches-js' reading of an Orion sketch, compared with what Orion knows of it.
function checkOrionSketchInJs(name, bytes, orionView) {
  const sketch = DDSketch.fromProto(bytes);
  const gamma = orionView.gamma;
  check(close(sketch.mapping.gamma, gamma, 1e-12), `${name}: gamma ${sketch.mapping.gamma}`);
  check(sketch.count === orionView.count, `${name}: count ${sketch.count} != ${orionView.count}`);
  check(sketch.zeroCount === orionView.zero, `${name}: zero count`);
  check(sameBins(jsBins(sketch.store), orionBins(orionView.positive)), `${name}: positive bins`);
  check(sameBins(jsBins(sketch.negativeStore), orionBins(orionView.negative)),
        `${name}: negative bins`);
  for (const [q, orionValue] of orionView.quantiles) {
    const jsValue = sketch.getValueAtQuantile(q);
    check(close(jsValue * gamma, orionValue, 1e-9),
          `${name}: q=${q}: sketches-js ${jsValue} * gamma != Orion ${orionValue}`);
  }
  // What that one-bucket shift costs: sketches-js' own estimates stay within
  // 1 - 2/(gamma(1+gamma)) of the exact quantiles (1.6 % for gamma = 2^(1/64)).
  if (orionView.exact) {
    const bound = 1 - 2 / (gamma * (1 + gamma));
    for (const [q, exact] of orionView.exact) {
      const jsValue = sketch.getValueAtQuantile(q);
      check(Math.abs(jsValue - exact) <= bound * Math.abs(exact) * (1 + 1e-9),
            `${name}: q=${q}: sketches-js ${jsValue} vs exact ${exact}`);
    }
  }
  return sketch;
}

function readWithOrion(file) {
  return JSON.parse(execFileSync(tool, ['read', file], { encoding: 'utf8' }));
}

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'orion-crosscheck-'));
try {
  // 1. Orion -> sketches-js, and 4. back.
  execFileSync(tool, ['write', dir]);
  for (const name of ['kernel_latencies', 'kernel_mixed', 'kernel_spread', 'logarithmic_1pct']) {
    const bytes = fs.readFileSync(path.join(dir, `${name}.pb`));
    const orionView = JSON.parse(fs.readFileSync(path.join(dir, `${name}.json`), 'utf8'));
    const sketch = checkOrionSketchInJs(name, bytes, orionView);

    const reencoded = path.join(dir, `${name}.js.pb`);
    fs.writeFileSync(reencoded, sketch.toProto());
    const back = readWithOrion(reencoded);
    check(back.kernel === orionView.kernel, `${name}: mapping kind after sketches-js re-encoding`);
    check(sameBins(orionBins(back.positive), orionBins(orionView.positive)) &&
          sameBins(orionBins(back.negative), orionBins(orionView.negative)) &&
          back.zero === orionView.zero, `${name}: bins after sketches-js re-encoding`);
  }

  // 2. `orion sketch summarize --json` -> sketches-js.
  const numbers = [];
  for (let i = 1; i <= 2000; i++) numbers.push(String((i * 7919) % 100003 + 1));
  const summary = JSON.parse(execFileSync(orion, ['sketch', 'summarize', '--json'],
                                          { input: numbers.join('\n') + '\n', encoding: 'utf8' }));
  const fromCli = DDSketch.fromProto(Buffer.from(summary.sketch, 'base64'));
  check(fromCli.count === summary.count, `cli: count ${fromCli.count} != ${summary.count}`);
  for (const [key, q] of [['p50', 0.5], ['p90', 0.9], ['p99', 0.99], ['p999', 0.999]]) {
    check(close(fromCli.getValueAtQuantile(q) * fromCli.mapping.gamma, summary[key], 1e-9),
          `cli: ${key}`);
  }

  // 3. sketches-js -> Orion.
  let seed = 12345;
  const next = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
  const jsSketch = new DDSketch({ relativeAccuracy: 0.01 });
  for (let i = 0; i < 10000; i++) {
    const magnitude = Math.exp(Math.log(1e5) + 3 * (next() - 0.5));
    const u = next();
    jsSketch.accept(u < 0.05 ? 0 : u < 0.3 ? -magnitude : magnitude);
  }
  const jsFile = path.join(dir, 'from_js.pb');
  fs.writeFileSync(jsFile, jsSketch.toProto());
  const inOrion = readWithOrion(jsFile);
  check(!inOrion.kernel && inOrion.interpolation === 0, 'from_js: a logarithmic mapping');
  check(close(inOrion.gamma, jsSketch.mapping.gamma, 1e-15), 'from_js: gamma');
  check(inOrion.count === jsSketch.count && inOrion.zero === jsSketch.zeroCount, 'from_js: counts');
  check(sameBins(orionBins(inOrion.positive), jsBins(jsSketch.store)), 'from_js: positive bins');
  check(sameBins(orionBins(inOrion.negative), jsBins(jsSketch.negativeStore)),
        'from_js: negative bins');
  for (const [q, orionValue] of inOrion.quantiles) {
    check(close(jsSketch.getValueAtQuantile(q) * jsSketch.mapping.gamma, orionValue, 1e-9),
          `from_js: q=${q}`);
  }
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
}

console.log(`${checks - failures} passed, ${failures} failed`);
process.exit(failures === 0 ? 0 : 1);
