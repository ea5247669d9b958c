// The charts of a capture: latency over time (uPlot, log scale) with the heatmap of the sketch's
// buckets drawn under the percentile lines, calls per second (uPlot), and the histogram of a
// selected time range (a canvas of its own).
import uPlot from 'uplot';

import { formatCount, formatNs, formatRoundNs, formatTime, latencyTicks, roundLatency } from './format.js';

// The time axis: wall-clock times, a label every 70 px or more, at whole seconds only (the
// labels have no fraction: a sub-second step would print the same second twice).
const TIME_AXIS = { space: 70, incrs: [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600],
  values: (u, values) => values.map((v) => formatTime(v)) };

// 256 colours from dark blue through teal and green to yellow (viridis' stops), for counts on a
// log scale.
const STOPS = [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]];
const PALETTE = (() => {
  const lut = new Uint8ClampedArray(256 * 3);
  for (let i = 0; i < 256; ++i) {
    const x = (i / 255) * (STOPS.length - 1);
    const k = Math.min(Math.floor(x), STOPS.length - 2);
    const f = x - k;
    for (let c = 0; c < 3; ++c) lut[i * 3 + c] = STOPS[k][c] + (STOPS[k + 1][c] - STOPS[k][c]) * f;
  }
  return lut;
})();

export const LINE_COLOURS = { p50: '#1f77b4', p90: '#2ca02c', p99: '#ff7f0e', p999: '#d62728', max: '#111' };
const LINE_LABELS = { p50: 'p50', p90: 'p90', p99: 'p99', p999: 'p99.9', max: 'max' };
const LINE_KEYS = ['p50', 'p90', 'p99', 'p999', 'max'];

// The heatmap's image (CaptureData.heatmapColumns): an offscreen canvas of one pixel per cell,
// a ring of `keep` columns where interval seq lives in column seq % keep, so a new interval
// paints one column and a sliding window moves nothing. Each slot remembers the column object
// it shows: only the columns that changed (new, replaced, gone) are painted again. Everything is
// repainted when the picture changes as a whole: another function, kind or node filter (`key`),
// other rows, or the colour scale. The scale is log(1 + count) against a ceiling, the power of two
// at or above the highest count, that moves only when the highest count passes it or falls below
// a quarter of it: the colours of a cell stay put from one interval to the next.
class HeatmapImage {
  constructor() {
    this.canvas = document.createElement('canvas');
    this.key = null;
  }

  update(map, key) {
    const context = this.canvas.getContext('2d');
    const outgrown = !this.ceiling || map.maxCount > this.ceiling || map.maxCount < this.ceiling / 4;
    if (key !== this.key || map.rowMin !== this.rowMin || map.rowMax !== this.rowMax ||
        map.keep !== this.canvas.width || outgrown) {
      this.key = key;
      this.rowMin = map.rowMin;
      this.rowMax = map.rowMax;
      if (outgrown) this.ceiling = 2 ** Math.ceil(Math.log2(Math.max(1, map.maxCount)));
      this.canvas.width = map.keep;  // clears it
      this.canvas.height = map.rows;
      this.slotSeq = new Float64Array(map.keep).fill(NaN);
      this.slotColumn = new Array(map.keep);
      this.pixels = context.createImageData(1, map.rows);
    }
    const scale = 255 / Math.log1p(this.ceiling);
    const data = this.pixels.data;
    for (let seq = map.firstSeq; seq < map.firstSeq + map.columns; ++seq) {
      const slot = seq % map.keep;
      const column = map.column(seq);
      if (this.slotSeq[slot] === seq && this.slotColumn[slot] === column) continue;
      this.slotSeq[slot] = seq;
      this.slotColumn[slot] = column;
      data.fill(0);
      if (column) {
        for (let k = 0; k < column.row.length; ++k) {
          const colour = Math.min(255, Math.round(Math.log1p(column.count[k]) * scale));
          const pixel = (map.rowMax - column.row[k]) * 4;  // row 0 at the bottom
          data[pixel] = PALETTE[colour * 3];
          data[pixel + 1] = PALETTE[colour * 3 + 1];
          data[pixel + 2] = PALETTE[colour * 3 + 2];
          data[pixel + 3] = 235;
        }
      }
      context.putImageData(this.pixels, slot, 0);
    }
  }

