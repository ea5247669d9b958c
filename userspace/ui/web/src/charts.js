// The charts of a capture: latency over time (uPlot, log scale) with the heatmap of the sketch's
// buckets drawn under the percentile lines, calls per second (uPlot), and the histogram of a
// selected time range (a canvas of its own).
import uPlot from 'uplot';

import { formatCount, formatNs, formatTime } from './format.js';

// The time axis: wall-clock times, a label every 70 px or more.
const TIME_AXIS = { space: 70, values: (u, values) => values.map((v) => formatTime(v)) };

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

// Paints heatmap `map` (CaptureData.heatmap) into an offscreen canvas, one pixel per cell.
function heatmapImage(map, canvas) {
  canvas.width = map.columns;
  canvas.height = map.rows;
  const context = canvas.getContext('2d');
  const image = context.createImageData(map.columns, map.rows);
  const scale = 255 / Math.log1p(map.maxCount);
  for (let column = 0; column < map.columns; ++column) {
    for (let r = 0; r < map.rows; ++r) {
      const count = map.cells[column * map.rows + r];
      if (!count) continue;
      const colour = Math.round(Math.log1p(count) * scale);
      const pixel = ((map.rows - 1 - r) * map.columns + column) * 4;  // row 0 at the bottom
      image.data[pixel] = PALETTE[colour * 3];
      image.data[pixel + 1] = PALETTE[colour * 3 + 1];
      image.data[pixel + 2] = PALETTE[colour * 3 + 2];
      image.data[pixel + 3] = 235;
    }
  }
  context.putImageData(image, 0, 0);
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
    this.image = document.createElement('canvas');
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
      axes: [TIME_AXIS, { size: 64, values: (u, values) => values.map(formatNs) }],
      cursor: { drag: { x: true, y: false, setScale: false } },
      legend: { live: true },
      hooks: {
        drawClear: [(u) => this.drawHeatmap(u)],
        setSelect: [(u) => this.selected(u)],
      },
    }, [[], [], [], [], [], []], element);
  }

  // The data: `series` (CaptureData.series) lines for `kind`, and the heatmap.
  update(series, kind, map) {
    this.map = map;
    if (map) heatmapImage(map, this.image);
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
    if (low === high) return [low / 2, high * 2];
    return [low / 1.05, high * 1.05];
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
    context.drawImage(this.image, x0, yTop, x1 - x0, yBottom - yTop);
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
