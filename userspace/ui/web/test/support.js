// Shared by the page's unit tests: the mapping from sketch/bucket_index.h, and the C++ fixture
// tool's output (ORION_UI_SKETCH_FIXTURE names the tool; ctest sets it).
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

import { KernelMapping, parseBucketHeader } from '../src/sketch.js';

export function kernelMapping() {
  const header = readFileSync(new URL('../../../../sketch/bucket_index.h', import.meta.url), 'utf8');
  return new KernelMapping(parseBucketHeader(header));
}

export function fixtureTool() {
  const tool = process.env.ORION_UI_SKETCH_FIXTURE;
  if (!tool) {
    throw new Error('ORION_UI_SKETCH_FIXTURE is not set: run through ctest (-R ui.web_unit_tests), ' +
                    'or set it to build/tests/unit/ui/ui_sketch_fixture_tool');
  }
  return tool;
}

let fixture;
export function cppFixture() {
  fixture ??= JSON.parse(execFileSync(fixtureTool(), { encoding: 'utf8', maxBuffer: 256 << 20 }));
  return fixture;
}
