// Drives Debian's chromium (headless, through playwright-core from userspace/ui/web) for the
// browser tests and the UI benchmark: one JSON command per line on stdin, one JSON answer per
// line on stdout ({"ok": true, ...} or {"ok": false, "error": "..."}). It reads what a person
// sees on the page: the texts of the tables and notices, and the pixels of the charts.
//
//   node tests/ui/browser_driver.mjs
//   > {"op": "goto", "url": "http://127.0.0.1:7070/?token=..."}
//   < {"ok": true, "status": 200, "title": "Orion console"}
//
// Commands (see run() below): goto, typeQuery, key, fill, select, start, waitFor, capture, text, waitText,
// selectRange, click, download, waitGone, api, stats, heap, processMemory, screenshot, close.
import { createInterface } from 'node:readline';
import { createRequire } from 'node:module';
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const require = createRequire(new URL('../../userspace/ui/web/package.json', import.meta.url));
const { chromium } = require('playwright-core');

const CHROMIUM = process.env.ORION_CHROMIUM || '/usr/bin/chromium';
const ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];

let browser;
let context;
let userDataDir;
let page;
let token = '';
let origin = '';
const pageErrors = [];

async function ensurePage(viewport) {
  if (page) return;
  userDataDir = mkdtempSync(join(tmpdir(), 'orion-ui-chromium-'));
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM, headless: true, args: ARGS,
    viewport: viewport || { width: 1400, height: 1000 }, acceptDownloads: true,
  });
  browser = context;
  page = context.pages()[0] || await context.newPage();
  page.on('pageerror', (e) => pageErrors.push(e.message));
  page.on('console', (m) => { if (m.type() === 'error') pageErrors.push(`console: ${m.text()}`); });
}

function card(id) {
  return page.locator(`[data-capture-id="${id}"]`);
}

// What a person reads in a capture's card.
async function readCapture(id) {
  return page.evaluate((captureId) => {
    const root = document.querySelector(`[data-capture-id="${captureId}"]`);
    if (!root) return null;
    const text = (selector) => (root.querySelector(selector) || {}).textContent || '';
    const number = (s) => Number(s.replace(/[^0-9.]/g, ''));
    const functions = {};
    for (const row of root.querySelectorAll('[data-function]')) {
      const cells = [...row.querySelectorAll('td')].map((td) => td.textContent);
      functions[row.dataset.function] = { calls: number(cells[1]), cells };
    }
    const nodes = {};
    for (const row of root.querySelectorAll('[data-node]')) {
      const cells = [...row.querySelectorAll('td')].map((td) => td.textContent);
      nodes[row.dataset.node] = { calls: number(cells[2]), cells };
    }
    // Pixels of the heatmap's colours (the palette runs from (68,1,84) to (253,231,37)) and of
    // anything drawn at all, in each chart's canvas.
    const drawn = {};
    for (const name of ['wall-chart', 'cpu-chart', 'rate-chart', 'histogram']) {
      const canvas = root.querySelector(`[data-testid="${name}"] canvas, canvas[data-testid="${name}"]`);
      if (!canvas || !canvas.width) { drawn[name] = null; continue; }
      const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
      let painted = 0;
      let heat = 0;
      for (let i = 0; i < data.length; i += 4) {
        if (data[i + 3] < 128) continue;
        const [r, g, b] = [data[i], data[i + 1], data[i + 2]];
        if (Math.max(r, g, b) - Math.min(r, g, b) > 40 || Math.max(r, g, b) < 140) ++painted;
        if (g > r && b < 150 && g > 80 && Math.abs(r - g) > 30) ++heat;  // teal..green..yellow
      }
      drawn[name] = { painted, heat };
    }
    return {
      state: text('[data-testid=state]'),
      notices: [...root.querySelectorAll('[data-testid=notices] li')].map((li) => li.textContent),
      functions, nodes, drawn,
      range: root.querySelector('[data-testid=range]') && !root.querySelector('[data-testid=range]').hidden ? {
        calls: number(text('[data-testid=range-calls]')),
        quantiles: text('[data-testid=range-quantiles]'),
        accuracy: text('[data-testid=accuracy]'),
      } : null,
      filter: root.querySelector('[data-testid=node-filter]').hidden ? '' : text('[data-testid=node-filter]'),
      // The labels of the wall chart's latency axis, as drawn.
      yTicks: ((root.querySelector('[data-testid=wall-chart]') || { dataset: {} }).dataset.yTicks || '').split('|').filter(Boolean),
      // How far the function table reaches past its card's content box (px; 0: it fits).
      tableOverflow: (() => {
        const table = root.querySelector('[data-testid=functions]');
        const box = root.getBoundingClientRect();
        const style = getComputedStyle(root);
        const inner = box.right - parseFloat(style.paddingRight) - parseFloat(style.borderRightWidth);
        return Math.max(0, Math.ceil(table.getBoundingClientRect().right - inner), table.scrollWidth - table.clientWidth);
      })(),
    };
  }, id);
}

