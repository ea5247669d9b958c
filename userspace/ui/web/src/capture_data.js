// What the page keeps of one capture: the last `keep` intervals of the event stream
// (GET /api/captures/ID/events, docs/ui.md), per node and function, as sparse sketch deltas;
// and what the charts and tables need from them, computed by merging those deltas exactly as the
// C++ sketch merges (src/sketch.js).
//
//   const data = new CaptureData(mapping);
//   data.addInterval(event);                 // an `interval` event's JSON; replays replace
//   data.series('m:f/1')                     // per interval: calls/s, wall and cpu quantiles
//   data.heatmap('m:f/1', 'wall')            // time x coarsened bucket counts
//   data.heatmapColumns('m:f/1', 'wall')     // the same, a column per interval (drawn a column
//                                            // at a time: charts.js)
//   data.rangeSketch('m:f/1', 'wall', t0, t1)
//   data.setNodeFilter('app@h')              // every view then shows that node only
import { QUANTILES, Sketch, SparseBins, summarize } from './sketch.js';

// 10 minutes of 1-second intervals: what the server replays, and what the page keeps.
export const KEEP_INTERVALS = 600;
// Heatmap rows per power of two: the sketch's 64 buckets per octave, coarsened by 8.
export const HEATMAP_ROWS_PER_OCTAVE = 8;

export class CaptureData {
  constructor(mapping, { keep = KEEP_INTERVALS } = {}) {
    this.mapping = mapping;
    this.keep = keep;
    this.intervals = new Map();  // seq -> {seq, endMs, intervalMs, nodes: Map(node -> NodeInterval)}
    this.minSeq = Infinity;
    this.maxSeq = -Infinity;
    this.functionNames = new Set();
    this.nodeHosts = new Map();  // node -> host
    this.nodeFilter = null;
    this.scratch = new Sketch(mapping);
    this.summaries = new Map();  // seq -> Map(`${node}\n${fn}` -> {calls, exceptions, wall, cpu})
    // The whole window, kept up to date as intervals come and go: per `${node}\n${fn}`,
    // {wall: Sketch, cpu: Sketch, calls, exceptions}; per node, lost.
    this.windows = new Map();
    this.windowLost = new Map();
    // Sketches of selected time ranges: key -> {t0, t1, value}; an interval added, replaced or
    // dropped at time t forgets the entries whose range holds t.
    this.rangeMemo = new Map();
  }

  window(node, fn) {
    const key = `${node}\n${fn}`;
    let w = this.windows.get(key);
    if (!w) {
      w = { wall: new Sketch(this.mapping), cpu: new Sketch(this.mapping), calls: 0, exceptions: 0 };
      this.windows.set(key, w);
    }
    return w;
  }

  // Adds (sign 1) or removes (-1) an interval from the window totals and forgets range results
  // that held it.
  account(interval, sign) {
    for (const [node, n] of interval.nodes) {
      this.windowLost.set(node, (this.windowLost.get(node) || 0) + sign * n.lost);
      for (const [fn, f] of n.functions) {
        const w = this.window(node, fn);
        for (const kind of ['wall', 'cpu']) {
          if (sign > 0) w[kind].addBins(f[kind]);
          else w[kind].subtractBins(f[kind]);
        }
        w.calls += sign * f.calls;
        w.exceptions += sign * f.exceptions;
      }
    }
    const t = interval.endMs / 1000;
    for (const [key, entry] of this.rangeMemo) if (t > entry.t0 && t <= entry.t1) this.rangeMemo.delete(key);
  }

  // Adds an `interval` event; an interval already kept (a replay after a reconnect) is replaced.
  // Returns false for an interval older than the kept window.
  addInterval(event) {
    const seq = event.seq;
    if (seq <= this.maxSeq - this.keep) return false;
    const nodes = new Map();
    for (const n of event.nodes || []) {
      const functions = new Map();
      for (const f of n.functions || []) {
        functions.set(f.name, {
          calls: f.calls || 0,
          exceptions: f.exceptions || 0,
          wall: new SparseBins(f.wall),
          cpu: new SparseBins(f.cpu),
        });
        this.functionNames.add(f.name);
      }
      nodes.set(n.node, { lost: n.lost || 0, functions });
      this.nodeHosts.set(n.node, n.host || '');
    }
    const replaced = this.intervals.get(seq);
    if (replaced) {
      this.account(replaced, -1);
      this.forgetSummaries(seq);
    }
    const added = { seq, endMs: event.end_ms, intervalMs: event.interval_ms || 1000, nodes };
    this.intervals.set(seq, added);
    this.account(added, 1);
    if (seq < this.minSeq) this.minSeq = seq;
    if (seq > this.maxSeq) {
      this.maxSeq = seq;
      for (const old of this.intervals.keys()) {
        if (old <= this.maxSeq - this.keep) {
          this.account(this.intervals.get(old), -1);
          this.intervals.delete(old);
          this.forgetSummaries(old);
        }
      }
      this.minSeq = Math.min(...this.intervals.keys());
    }
    return true;
  }

