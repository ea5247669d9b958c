// Numbers as the console prints them.

// Nanoseconds with 3 significant digits and a unit: "574 ns", "2.15 µs", "41.1 ms", "1.20 s".
export function formatNs(ns) {
  if (ns === null || ns === undefined || Number.isNaN(ns)) return '–';
  if (ns === 0) return '0';
  const units = [[1e9, 's'], [1e6, 'ms'], [1e3, 'µs'], [1, 'ns']];
  for (const [scale, unit] of units) {
    if (Math.abs(ns) >= scale || unit === 'ns') return `${significant(ns / scale)} ${unit}`;
  }
  return String(ns);
}

// A round latency as an axis label: "1 µs", "10 µs", "200 ms", "500 ns" (no trailing zeros).
export function formatRoundNs(ns) {
  if (!(ns > 0)) return formatNs(ns);
  const units = [[1e9, 's'], [1e6, 'ms'], [1e3, 'µs'], [1, 'ns']];
  const [scale, unit] = units.find(([k, u]) => ns >= k || u === 'ns');
  return `${Number((ns / scale).toPrecision(3))} ${unit}`;
}

// The ticks of a log latency axis over [min, max] (ns), at round values only: the powers of ten
// inside it (every other one past 6); where fewer than two, 1-2-5 steps; then 1..9 steps.
export function latencyTicks(min, max) {
  if (!(min > 0) || !(max > min)) return [];
  const low = Math.floor(Math.log10(min));
  const high = Math.ceil(Math.log10(max));
  let ticks = [];
  for (const steps of [[1], [1, 2, 5], [1, 2, 3, 4, 5, 6, 7, 8, 9]]) {
    ticks = [];
    for (let e = low; e <= high; ++e) {
      for (const s of steps) {
        const v = e >= 0 ? s * 10 ** e : s / 10 ** -e;
        if (v >= min && v <= max) ticks.push(v);
      }
    }
    if (ticks.length >= 2) break;
  }
  while (ticks.length > 6) ticks = ticks.filter((v, k) => k % 2 === 0);
  return ticks;
}

// The 1-2-5 value (1, 2, 5, 10, 20 ...) at or below `ns` (or at or above it, `up`): where a
// latency axis starts and ends, so that it has round ticks at both ends at least.
export function roundLatency(ns, up = false) {
  const e = Math.floor(Math.log10(ns));
  const candidates = [];
  for (const k of [e - 1, e, e + 1]) for (const s of [1, 2, 5]) candidates.push(k >= 0 ? s * 10 ** k : s / 10 ** -k);
  return up ? Math.min(...candidates.filter((v) => v >= ns)) : Math.max(...candidates.filter((v) => v <= ns));
}

function significant(x) {
  if (Math.abs(x) >= 100) return x.toFixed(0);
  if (Math.abs(x) >= 10) return x.toFixed(1);
  return x.toFixed(2);
}

// Counts with thin separators: 1 234 567.
export function formatCount(n) {
  if (n === null || n === undefined || Number.isNaN(n)) return '–';
  return Math.round(n).toLocaleString('en-US').replaceAll(',', '\u202f');
}

export function formatRate(n) {
  if (n === null || n === undefined || Number.isNaN(n)) return '–';
  return n >= 100 ? formatCount(n) : n.toFixed(1);
}

export function formatTime(seconds) {
  return new Date(seconds * 1000).toLocaleTimeString('en-GB', { hour12: false });
}
