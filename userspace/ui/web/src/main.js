// The Orion console (docs/ui.md): a query box with autocomplete, captures side by side, per
// capture the latency of each function over the last 10 minutes (heatmap and percentile lines,
// wall and on-CPU), calls/s, a per-node table with a filter, and the histogram of a selected
// time range. Everything comes from `orion ui`'s HTTP API (src/api.js).
//
// window.orionConsole exposes what the browser tests and the benchmark measure: the time each
// interval took to draw, and the time from pressing start to the first point.
import 'uplot/dist/uPlot.min.css';
import './style.css';

import { Api, ApiError, tokenFromUrl } from './api.js';
import { CaptureData } from './capture_data.js';
import { LatencyChart, RateChart, drawHistogram } from './charts.js';
import { base64, encodeSketch } from './export.js';
import { formatCount, formatNs, formatRate, formatTime } from './format.js';
import { mapping } from './mapping.js';
import { MAX_SUGGESTIONS, QueryError, applyCompletion, commonPrefix, completionPrefix, parseQuery } from './query.js';
import { summarize } from './sketch.js';

const ACCURACY = `${(mapping.relativeAccuracy * 100).toFixed(2)} %`;

// What the tests and the benchmark read (docs/ui.md, "Measuring the page").
const stats = {
  draws: [],            // {capture, seq, ms}: the time to draw each new interval (bounded)
  firstPoint: {},       // capture id -> ms from pressing start to its first point drawn
  startedAt: {},        // capture id -> performance.now() when start was pressed
  dataBytes: () => [...captures.values()].reduce((total, c) => total + c.data.bytes(), 0),
};
window.orionConsole = stats;

const captures = new Map();  // id -> CaptureView
let api;

function el(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (key === 'class') element.className = value;
    else if (key.startsWith('on')) element.addEventListener(key.slice(2), value);
    else if (value !== undefined && value !== null && value !== false) element.setAttribute(key, value);
  }
  for (const child of children.flat()) {
    if (child !== null && child !== undefined) element.append(child instanceof Node ? child : String(child));
  }
  return element;
}

// Shows `rows` (built by el(), not in the page) as the body of `table` under `caption` and
// `head`: where the table already has rows of the same keys (data-key) in the same order, only
// the texts, classes and titles that differ are copied into them, so a new interval changes
// texts rather than the table (the page is not laid out again from scratch).
function showRows(table, caption, head, rows) {
  if (!table.tBodies.length) table.replaceChildren(el('caption'), el('thead', {}, head), el('tbody'));
  if (table.caption.textContent !== caption) table.caption.textContent = caption;
  const body = table.tBodies[0];
  const old = body.children;
  if (old.length !== rows.length || rows.some((row, i) => !row.dataset.key || old[i].dataset.key !== row.dataset.key)) {
    body.replaceChildren(...rows);
    return;
  }
  rows.forEach((row, i) => {
    const into = old[i];
    for (const [to, from] of [[into, row], ...[...into.children].map((cell, k) => [cell, row.children[k]])]) {
      if (to.className !== from.className) to.className = from.className;
      if (to.title !== from.title) to.title = from.title;
      if (to !== into && to.textContent !== from.textContent) to.textContent = from.textContent;
    }
  });
}

// --- notices -------------------------------------------------------------------------------

const banner = el('div', { class: 'banner', 'data-testid': 'banner', hidden: true });
function showBanner(text, kind = 'error') {
  banner.textContent = text;
  banner.className = `banner ${kind}`;
  banner.hidden = !text;
}

// --- the query box -------------------------------------------------------------------------