  forgetSummaries(seq) {
    this.summaries.delete(seq);
  }

  functions() {
    return [...this.functionNames].sort();
  }

  nodes() {
    return [...this.nodeHosts.keys()].sort();
  }

  setNodeFilter(node) {
    this.nodeFilter = node || null;
  }

  // The kept intervals in order, each with its time (seconds since the epoch, the interval's end).
  ordered() {
    return [...this.intervals.values()].sort((a, b) => a.seq - b.seq);
  }

  // The function's parts of an interval that the node filter lets through.
  *parts(interval, fn, node = this.nodeFilter) {
    for (const [name, n] of interval.nodes) {
      if (node && name !== node) continue;
      const f = n.functions.get(fn);
      if (f) yield f;
    }
  }

  // Calls, exceptions and wall/cpu summaries of one interval (memoised; intervals do not change
  // unless replaced).
  intervalSummary(interval, fn, node = this.nodeFilter) {
    const key = `${node || ''}\n${fn}`;
    let ofInterval = this.summaries.get(interval.seq);
    if (!ofInterval) this.summaries.set(interval.seq, (ofInterval = new Map()));
    let summary = ofInterval.get(key);
    if (summary) return summary;
    let calls = 0;
    let exceptions = 0;
    summary = {};
    const binsPerRow = this.mapping.subbuckets / HEATMAP_ROWS_PER_OCTAVE;
    for (const kind of ['wall', 'cpu']) {
      this.scratch.clear();
      for (const f of this.parts(interval, fn, node)) this.scratch.addBins(f[kind]);
      summary[kind] = summarize(this.scratch);
      // The heatmap's column: counts per coarse row, rows ascending.
      const rows = [];
      const counts = [];
      for (let i = this.scratch.minIndex; i <= this.scratch.maxIndex; ++i) {
        const c = this.scratch.counts[i];
        if (!c) continue;
        const row = Math.floor(i / binsPerRow);
        if (rows.length && rows[rows.length - 1] === row) counts[counts.length - 1] += c;
        else {
          rows.push(row);
          counts.push(c);
        }
      }
      summary[`${kind}Rows`] = { row: Int32Array.from(rows), count: Float64Array.from(counts),
        max: counts.length ? Math.max(...counts) : 0 };
    }
    for (const f of this.parts(interval, fn, node)) {
      calls += f.calls;
      exceptions += f.exceptions;
    }
    summary.calls = calls;
    summary.exceptions = exceptions;
    ofInterval.set(key, summary);
    return summary;
  }

  // Per interval, for uPlot: t (s), calls/s, and wall/cpu p50, p90, p99, p99.9, max (ns; null
  // where the interval had no call). Missing intervals are nulls, so lines break there.
  series(fn) {
    const out = { t: [], callsPerSecond: [], wall: {}, cpu: {} };
    for (const kind of ['wall', 'cpu']) {
      for (const { key } of QUANTILES) out[kind][key] = [];
      out[kind].max = [];
    }
    let previous = null;
    for (const interval of this.ordered()) {
      if (previous && interval.seq > previous.seq + 1) {  // a gap: one null point
        this.pushPoint(out, (previous.endMs + interval.intervalMs) / 1000, null);
      }
      this.pushPoint(out, interval.endMs / 1000, this.intervalSummary(interval, fn), interval.intervalMs);
      previous = interval;
    }
    return out;
  }

  pushPoint(out, t, summary, intervalMs) {
    out.t.push(t);
    out.callsPerSecond.push(summary ? summary.calls / (intervalMs / 1000) : null);
    for (const kind of ['wall', 'cpu']) {
      for (const key of [...QUANTILES.map((q) => q.key), 'max']) {
        const v = summary ? summary[kind][key] : NaN;
        out[kind][key].push(Number.isNaN(v) ? null : v);
      }
    }
  }

  // The heatmap of a function, a column per kept interval: column(seq) is the interval's counts
  // per coarse row ({row, count, max}, rows ascending; undefined for a missing interval), the
  // same object until that interval is replaced, so a drawing can repaint only the columns that
  // changed. Rows: HEATMAP_ROWS_PER_OCTAVE per power of two (row r holds bins r*k .. r*k+k-1,
  // k = 64/rows), rowMin..rowMax those with a count; maxCount the highest cell. Zeros (0 ns)
  // are left out. Null without a count.
  heatmapColumns(fn, kind) {
    const binsPerRow = this.mapping.subbuckets / HEATMAP_ROWS_PER_OCTAVE;
    const ordered = this.ordered();
    const bySeq = new Map();
    let rowMin = Infinity;
    let rowMax = -Infinity;
    let maxCount = 0;
    for (const interval of ordered) {
      const rows = this.intervalSummary(interval, fn)[`${kind}Rows`];
      bySeq.set(interval.seq, rows);
      if (!rows.row.length) continue;
      rowMin = Math.min(rowMin, rows.row[0]);
      rowMax = Math.max(rowMax, rows.row[rows.row.length - 1]);
      maxCount = Math.max(maxCount, rows.max);
    }
    if (!ordered.length || rowMin > rowMax) return null;
    const firstSeq = ordered[0].seq;
    return {
      firstSeq, columns: ordered[ordered.length - 1].seq - firstSeq + 1, keep: this.keep,
      rows: rowMax - rowMin + 1, rowMin, rowMax, maxCount,
      column: (seq) => bySeq.get(seq),
      // time of the left edge of column 0 and the width of a column, in seconds
      t0: (ordered[0].endMs - ordered[0].intervalMs) / 1000,
      dt: ordered[0].intervalMs / 1000,
      // latency (ns) of a row's lower and upper edge
      rowLow: (row) => this.mapping.lowerBound(row * binsPerRow),
      rowHigh: (row) => this.mapping.lowerBound((row + 1) * binsPerRow),
    };
  }