  // Draws columns firstSeq .. firstSeq+columns-1 into [x0, x1] x [yTop, yBottom] of `context`
  // (one or, where the ring wraps, two pieces).
  draw(context, map, x0, x1, yTop, yBottom) {
    const perColumn = (x1 - x0) / map.columns;
    const start = map.firstSeq % map.keep;
    const first = Math.min(map.columns, map.keep - start);
    context.drawImage(this.canvas, start, 0, first, map.rows, x0, yTop, first * perColumn, yBottom - yTop);
    if (first < map.columns) {
      context.drawImage(this.canvas, 0, 0, map.columns - first, map.rows, x0 + first * perColumn, yTop,
        (map.columns - first) * perColumn, yBottom - yTop);
    }
  }
}

// What the charts share: a uPlot of a given height, a time range dragged across it reported to
// onSelect(t0, t1) (seconds; onSelect(null) when cleared), and shown when chosen elsewhere.
class TimeChart {
  constructor(height, onSelect) {
    this.height = height;
    this.onSelect = onSelect;
  }

  selected(u) {
    if (!this.onSelect) return;
    if (u.select.width < 2) {
      this.onSelect(null);
      return;
    }
    const t0 = u.posToVal(u.select.left, 'x');
    const t1 = u.posToVal(u.select.left + u.select.width, 'x');
    this.onSelect(t0, t1);
  }

  // Shows the time range [t0, t1] (seconds) as the selection, or none; no hook fires.
  showRange(range) {
    const plot = this.plot;
    if (!range) {
      plot.setSelect({ left: 0, top: 0, width: 0, height: 0 }, false);
      return;
    }
    const left = Math.max(0, plot.valToPos(range[0], 'x'));
    const right = Math.min(plot.over.clientWidth, plot.valToPos(range[1], 'x'));
    plot.setSelect({ left, top: 0, width: Math.max(0, right - left), height: plot.over.clientHeight }, false);
  }

  setWidth(width) {
    this.plot.setSize({ width, height: this.height });
  }

  destroy() {
    this.plot.destroy();
  }
}

// A latency chart: percentile lines over the heatmap.
export class LatencyChart extends TimeChart {
  constructor(element, { title, width, onSelect }) {
    super(210, onSelect);
    this.map = null;
    this.image = new HeatmapImage();
    const series = [{}];
    for (const key of LINE_KEYS) {
      series.push({ label: LINE_LABELS[key], stroke: LINE_COLOURS[key], width: key === 'max' ? 1 : 1.5,
        dash: key === 'max' ? [4, 3] : undefined, value: (u, v) => formatNs(v), spanGaps: false });
    }
    this.plot = new uPlot({
      title,
      width,
      height: this.height,
      series,
      scales: {
        x: { time: true, range: (u, min, max) => this.xRange(min, max) },
        y: { distr: 3, log: 10, range: (u, min, max) => this.yRange(min, max) },
      },
      // Round latencies only (1 µs, 10 µs, 100 µs, 1 ms...), whatever the data's range; the labels
      // drawn are kept in the element's data-y-ticks (what the browser tests read).
      axes: [TIME_AXIS, { size: 64, splits: (u, axis, min, max) => latencyTicks(min, max),
        filter: (u, splits) => splits,
        values: (u, splits) => {
          const labels = splits.map(formatRoundNs);
          element.dataset.yTicks = labels.join('|');
          return labels;
        } }],
      cursor: { drag: { x: true, y: false, setScale: false } },
      legend: { live: true },
      hooks: {
        drawClear: [(u) => this.drawHeatmap(u)],
        setSelect: [(u) => this.selected(u)],
      },
    }, [[], [], [], [], [], []], element);
  }

  // The data: `series` (CaptureData.series) lines for `kind`, and the heatmap
  // (CaptureData.heatmapColumns) of what `key` names (function, kind, node filter).
  update(series, kind, map, key) {
    this.map = map;
    if (map) this.image.update(map, key);
    // batch() draws now (setData alone defers the drawing to a microtask): the page's draw
    // times include the canvas work.
    this.plot.batch(() => this.plot.setData([series.t, ...LINE_KEYS.map((key) => series[kind][key])]));
  }

  xRange(min, max) {
    if (this.map) return [Math.min(min, this.map.t0), Math.max(max, this.map.t0 + this.map.columns * this.map.dt)];
    return min === max ? [min - 1, max + 1] : [min, max];
  }

  yRange(min, max) {
    let low = min;
    let high = max;
    if (this.map) {
      low = Math.min(low ?? Infinity, this.map.rowLow(this.map.rowMin));
      high = Math.max(high ?? 0, this.map.rowHigh(this.map.rowMax));
    }
    if (!(low > 0) || !(high > 0)) return [1, 1e9];
    // From a round latency to a round latency (1-2-5), so the axis has round ticks at both ends.
    return [roundLatency(low / 1.05), roundLatency(high * 1.05, true)];
  }