class QueryBox {
  constructor(onStart) {
    this.onStart = onStart;
    this.suggestions = [];
    this.active = -1;
    this.requestId = 0;
    this.input = el('input', { class: 'query', 'data-testid': 'query', type: 'text', spellcheck: 'false',
      autocomplete: 'off', placeholder: 'lists:sort/1   Enum.map/2   ets:lookup(data, _)   MyApp.Repo.get(id, _) when id > 10',
      oninput: () => this.changed(), onkeydown: (e) => this.key(e), onblur: () => setTimeout(() => this.hide(), 150) });
    this.list = el('ul', { class: 'suggestions', 'data-testid': 'suggestions', hidden: true });
    this.matchSpec = el('input', { class: 'match-spec', 'data-testid': 'match-spec', type: 'text', spellcheck: 'false',
      placeholder: "match spec (optional): [{['_', nadia], [], []}]" });
    this.duration = el('select', { 'data-testid': 'duration', title: 'capture duration' },
      ...[['60', '1 min'], ['300', '5 min'], ['600', '10 min']].map(([v, label]) =>
        el('option', { value: v, selected: v === '600' }, label)));
    this.node = el('select', { 'data-testid': 'node', title: 'the node to capture on' }, el('option', { value: '' }, 'all nodes'));
    this.error = el('div', { class: 'query-error', 'data-testid': 'query-error' });
    this.element = el('form', { class: 'query-bar', onsubmit: (e) => { e.preventDefault(); this.start(); } },
      el('div', { class: 'query-wrap' }, this.input, this.list),
      this.matchSpec, this.duration, this.node,
      el('button', { type: 'submit', 'data-testid': 'start' }, 'Start'),
      this.error);
  }

  setNodes(nodes) {
    this.node.replaceChildren(el('option', { value: '' }, 'all nodes'),
      ...nodes.map((n) => el('option', { value: n.node }, `${n.node}${n.host ? ` (${n.host})` : ''}`)));
  }

  changed() {
    this.error.textContent = '';
    ++this.requestId;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.fetchSuggestions(), 120);
  }

  async fetchSuggestions() {
    const prefix = completionPrefix(this.input.value);
    if (prefix.length < 2) {
      this.show([]);
      return;
    }
    const id = ++this.requestId;
    try {
      const reply = await api.get(`/api/functions?prefix=${encodeURIComponent(prefix)}`);
      if (id !== this.requestId) return;  // an older answer
      this.show((reply.functions || []).slice(0, MAX_SUGGESTIONS), reply.truncated);
    } catch (e) {
      if (id === this.requestId) this.show([]);
      if (e instanceof ApiError && e.status === 401) showBanner(e.message);
    }
  }

  show(items, truncated = false) {
    this.suggestions = items;
    this.active = -1;
    this.list.replaceChildren(...items.map((name, k) => el('li', { 'data-index': k,
      onmousedown: (e) => { e.preventDefault(); this.pick(k); } }, name)));
    if (truncated) this.list.append(el('li', { class: 'more' }, 'more… type further'));
    this.list.hidden = !items.length;
  }

  hide() {
    clearTimeout(this.timer);
    ++this.requestId;  // an answer still on its way is not shown
    this.list.hidden = true;
  }

  pick(k) {
    this.input.value = applyCompletion(this.input.value, this.suggestions[k]);
    this.show([]);
    this.input.focus();
  }

  key(e) {
    const visible = !this.list.hidden && this.suggestions.length;
    if (e.key === 'Tab' && visible) {
      e.preventDefault();
      const prefix = completionPrefix(this.input.value);
      const common = this.suggestions.length === 1 ? this.suggestions[0] : commonPrefix(this.suggestions);
      if (common.length > prefix.length) this.input.value = applyCompletion(this.input.value, common);
      if (this.suggestions.length === 1) this.show([]);
      else this.changed();
    } else if ((e.key === 'ArrowDown' || e.key === 'ArrowUp') && visible) {
      e.preventDefault();
      const n = this.suggestions.length;
      this.active = (this.active + (e.key === 'ArrowDown' ? 1 : n - 1)) % n;
      [...this.list.children].forEach((li, k) => li.classList.toggle('active', k === this.active));
    } else if (e.key === 'Enter' && visible && this.active >= 0) {
      e.preventDefault();
      this.pick(this.active);
    } else if (e.key === 'Escape') {
      this.hide();
    }
  }

  start() {
    this.hide();
    let query;
    try {
      query = parseQuery(this.input.value);
    } catch (e) {
      if (!(e instanceof QueryError)) throw e;
      this.error.textContent = e.message;
      return;
    }
    const explicit = this.matchSpec.value.trim();
    if (explicit && query.matchSpec) {
      this.error.textContent = 'the query has arguments and the match spec field is filled: give the match spec once';
      return;
    }
    const body = { patterns: query.patterns, duration_s: Number(this.duration.value), interval_ms: 1000 };
    if (explicit || query.matchSpec) body.match_spec = explicit || query.matchSpec;
    if (this.node.value) body.node = this.node.value;
    this.onStart(body).catch((e) => { this.error.textContent = e.message; });
  }
}