  // The heatmap as one array (heatmapColumns' cells): cells[column * rows + (row - rowMin)] =
  // count, column 0 the first kept seq.
  heatmap(fn, kind) {
    const map = this.heatmapColumns(fn, kind);
    if (!map) return null;
    const cells = new Float64Array(map.columns * map.rows);
    for (let c = 0; c < map.columns; ++c) {
      const column = map.column(map.firstSeq + c);
      if (!column) continue;
      for (let k = 0; k < column.row.length; ++k) cells[c * map.rows + column.row[k] - map.rowMin] = column.count[k];
    }
    return { ...map, cells };
  }

  // The sketch of every interval whose end lies in (t0, t1] (seconds; the whole window without
  // bounds), for the node filter or `node`. The caller must not change it.
  rangeSketch(fn, kind, t0 = -Infinity, t1 = Infinity, node = this.nodeFilter) {
    return this.range(fn, t0, t1, node)[kind];
  }

  // Calls, exceptions and lost over the intervals in (t0, t1], and how many intervals.
  rangeCounts(fn, t0 = -Infinity, t1 = Infinity, node = this.nodeFilter) {
    const { calls, exceptions, lost, intervals } = this.range(fn, t0, t1, node);
    return { calls, exceptions, lost, intervals };
  }

  // {wall, cpu, calls, exceptions, lost, intervals} of (t0, t1]: from the window totals for the
  // whole window, else merged from the intervals; memoised either way.
  range(fn, t0, t1, node) {
    const key = `${fn}\n${t0}\n${t1}\n${node || ''}`;
    const memo = this.rangeMemo.get(key);
    if (memo) return memo.value;
    const whole = t0 === -Infinity && t1 === Infinity;
    const value = { wall: new Sketch(this.mapping), cpu: new Sketch(this.mapping), calls: 0, exceptions: 0, lost: 0, intervals: 0 };
    if (whole) {
      value.intervals = this.intervals.size;
      for (const n of this.nodes()) {
        if (node && n !== node) continue;
        value.lost += this.windowLost.get(n) || 0;
        const w = this.windows.get(`${n}\n${fn}`);
        if (!w) continue;
        value.wall.merge(w.wall);
        value.cpu.merge(w.cpu);
        value.calls += w.calls;
        value.exceptions += w.exceptions;
      }
    } else {
      for (const interval of this.intervals.values()) {
        const t = interval.endMs / 1000;
        if (t <= t0 || t > t1) continue;
        ++value.intervals;
        for (const [name, n] of interval.nodes) {
          if (!node || name === node) value.lost += n.lost;
        }
        for (const f of this.parts(interval, fn, node)) {
          value.wall.addBins(f.wall);
          value.cpu.addBins(f.cpu);
          value.calls += f.calls;
          value.exceptions += f.exceptions;
        }
      }
    }
    if (this.rangeMemo.size > 256) this.rangeMemo.clear();
    this.rangeMemo.set(key, { t0, t1, value });  // until account() changes an interval in it
    return value;
  }

  // Per node over (t0, t1]: {node, host, calls, p50, p99, max} of the wall time (the node
  // filter does not apply: this is the table that chooses it).
  perNode(fn, t0, t1) {
    return this.nodes().map((node) => {
      const s = summarize(this.rangeSketch(fn, 'wall', t0, t1, node));
      return { node, host: this.nodeHosts.get(node), calls: this.rangeCounts(fn, t0, t1, node).calls,
        p50: s.p50, p99: s.p99, max: s.max };
    });
  }

  // The nodes that sent the latest interval.
  latestNodes() {
    const last = this.intervals.get(this.maxSeq);
    return last ? [...last.nodes.keys()] : [];
  }

  // Bytes held by the kept intervals (an estimate, for the benchmark's memory bound).
  bytes() {
    let total = 0;
    for (const interval of this.intervals.values()) {
      for (const n of interval.nodes.values()) {
        for (const f of n.functions.values()) total += f.wall.bytes() + f.cpu.bytes() + 64;
      }
    }
    for (const ofInterval of this.summaries.values()) total += ofInterval.size * 700;
    return total;
  }
}