  drawHeatmap(u) {
    const map = this.map;
    if (!map) return;
    const context = u.ctx;
    const x0 = u.valToPos(map.t0, 'x', true);
    const x1 = u.valToPos(map.t0 + map.columns * map.dt, 'x', true);
    const yTop = u.valToPos(map.rowHigh(map.rowMax), 'y', true);
    const yBottom = u.valToPos(map.rowLow(map.rowMin), 'y', true);
    context.save();
    context.beginPath();
    context.rect(u.bbox.left, u.bbox.top, u.bbox.width, u.bbox.height);
    context.clip();
    context.imageSmoothingEnabled = false;
    this.image.draw(context, map, x0, x1, yTop, yBottom);
    context.restore();
  }
}

// Calls per second.
export class RateChart extends TimeChart {
  constructor(element, { width, onSelect }) {
    super(130, onSelect);
    this.plot = new uPlot({
      title: 'calls/s',
      width,
      height: this.height,
      series: [{}, { label: 'calls/s', stroke: '#555', fill: 'rgba(85,85,85,0.12)', width: 1.5,
        value: (u, v) => (v === null ? '–' : formatCount(v)) }],
      scales: { x: { time: true } },
      axes: [TIME_AXIS, { size: 64, values: (u, values) => values.map((v) => formatCount(v)) }],
      cursor: { drag: { x: true, y: false, setScale: false } },
      hooks: { setSelect: [(u) => this.selected(u)] },
    }, [[], []], element);
  }

  update(series, xRange) {
    this.plot.batch(() => {
      this.plot.setData([series.t, series.callsPerSecond], false);
      if (xRange) this.plot.setScale('x', { min: xRange[0], max: xRange[1] });
      else this.plot.setScale('x', { min: series.t[0] ?? 0, max: series.t[series.t.length - 1] ?? 1 });
    });
  }
}

// The histogram of a sketch on a canvas: one bar per coarse bucket (rowsPerOctave per power of
// two), log-scaled latency on x, count on y, and the quantiles marked.
export function drawHistogram(canvas, sketch, quantiles, { rowsPerOctave = 16 } = {}) {
  const width = canvas.clientWidth || 560;
  const height = canvas.clientHeight || 160;
  const ratio = window.devicePixelRatio || 1;
  canvas.width = width * ratio;
  canvas.height = height * ratio;
  const context = canvas.getContext('2d');
  context.scale(ratio, ratio);
  context.clearRect(0, 0, width, height);
  if (sketch.count() === 0 || sketch.maxIndex < 0) {
    context.fillStyle = '#777';
    context.fillText('no call in this range', 10, 20);
    return;
  }
  const binsPerBar = sketch.mapping.subbuckets / rowsPerOctave;
  const first = Math.floor(sketch.minIndex / binsPerBar);
  const last = Math.floor(sketch.maxIndex / binsPerBar);
  const bars = new Float64Array(last - first + 1);
  for (let i = sketch.minIndex; i <= sketch.maxIndex; ++i) bars[Math.floor(i / binsPerBar) - first] += sketch.counts[i];
  const peak = Math.max(...bars);
  const left = 8;
  const bottom = height - 18;
  const plotWidth = width - 2 * left;
  const barWidth = plotWidth / bars.length;
  const low = Math.log(sketch.mapping.lowerBound(first * binsPerBar));
  const high = Math.log(sketch.mapping.lowerBound((last + 1) * binsPerBar));
  const xOf = (ns) => left + ((Math.log(ns) - low) / (high - low)) * plotWidth;
  context.fillStyle = '#3b528b';
  for (let b = 0; b < bars.length; ++b) {
    if (!bars[b]) continue;
    const h = Math.max(1, (bars[b] / peak) * (bottom - 14));
    context.fillRect(left + b * barWidth, bottom - h, Math.max(1, barWidth - 1), h);
  }
  context.fillStyle = '#333';
  context.font = '11px sans-serif';
  context.fillText(formatNs(sketch.mapping.lowerBound(first * binsPerBar)), left, height - 4);
  const rightLabel = formatNs(sketch.mapping.lowerBound((last + 1) * binsPerBar));
  context.fillText(rightLabel, width - left - context.measureText(rightLabel).width, height - 4);
  for (const [key, value] of Object.entries(quantiles)) {
    if (!(value > 0) || !LINE_COLOURS[key]) continue;
    const x = xOf(value);
    context.strokeStyle = LINE_COLOURS[key];
    context.beginPath();
    context.moveTo(x, 12);
    context.lineTo(x, bottom);
    context.stroke();
    context.fillStyle = LINE_COLOURS[key];
    context.fillText(LINE_LABELS[key], Math.min(x + 2, width - 30), 10);
  }
}