async function run(command) {
  switch (command.op) {
    case 'goto': {
      await ensurePage(command.viewport);
      const response = await page.goto(command.url, { waitUntil: 'load' });
      const url = new URL(command.url);
      token = url.searchParams.get('token') || '';
      origin = url.origin;
      return { status: response.status(), title: await page.title(), body: (await page.innerText('body')).slice(0, 400) };
    }
    case 'typeQuery': {  // types like a person, then waits for the suggestions
      await page.fill('[data-testid=query]', '');
      await page.type('[data-testid=query]', command.text, { delay: 30 });
      // The answer to this text, not a list still shown from an earlier one.
      await page.waitForFunction((text) => {
        const names = [...document.querySelectorAll('[data-testid=suggestions] li:not(.more)')];
        return names.length > 0 && names.every((li) => li.textContent.startsWith(text));
      }, command.text, { timeout: command.timeoutMs || 10000 });
      return { suggestions: await page.locator('[data-testid=suggestions] li').allTextContents() };
    }
    case 'key': {
      await page.focus('[data-testid=query]');
      await page.keyboard.press(command.key);
      await page.waitForTimeout(300);
      return { value: await page.inputValue('[data-testid=query]') };
    }
    case 'fill': {
      await page.fill(command.selector, command.text);
      return {};
    }
    case 'select': {
      await page.selectOption(command.selector, command.value);
      return {};
    }
    case 'start': {  // presses Start; answers the new capture's id
      const before = await page.locator('[data-capture-id]').evaluateAll((els) => els.map((e) => e.dataset.captureId));
      await page.click('[data-testid=start]');
      const handle = await page.waitForFunction((known) => {
        const ids = [...document.querySelectorAll('[data-capture-id]')].map((e) => e.dataset.captureId);
        const fresh = ids.filter((id) => !known.includes(id));
        const error = document.querySelector('[data-testid=query-error]').textContent;
        return fresh[0] || (error ? `ERROR:${error}` : null);
      }, before, { timeout: command.timeoutMs || 15000 });
      const id = await handle.jsonValue();
      if (id.startsWith('ERROR:')) throw new Error(id.slice(6));
      return { id };
    }
    case 'waitFor': {  // until the capture's card satisfies a condition
      const deadline = Date.now() + (command.timeoutMs || 30000);
      let seen;
      for (;;) {
        seen = await readCapture(command.id);
        if (seen && satisfied(seen, command)) return { capture: seen };
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${JSON.stringify(command)}; saw ${JSON.stringify(seen)}`);
        await page.waitForTimeout(200);
      }
    }
    case 'capture':
      return { capture: await readCapture(command.id) };
    case 'text':  // what a person reads in an element (e.g. the banner), "" if hidden
      return { text: await page.locator(command.selector).first().evaluate((e) => (e.hidden ? '' : e.innerText)) };
    case 'waitText': {  // until an element (e.g. the banner) shows a text that includes `text`
      await page.waitForFunction(({ selector, text }) => {
        const e = document.querySelector(selector);
        return e && !e.hidden && e.innerText.includes(text);
      }, { selector: command.selector, text: command.text }, { timeout: command.timeoutMs || 30000 });
      return { text: await page.locator(command.selector).first().innerText() };
    }
    case 'selectRange': {  // drags over the wall chart from fraction `from` to `to` of its width
      // (`to` past 1 ends the drag beyond the plot: the selection then reaches its right edge)
      const box = await card(command.id).locator('[data-testid=wall-chart] .u-over').boundingBox();
      const y = box.y + box.height / 2;
      await page.mouse.move(box.x + box.width * command.from, y);
      await page.mouse.down();
      await page.mouse.move(box.x + box.width * command.to, y, { steps: 8 });
      await page.mouse.up();
      // The page draws the range's histogram on its next frame: under load that can take longer
      // than any fixed pause, so read until it is there (or 10 s have passed, then read as is).
      const until = Date.now() + 10000;
      for (;;) {
        const capture = await readCapture(command.id);
        const histogram = capture && capture.drawn.histogram;
        if ((capture && capture.range && histogram && histogram.painted > 50) || Date.now() > until) {
          return { capture };
        }
        await page.waitForTimeout(100);
      }
    }
    case 'click': {
      const target = command.id ? card(command.id).locator(command.selector) : page.locator(command.selector);
      await target.first().click();
      await page.waitForTimeout(300);
      return {};
    }
    case 'download': {  // clicks what downloads a file (in a card), saves it to `path`
      const target = command.id ? card(command.id).locator(command.selector) : page.locator(command.selector);
      const [download] = await Promise.all([page.waitForEvent('download', { timeout: 15000 }), target.first().click()]);
      await download.saveAs(command.path);
      return { name: download.suggestedFilename(), bytes: statSync(command.path).size };
    }
    case 'waitGone': {  // until the capture's card is no longer on the page
      await page.waitForSelector(`[data-capture-id="${command.id}"]`, { state: 'detached', timeout: command.timeoutMs || 10000 });
      return { cards: await page.locator('[data-capture-id]').evaluateAll((els) => els.map((e) => e.dataset.captureId)) };
    }
    case 'api': {  // the HTTP API from outside the page (an oracle the page does not touch)
      const response = await fetch(`${origin}${command.path}`, {
        method: command.method || 'GET',
        headers: { Authorization: `Bearer ${command.token ?? token}`, 'Content-Type': 'application/json' },
        body: command.body ? JSON.stringify(command.body) : undefined,
      });
      const text = await response.text();
      let json = null;
      try { json = JSON.parse(text); } catch { json = null; }
      return { status: response.status, json, text: json ? undefined : text.slice(0, 400) };
    }
    case 'stats':  // what the page measured (window.orionConsole) and its JS heap
      return {
        stats: await page.evaluate(() => ({
          draws: window.orionConsole.draws, firstPoint: window.orionConsole.firstPoint,
          dataBytes: window.orionConsole.dataBytes(),
          heap: performance.memory ? performance.memory.usedJSHeapSize : null,
        })),
        pageErrors,
      };
    case 'heap': {  // the JS heap after a garbage collection, through the DevTools protocol
      const session = await context.newCDPSession(page);
      await session.send('HeapProfiler.collectGarbage');
      const { usedSize, totalSize } = await session.send('Runtime.getHeapUsage');
      await session.detach();
      return { usedSize, totalSize };
    }
    case 'processMemory':  // chromium's processes (ours: the tree under our user-data-dir)
      return chromiumMemory();
    case 'screenshot':
      await page.screenshot({ path: command.path, fullPage: Boolean(command.fullPage) });
      return {};
    case 'close':
      await shutdown();
      return {};
    default:
      throw new Error(`unknown op ${command.op}`);
  }
}

// Proportional set sizes (KiB, /proc/PID/smaps_rollup) of this driver's chromium: the browser
// process (found by its --user-data-dir) and every process under it; the largest renderer apart.
function chromiumMemory() {
  const procs = new Map();  // pid -> {ppid, cmdline}
  for (const name of readdirSync('/proc')) {
    if (!/^[0-9]+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      procs.set(Number(name), { ppid, cmdline: readFileSync(`/proc/${name}/cmdline`, 'utf8') });
    } catch { /* gone */ }
  }
  const root = [...procs].find(([, p]) => p.cmdline.includes(`--user-data-dir=${userDataDir}`) &&
    !p.cmdline.includes('--type='));
  if (!root) throw new Error('chromium process not found');
  const tree = new Set([root[0]]);
  for (let grew = true; grew;) {
    grew = false;
    for (const [pid, p] of procs) {
      if (!tree.has(pid) && tree.has(p.ppid)) {
        tree.add(pid);
        grew = true;
      }
    }
  }
  const pss = (pid) => {
    try {
      const m = /^Pss:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'));
      return m ? Number(m[1]) : 0;
    } catch { return 0; }
  };
  let totalKiB = 0;
  let rendererKiB = 0;
  for (const pid of tree) {
    const kib = pss(pid);
    totalKiB += kib;
    if (procs.get(pid).cmdline.includes('--type=renderer')) rendererKiB = Math.max(rendererKiB, kib);
  }
  return { processes: tree.size, totalKiB, rendererKiB };
}

async function shutdown() {
  if (browser) await browser.close();
  browser = page = null;
  if (userDataDir) rmSync(userDataDir, { recursive: true, force: true });
  userDataDir = null;
}

// waitFor's conditions: state (substring), calls of a function, a notice (substring), drawn.
function satisfied(seen, command) {
  if (command.state && !seen.state.includes(command.state)) return false;
  if (command.function) {
    const f = seen.functions[command.function];
    if (!f || (command.calls !== undefined && f.calls !== command.calls)) return false;
  }
  if (command.notice && !seen.notices.some((n) => n.includes(command.notice))) return false;
  if (command.drawn && !(seen.drawn['wall-chart'] && seen.drawn['wall-chart'].heat > 0)) return false;
  return true;
}

const lines = createInterface({ input: process.stdin });
for await (const line of lines) {
  if (!line.trim()) continue;
  let answer;
  try {
    answer = { ok: true, ...(await run(JSON.parse(line))) };
  } catch (e) {
    answer = { ok: false, error: String(e && e.message || e).split('\n').slice(0, 6).join(' | ') };
  }
  process.stdout.write(`${JSON.stringify(answer)}\n`);
  if (JSON.parse(line).op === 'close') break;
}
await shutdown();