// --- one capture ---------------------------------------------------------------------------

const STATE_TEXT = {
  attaching: 'attaching…',
  running: 'capturing',
  done: 'done',
  stopped: 'stopped',
  overloaded: 'stopped by the overload guard',
  error: 'error',
};

class CaptureView {
  constructor(info) {
    this.id = info.id;
    this.info = info;
    this.data = new CaptureData(mapping);
    this.state = info.state === 'running' ? 'attaching' : info.state || 'attaching';
    this.selectedFunction = null;
    this.range = null;  // [t0, t1] seconds
    this.downNodes = new Map();  // node (or daemon) -> {host, seq}: lost after interval seq
    this.source = null;
    this.pending = [];  // intervals received since the last draw
    this.drawScheduled = false;
    this.attachedAfter = -Infinity;  // the last interval seq before the latest Restart
    this.build();
    this.connect();
  }

  build() {
    const title = [...(this.info.patterns || [])].join(' ');
    this.stateBadge = el('span', { class: 'state', 'data-testid': 'state' });
    this.stopButton = el('button', { 'data-testid': 'stop', onclick: () => this.stop() }, 'Stop');
    this.restartButton = el('button', { 'data-testid': 'restart', hidden: true, onclick: () => this.restart(),
      title: 'the same query again; its points are added to these' }, 'Restart');
    this.notices = el('ul', { class: 'notices', 'data-testid': 'notices' });
    this.functionTable = el('table', { class: 'functions', 'data-testid': 'functions' });
    this.chartsBox = el('div', { class: 'charts' });
    this.nodeTable = el('table', { class: 'nodes', 'data-testid': 'nodes' });
    this.rangeBox = el('div', { class: 'range', 'data-testid': 'range', hidden: true });
    this.filterChip = el('span', { class: 'filter', 'data-testid': 'node-filter', hidden: true });
    this.element = el('section', { class: 'capture', 'data-capture-id': this.id },
      el('header', {},
        el('h2', { title }, title || this.id),
        this.info.match_spec ? el('code', { class: 'ms', title: 'match spec' }, this.info.match_spec) : null,
        this.info.node ? el('span', { class: 'on-node' }, `on ${this.info.node}`) : null,
        this.stateBadge, this.filterChip,
        el('span', { class: 'actions' },
          this.restartButton, this.stopButton,
          el('button', { 'data-testid': 'export-json', onclick: () => this.exportJson(), title: 'the window (or the selected range) as JSON, sketches included' }, 'JSON'),
          el('button', { 'data-testid': 'remove', onclick: () => this.remove(), title: 'stop and free this capture' }, '✕'))),
      this.notices,
      this.functionTable,
      this.chartsBox,
      el('div', { class: 'below' }, this.nodeTable, this.rangeBox));
    this.setState(this.state);
    this.renderTables();
  }

  width() {
    return Math.max(320, this.element.clientWidth - 24);
  }

