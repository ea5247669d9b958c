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
