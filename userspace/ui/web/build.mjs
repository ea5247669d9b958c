// Bundles the page into one HTML file with its script and styles inline (the only file
// `orion ui` serves: userspace/ui/embedded_assets.h). CMake runs it (userspace/ui/CMakeLists.txt):
//
//   node build.mjs OUT.html
//
// sketch/bucket_index.h is bundled as text: the page parses its boundary table (src/mapping.js).
import * as esbuild from 'esbuild';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const out = process.argv[2];
if (!out) {
  console.error('usage: node build.mjs OUT.html');
  process.exit(2);
}

const result = await esbuild.build({
  entryPoints: [join(here, 'src/main.js')],
  bundle: true,
  minify: true,
  format: 'iife',
  target: 'es2020',
  loader: { '.h': 'text' },
  outdir: 'bundle',
  write: false,
  logLevel: 'warning',
  legalComments: 'inline',
});
const text = (ext) => result.outputFiles.filter((f) => f.path.endsWith(ext)).map((f) => f.text).join('\n');
// Neither may close its element early.
const script = text('.js').replace(/<\/(script)/gi, '<\\/$1');
const style = text('.css').replace(/<\/(style)/gi, '<\\/$1');
const template = readFileSync(join(here, 'src/index.html'), 'utf8');
const page = template
  .replace('/*STYLE*/', () => style)
  .replace('/*SCRIPT*/', () => script);
mkdirSync(dirname(out), { recursive: true });
writeFileSync(out, page);
console.log(`${out}: ${page.length} bytes`);