  connect() {
    if (this.source) this.source.close();
    const source = new EventSource(api.eventsUrl(this.id));
    this.source = source;
    // On connect the server replays the kept window, then sends the state: draw once after it
    // (or after 1.5 s, whichever comes first), not once per burst of replayed intervals.
    this.replaying = true;
    setTimeout(() => this.replayed(), 1500);
    source.addEventListener('interval', (e) => this.interval(JSON.parse(e.data)));
    source.addEventListener('state', (e) => {
      const { state, reason } = JSON.parse(e.data);
      // "running" before any interval (since a restart): the daemons may still be attaching;
      // the first interval says capturing.
      if (!(state === 'running' && this.state === 'attaching' && this.data.maxSeq <= this.attachedAfter)) {
        this.setState(state, reason);
      }
      this.replayed();
    });
    source.addEventListener('node', (e) => {
      const { node, status, reason } = JSON.parse(e.data);
      if (status === 'down') {
        this.downNodes.set(node, { host: node.split('@')[1] || '', seq: this.data.maxSeq });
        this.notice(`node ${node} lost${reason ? `: ${reason}` : ''}`, 'warn', `node-down-${node}`);
      }
    });
    source.onopen = () => connectionBack();
    source.onerror = () => {
      if (this.terminal()) {
        source.close();
        return;
      }
      connectionLost();
      if (source.readyState === EventSource.CLOSED) this.refused(source);
    };
  }

  // The stream was refused (EventSource gives no status): ask the API why. A refused token
  // (orion ui restarted: a new one) or a capture that is gone ends the retries; anything else
  // (orion ui down) is retried every 3 s.
  refused(source) {
    setTimeout(async () => {
      if (this.source !== source || !captures.has(this.id)) return;
      try {
        await api.get(`/api/captures/${encodeURIComponent(this.id)}`);
        this.connect();
      } catch (e) {
        if (e instanceof ApiError && e.status === 401) {
          showBanner(e.message);
        } else if (e instanceof ApiError && e.status === 404) {
          this.setState('error', 'orion ui no longer has this capture (was it restarted?)');
        } else {
          this.refused(source);
        }
      }
    }, 3000);
  }

  terminal() {
    return ['done', 'stopped', 'error', 'overloaded'].includes(this.state);
  }

  interval(event) {
    // Capturing from the first interval the daemons sent since (re)starting, not from the
    // replayed ones of before a Restart: the calls made from then on are counted.
    if (this.state === 'attaching' && event.seq > this.attachedAfter) this.setState('running');
    // A lost node (or the daemon of a host) is back when a later interval has it again.
    for (const [down, { host, seq }] of this.downNodes) {
      if (event.seq <= seq + 1) continue;
      if ((event.nodes || []).some((n) => n.node === down || (host && n.host === host))) {
        this.downNodes.delete(down);
        this.notice(`node ${down} is back`, 'ok', `node-down-${down}`);
      }
    }
    if (event.dropped) this.notice(`${event.dropped} intervals could not be delivered (orion ui fell behind)`, 'warn', 'dropped');
    if (this.data.addInterval(event)) this.pending.push(event.seq);
    this.scheduleDraw();
  }

  replayed() {
    if (!this.replaying) return;
    this.replaying = false;
    this.scheduleDraw();
  }

  scheduleDraw() {
    if (this.drawScheduled || this.replaying) return;
    this.drawScheduled = true;
    requestAnimationFrame(() => {
      this.drawScheduled = false;
      const start = performance.now();
      this.render();
      const ms = performance.now() - start;
      const seqs = this.pending.splice(0);
      if (seqs.length) {
        stats.draws.push({ capture: this.id, seq: seqs[seqs.length - 1], intervals: seqs.length, ms });
        if (stats.draws.length > 5000) stats.draws.splice(0, 1000);
        if (stats.startedAt[this.id] !== undefined && stats.firstPoint[this.id] === undefined) {
          stats.firstPoint[this.id] = performance.now() - stats.startedAt[this.id];
        }
      }
    });
  }

  setState(state, reason) {
    if (state === 'deleted') {  // removed elsewhere (another page, the API)
      this.destroy();
      return;
    }
    this.state = state;
    let text = STATE_TEXT[state] || state;
    if (reason) text += `: ${reason}`;
    this.stateBadge.textContent = text;
    this.stateBadge.className = `state ${state}`;
    this.stopButton.hidden = !['attaching', 'running'].includes(state);
    this.restartButton.hidden = !this.terminal();
    this.restartButton.textContent = state === 'overloaded' ? 'Resume' : 'Restart';
    if (state === 'overloaded') {
      this.notice(`the overload guard stopped the capture${reason ? ` (${reason})` : ''}: Resume starts it again`, 'warn', 'overload');
    } else if (state === 'error') {
      this.notice(`error: ${reason || 'the capture failed'}`, 'error', 'error');
    }
    if (this.terminal() && this.source) {
      this.source.close();
      this.source = null;
    }
  }

  notice(text, kind, key) {
    const li = el('li', { class: kind, 'data-key': key }, `${formatTime(Date.now() / 1000)} ${text}`);
    const old = key && this.notices.querySelector(`[data-key="${CSS.escape(key)}"]`);
    if (old) old.replaceWith(li);
    else this.notices.append(li);
    while (this.notices.children.length > 8) this.notices.firstChild.remove();
  }

  async stop() {
    try {
      await api.post(`/api/captures/${this.id}/stop`);
    } catch (e) {
      this.notice(`stop failed: ${e.message}`, 'error');
    }
  }

  async restart() {
    try {
      await api.post(`/api/captures/${this.id}/restart`);
      this.attachedAfter = this.data.maxSeq;
      this.setState('attaching');
      stats.startedAt[this.id] = performance.now();
      delete stats.firstPoint[this.id];
      this.connect();
    } catch (e) {
      this.notice(`resume failed: ${e.message}`, 'error');
    }
  }

  async remove() {
    try {
      await api.delete(`/api/captures/${this.id}`);
    } catch (e) {
      if (!(e instanceof ApiError && e.status === 404)) {
        this.notice(`remove failed: ${e.message}`, 'error');
        return;
      }
    }
    this.destroy();
  }

  destroy() {
    if (this.source) this.source.close();
    this.source = null;
    this.destroyCharts();
    this.element.remove();
    captures.delete(this.id);
  }

  destroyCharts() {
    for (const chart of [this.wallChart, this.cpuChart, this.rateChart]) if (chart) chart.destroy();
    this.wallChart = this.cpuChart = this.rateChart = null;
    this.chartsBox.replaceChildren();
  }

  // --- drawing ---

  render() {
    const functions = this.data.functions();
    if (!this.selectedFunction || !functions.includes(this.selectedFunction)) {
      this.selectedFunction = this.slowest() || functions[0] || null;  // what a person looks for
    }
    this.renderTables();
    this.renderCharts();
    this.renderRange();
  }

  // The function with the highest wall-time p99 over the window (or the range).
  slowest() {
    const [t0, t1] = this.range || [];
    let best = null;
    let bestP99 = -1;
    for (const fn of this.data.functions()) {
      const p99 = this.data.rangeSketch(fn, 'wall', t0, t1).quantile(0.99);
      if (p99 > bestP99) {
        best = fn;
        bestP99 = p99;
      }
    }
    return best;
  }

  renderTables() {
    const [t0, t1] = this.range || [];
    const head = el('tr', {}, ...['function', 'calls', 'calls/s', 'p50', 'p90', 'p99', 'p99.9', 'max', 'cpu p50', 'cpu p99', 'exc']
      .map((h) => el('th', {}, h)));
    const slowest = this.slowest();
    const rows = this.data.functions().map((fn) => {
      const counts = this.data.rangeCounts(fn, t0, t1);
      const wall = summarize(this.data.rangeSketch(fn, 'wall', t0, t1));
      const cpu = summarize(this.data.rangeSketch(fn, 'cpu', t0, t1));
      const seconds = counts.intervals || 1;
      return el('tr', { 'data-function': fn, 'data-key': fn, class: fn === this.selectedFunction ? 'selected' : '',
        onclick: () => { this.selectedFunction = fn; this.render(); } },
        el('td', { class: 'name', title: fn }, fn),
        el('td', { 'data-testid': 'calls' }, formatCount(counts.calls)),
        el('td', {}, formatRate(counts.calls / seconds)),
        el('td', {}, formatNs(wall.p50)), el('td', {}, formatNs(wall.p90)),
        el('td', { class: fn === slowest && this.data.functions().length > 1 ? 'slowest' : '',
          title: fn === slowest ? 'the highest p99' : undefined }, formatNs(wall.p99)),
        el('td', {}, formatNs(wall.p999)), el('td', {}, formatNs(wall.max)),
        el('td', {}, formatNs(cpu.p50)), el('td', {}, formatNs(cpu.p99)),
        el('td', {}, formatCount(counts.exceptions)));
    });
    const caption = this.range
      ? `${formatTime(t0)}–${formatTime(t1)} (selected range)`
      : `last ${Math.round(this.data.intervals.size)} s${this.data.nodeFilter ? `, node ${this.data.nodeFilter}` : ''}`;
    const hint = rows.length > 1 ? ' · slowest p99 in red · click a row to chart it' : '';
    showRows(this.functionTable, caption + hint, head, rows.length ? rows
      : [el('tr', {}, el('td', { colspan: 11, class: 'empty' }, this.state === 'attaching' ? 'attaching…' : 'no interval yet'))]);

    const fn = this.selectedFunction;
    if (!fn) {
      this.nodeTable.replaceChildren();
      return;
    }
    const nodeRows = this.data.perNode(fn, t0, t1).map((n) => el('tr', {
      'data-node': n.node, 'data-key': `${fn}\n${n.node}`, class: n.node === this.data.nodeFilter ? 'selected' : (this.isDown(n) ? 'down' : ''),
      title: 'show this node only (click again for all nodes)',
      onclick: () => this.filterNode(n.node === this.data.nodeFilter ? null : n.node) },
    el('td', { class: 'name' }, n.node, this.isDown(n) ? ' (lost)' : ''), el('td', {}, n.host || ''),
    el('td', { 'data-testid': 'node-calls' }, formatCount(n.calls)), el('td', {}, formatNs(n.p50)),
    el('td', {}, formatNs(n.p99)), el('td', {}, formatNs(n.max))));
    showRows(this.nodeTable, `${fn} per node (wall time)`,
      el('tr', {}, ...['node', 'host', 'calls', 'p50', 'p99', 'max'].map((h) => el('th', {}, h))), nodeRows);
  }

  isDown(n) {
    if (this.downNodes.has(n.node)) return true;
    for (const { host } of this.downNodes.values()) if (host && host === n.host) return true;
    return false;
  }

  filterNode(node) {
    this.data.setNodeFilter(node);
    this.filterChip.hidden = !node;
    this.filterChip.replaceChildren(`node ${node || ''} `, el('button', { onclick: () => this.filterNode(null), title: 'all nodes' }, '×'));
    this.render();
  }

  renderCharts() {
    const fn = this.selectedFunction;
    if (!fn) return;
    const width = this.width();
    if (!this.wallChart) {
      const onSelect = (t0, t1) => this.select(t0, t1);
      const wall = el('div', { 'data-testid': 'wall-chart' });
      const cpu = el('div', { 'data-testid': 'cpu-chart' });
      const rate = el('div', { 'data-testid': 'rate-chart' });
      this.chartsBox.replaceChildren(wall, cpu, rate,
        el('p', { class: 'hint' }, 'Colour: calls per latency bucket and second (log scale). Drag over a chart to see the histogram of a time range.'));
      this.wallChart = new LatencyChart(wall, { title: 'wall time', width, onSelect });
      this.cpuChart = new LatencyChart(cpu, { title: 'on-CPU time', width, onSelect });
      this.rateChart = new RateChart(rate, { width, onSelect });
    }
    const series = this.data.series(fn);
    const wallMap = this.data.heatmapColumns(fn, 'wall');
    const key = `${fn}\n${this.data.nodeFilter || ''}`;  // a new picture: the heatmaps repaint
    this.wallChart.update(series, 'wall', wallMap, key);
    this.cpuChart.update(series, 'cpu', this.data.heatmapColumns(fn, 'cpu'), key);
    this.rateChart.update(series, wallMap ? [wallMap.t0, wallMap.t0 + wallMap.columns * wallMap.dt] : null);
    this.wallChart.plot.root.querySelector('.u-title').textContent = `${fn}: wall time`;
    for (const chart of [this.wallChart, this.cpuChart, this.rateChart]) chart.showRange(this.range);
  }

  select(t0, t1) {
    this.range = t0 === null || t0 === undefined ? null : [t0, t1];
    this.renderTables();
    this.renderCharts();
    this.renderRange();
  }

  renderRange() {
    const fn = this.selectedFunction;
    if (!this.range || !fn) {
      this.rangeBox.hidden = true;
      return;
    }
    const [t0, t1] = this.range;
    const counts = this.data.rangeCounts(fn, t0, t1);
    const wall = this.data.rangeSketch(fn, 'wall', t0, t1);
    const cpu = this.data.rangeSketch(fn, 'cpu', t0, t1);
    const ws = summarize(wall);
    const cs = summarize(cpu);
    const canvas = el('canvas', { class: 'histogram', 'data-testid': 'histogram' });
    const rowsOf = (s) => ['p50', 'p90', 'p99', 'p999', 'max'].map((k) => el('td', {}, formatNs(s[k])));
    this.rangeBox.hidden = false;
    this.rangeBox.replaceChildren(
      el('h3', {}, `${fn}, ${formatTime(t0)}–${formatTime(t1)}: `,
        el('span', { 'data-testid': 'range-calls' }, formatCount(counts.calls)), ' calls in ',
        `${counts.intervals} s${this.data.nodeFilter ? ` on ${this.data.nodeFilter}` : ''}`,
        el('button', { class: 'clear', onclick: () => this.select(null), title: 'clear the selection' }, '×')),
      canvas,
      el('table', { class: 'quantiles', 'data-testid': 'range-quantiles' },
        el('tr', {}, el('th', {}, ''), ...['p50', 'p90', 'p99', 'p99.9', 'max'].map((h) => el('th', {}, h))),
        el('tr', {}, el('th', {}, 'wall'), ...rowsOf(ws)),
        el('tr', {}, el('th', {}, 'on-CPU'), ...rowsOf(cs))),
      el('p', { class: 'accuracy', 'data-testid': 'accuracy' },
        `Every quantile is within ±${ACCURACY} of the exact one (DDSketch, γ = 2^(1/64)); `,
        `max is its bucket's value, within ${ACCURACY} too.`),
      el('p', {}, el('button', { 'data-testid': 'export-sketch', onclick: () => this.exportSketch(wall, fn) },
        'wall-time sketch (.pb)'), ' ',
      el('button', { 'data-testid': 'export-range-json', onclick: () => this.exportJson() }, 'range as JSON')));
    requestAnimationFrame(() => drawHistogram(canvas, wall, ws));
  }

  // --- export ---

  exportJson() {
    const [t0, t1] = this.range || [];
    const functions = this.data.functions().map((name) => {
      const out = { name, ...this.data.rangeCounts(name, t0, t1) };
      for (const kind of ['wall', 'cpu']) {
        const sketch = this.data.rangeSketch(name, kind, t0, t1);
        out[kind] = { ...summarize(sketch), zero: sketch.zero, bins: sketch.bins(), sketch: base64(encodeSketch(sketch)) };
      }
      return out;
    });
    const document_ = {
      id: this.id, patterns: this.info.patterns, match_spec: this.info.match_spec || '', node_filter: this.data.nodeFilter,
      from_s: t0 ?? null, to_s: t1 ?? null, relative_accuracy: mapping.relativeAccuracy, unit: 'ns', functions,
    };
    download(`orion-${this.id}.json`, new Blob([JSON.stringify(document_, null, 1)], { type: 'application/json' }));
  }

  exportSketch(sketch, fn) {
    download(`orion-${this.id}-${fn.replace(/[^A-Za-z0-9_.-]+/g, '_')}.pb`,
      new Blob([encodeSketch(sketch)], { type: 'application/octet-stream' }));
  }
}

function download(name, blob) {
  const url = URL.createObjectURL(blob);
  const a = el('a', { href: url, download: name });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

// --- connection state ----------------------------------------------------------------------

let lost = false;
function connectionLost() {
  if (lost) return;
  lost = true;
  showBanner('Connection to orion ui lost: retrying…', 'error');
}
function connectionBack() {
  if (!lost) return;
  lost = false;
  showBanner('Connection back.', 'ok');
  setTimeout(() => { if (!lost) showBanner(''); }, 4000);
}

// Whether orion ui still reaches its daemon (GET /api/status): the notice of an unreachable
// daemon, and of its return.
let daemonLost = false;
async function checkDaemon() {
  try {
    const status = await api.get('/api/status');
    if (!status || status.connected === undefined) return;
    if (!status.connected && !daemonLost) {
      daemonLost = true;
      showBanner(`orion ui cannot reach its daemon ${status.daemon || ''}: reconnecting…`, 'error');
    } else if (status.connected && daemonLost) {
      daemonLost = false;
      showBanner(`The daemon ${status.daemon || ''} is reachable again.`, 'ok');
    }
    connectionBack();
  } catch (e) {
    if (e instanceof ApiError && e.status === 0) connectionLost();
  }
}

// --- the page ------------------------------------------------------------------------------

function addCapture(info) {
  const view = new CaptureView(info);
  captures.set(info.id, view);
  grid.prepend(view.element);
  return view;
}

async function startCapture(body) {
  const pressed = performance.now();
  const { id } = await api.post('/api/captures', body);
  stats.startedAt[id] = pressed;
  addCapture({ id, patterns: body.patterns, match_spec: body.match_spec, node: body.node, state: 'attaching' });
}

const grid = el('main', { class: 'captures', 'data-testid': 'captures' });

async function init() {
  const token = tokenFromUrl();
  api = new Api(token);
  const nodesLine = el('span', { class: 'cluster', 'data-testid': 'cluster' });
  const queryBox = new QueryBox(startCapture);
  document.body.append(
    el('header', { class: 'top' }, el('h1', {}, 'Orion'), el('span', { class: 'tagline' }, 'latency of BEAM functions, live, on every node'), nodesLine),
    banner, queryBox.element, grid);
  if (!token) {
    showBanner('This page needs its access token: open the URL that orion ui printed (…/?token=…).');
    return;
  }
  try {
    const { nodes } = await api.get('/api/nodes');
    queryBox.setNodes(nodes || []);
    nodesLine.textContent = `${(nodes || []).length} node${(nodes || []).length === 1 ? '' : 's'}: ${(nodes || []).map((n) => n.node).join(', ')}`;
    const { captures: existing } = await api.get('/api/captures');
    for (const info of (existing || []).slice().reverse()) addCapture(info);
  } catch (e) {
    showBanner(e.message);
  }
  queryBox.input.focus();
  setInterval(checkDaemon, 5000);
  window.addEventListener('resize', () => {
    for (const view of captures.values()) {
      for (const chart of [view.wallChart, view.cpuChart, view.rateChart]) if (chart) chart.setWidth(view.width());
    }
  });
}

init();
