// The kernel's DDSketch in the page: bucket index <-> value, merge, quantile, exactly as the C++
// sketch computes them (sketch/bucket_index.h, sketch/mapping/exponential_mapping.*,
// sketch/ddsketch.h; docs/sketch.md). The boundary table is not repeated here: it is parsed from
// sketch/bucket_index.h itself (the bundle imports the header as text; the tests read it), and
// test/sketch.test.js compares every function with the C++ library's output.
//
//   const mapping = new KernelMapping(parseBucketHeader(headerText));
//   const sketch = new Sketch(mapping);
//   sketch.addBins({zero: 0, bins: [[640, 3], [700, 1]]});   // an interval's delta from the API
//   sketch.quantile(0.99);                                     // ns, within 0.54 %

// The subbucket bits and the 64 boundaries T[k] = ceil(2^(63 + k/64)) of bucket_index.h.
export function parseBucketHeader(text) {
  const bits = /#define\s+ORION_BUCKET_SUBBUCKET_BITS\s+(\d+)/.exec(text);
  const table = /orion_bucket_boundaries\[[^\]]*\]\s*=\s*\{([^}]*)\}/.exec(text);
  if (!bits || !table) throw new Error('bucket_index.h: subbucket bits or boundary table not found');
  const subbucketBits = Number(bits[1]);
  const boundaries = [...table[1].matchAll(/0x([0-9a-fA-F]+)ULL/g)].map((m) => BigInt('0x' + m[1]));
  if (boundaries.length !== 1 << subbucketBits) {
    throw new Error(`bucket_index.h: ${boundaries.length} boundaries, expected ${1 << subbucketBits}`);
  }
  return { subbucketBits, boundaries };
}

const TWO_63 = 1n << 63n;
const MASK_64 = (1n << 64n) - 1n;
const float64 = new Float64Array(1);
const bits64 = new BigUint64Array(float64.buffer);

// floor(a / b) for integers, b > 0.
function floorDiv(a, b) {
  return Math.floor(a / b);
}

// x * 2^n with a single rounding, for x a double and any integer n (ldexp).
function ldexp(x, n) {
  if (n < -1000) return x * 2 ** -500 * 2 ** (n + 500);  // x * 2^-500 is exact for x ~ 2^63
  if (n > 1000) return x * 2 ** 500 * 2 ** (n - 500);
  return x * 2 ** n;
}

// The exact base-2 exponential mapping at scale subbucketBits (gamma = 2^(1/64)): bin i holds
// [gamma^i, gamma^(i+1)), lower-inclusive.
export class KernelMapping {
  constructor({ subbucketBits, boundaries }) {
    this.subbucketBits = subbucketBits;
    this.subbuckets = 1 << subbucketBits;
    this.boundaries = boundaries;
    // gamma = 2^(1/64) rounded to the nearest double: T[1] / 2^63 (Number() rounds to nearest).
    this.gamma = Number(boundaries[1]) / 2 ** 63;
    this.relativeAccuracy = 1 - 2 / (1 + this.gamma);
    // The smallest double >= 2^(63 + k/64): doubles there are multiples of 2^11.
    this.lowerBounds = boundaries.map((t) => Number((t + 2047n) & ~2047n));
  }

  // The number of k in 1..63 with m >= T[k], for a BigInt m with bit 63 set (the header's
  // binary search).
  subIndex(m) {
    let j = 0;
    for (let step = this.subbuckets >> 1; step >= 1; step >>= 1) {
      if (m >= this.boundaries[j + step]) j += step;
    }
    return j;
  }

  // floor(log_gamma v): v a BigInt >= 1, a safe integer >= 1, or any finite double > 0.
  index(v) {
    if (typeof v === 'bigint') return this.indexOfBigInt(v);
    if (Number.isSafeInteger(v)) return this.indexOfBigInt(BigInt(v));
    return this.indexOfDouble(v);
  }

  indexOfBigInt(v) {
    if (v < 1n || v > MASK_64) throw new RangeError(`index of ${v}: not in 1..2^64-1`);
    const e = v.toString(2).length - 1;
    return e * this.subbuckets + this.subIndex((v << BigInt(63 - e)) & MASK_64);
  }

  indexOfDouble(v) {
    if (!(v > 0) || !Number.isFinite(v)) throw new RangeError(`index of ${v}: not a finite value > 0`);
    float64[0] = v;
    const bits = bits64[0];
    const biasedExponent = Number(bits >> 52n);
    const mantissa = bits & ((1n << 52n) - 1n);
    if (biasedExponent === 0) {  // subnormal: v = mantissa * 2^-1074
      const lead = mantissa.toString(2).length - 1;
      return (lead - 1074) * this.subbuckets + this.subIndex((mantissa << BigInt(63 - lead)) & MASK_64);
    }
    return (biasedExponent - 1023) * this.subbuckets + this.subIndex(TWO_63 | (mantissa << 11n));
  }

  // The smallest double in bin i (gamma^i rounded up), as ExponentialMapping::lower_bound.
  lowerBound(i) {
    const exponent = floorDiv(i, this.subbuckets);
    return ldexp(this.lowerBounds[i - exponent * this.subbuckets], exponent - 63);
  }

  // The bin's representative value, within relativeAccuracy of every value in it.
  value(i) {
    return this.lowerBound(i) * (1 + this.relativeAccuracy);
  }
}

// The bins a sketch can hold: the kernel's slots (0..2815) and every exact index of a u64
// (0..4095). Anything else in the API's data is an error.
export const MAX_BINS = 4096;

// A dense sketch of nanosecond latencies in the kernel's mapping: counts per bin, a zero count.
// Merging adds bin for bin; quantile() is DDSketch::quantile.
export class Sketch {
  constructor(mapping) {
    this.mapping = mapping;
    this.counts = new Float64Array(MAX_BINS);
    this.zero = 0;
    this.total = 0;
    this.minIndex = MAX_BINS;
    this.maxIndex = -1;
  }

  clear() {
    if (this.maxIndex >= 0) this.counts.fill(0, this.minIndex, this.maxIndex + 1);
    this.zero = 0;
    this.total = 0;
    this.minIndex = MAX_BINS;
    this.maxIndex = -1;
  }

  add(index, count) {
    if (!(count > 0)) return;
    if (!Number.isInteger(index) || index < 0 || index >= MAX_BINS) {
      throw new RangeError(`bin ${index} is outside 0..${MAX_BINS - 1}`);
    }
    this.counts[index] += count;
    this.total += count;
    if (index < this.minIndex) this.minIndex = index;
    if (index > this.maxIndex) this.maxIndex = index;
  }

  addZero(count) {
    this.zero += count;
    this.total += count;
  }

  // Adds one wire sketch ({zero, bins: [[index, count], ...]}, or a SparseBins).
  addBins(wire) {
    if (!wire) return;
    if (wire instanceof SparseBins) {
      for (let k = 0; k < wire.index.length; ++k) this.add(wire.index[k], wire.count[k]);
    } else {
      for (const [index, count] of wire.bins || []) this.add(index, count);
    }
    if (wire.zero) this.addZero(wire.zero);
  }

  // Removes what addBins(wire) added (a window dropping its oldest interval); counts are exact
  // integers, so the result is what adding the rest would give.
  subtractBins(wire) {
    if (!wire) return;
    for (let k = 0; k < wire.index.length; ++k) {
      this.counts[wire.index[k]] -= wire.count[k];
      this.total -= wire.count[k];
    }
    this.zero -= wire.zero;
    this.total -= wire.zero;
    while (this.maxIndex >= this.minIndex && this.counts[this.maxIndex] === 0) --this.maxIndex;
    while (this.minIndex <= this.maxIndex && this.counts[this.minIndex] === 0) ++this.minIndex;
    if (this.maxIndex < this.minIndex) {
      this.minIndex = MAX_BINS;
      this.maxIndex = -1;
    }
  }

  merge(other) {
    for (let i = other.minIndex; i <= other.maxIndex; ++i) this.add(i, other.counts[i]);
    if (other.zero) this.addZero(other.zero);
  }

  count() {
    return this.total;
  }

  // The value at quantile q in [0, 1] (DDSketch::quantile for values >= 0); NaN when empty.
  quantile(q) {
    if (!(q >= 0 && q <= 1)) throw new RangeError(`quantile must be in [0, 1], not ${q}`);
    if (this.total === 0) return NaN;
    const rank = Math.max(0, q * (this.total - 1));
    if (this.maxIndex < 0) return 0;
    if (rank < this.zero) return 0;
    return this.mapping.value(this.keyAtRank(rank - this.zero));
  }

  keyAtRank(rank) {
    let cumulative = 0;
    for (let i = this.minIndex; i <= this.maxIndex; ++i) {
      cumulative += this.counts[i];
      if (cumulative > rank) return i;
    }
    return this.maxIndex;
  }

  // The largest value's bin value (DDSketch::max() of folded bins); NaN when empty.
  max() {
    if (this.total === 0) return NaN;
    return this.maxIndex < 0 ? 0 : this.mapping.value(this.maxIndex);
  }

  // Non-empty bins, ascending: [[index, count], ...].
  bins() {
    const out = [];
    for (let i = this.minIndex; i <= this.maxIndex; ++i) if (this.counts[i]) out.push([i, this.counts[i]]);
    return out;
  }
}

// One interval's sketch as the page keeps it: the non-empty bins (a few dozen per function and
// interval, instead of a 4096-bin dense array) in one buffer: u16 indexes, u32 counts (f64 if a
// count does not fit).
export class SparseBins {
  constructor(wire) {
    const bins = (wire && wire.bins) || [];
    const n = bins.length;
    const wide = bins.some((b) => !(b[1] >= 0 && b[1] <= 0xffffffff && Number.isInteger(b[1])));
    const countOffset = (2 * n + 7) & ~7;
    const buffer = new ArrayBuffer(countOffset + n * (wide ? 8 : 4));
    this.index = new Uint16Array(buffer, 0, n);
    this.count = wide ? new Float64Array(buffer, countOffset, n) : new Uint32Array(buffer, countOffset, n);
    this.zero = (wire && wire.zero) || 0;
    let total = this.zero;
    for (let k = 0; k < n; ++k) {
      const [index, count] = bins[k];
      if (!Number.isInteger(index) || index < 0 || index >= MAX_BINS) {
        throw new RangeError(`bin ${index} is outside 0..${MAX_BINS - 1}`);
      }
      this.index[k] = index;
      this.count[k] = count;
      total += count;
    }
    this.total = total;
  }

  bytes() {
    return this.index.buffer.byteLength + 96;
  }
}

// The quantiles the console shows, in this order.
export const QUANTILES = [
  { key: 'p50', q: 0.5 },
  { key: 'p90', q: 0.9 },
  { key: 'p99', q: 0.99 },
  { key: 'p999', q: 0.999 },
];

// {count, p50, p90, p99, p999, max} of a sketch (NaN quantiles when empty).
// One pass over the bins for every quantile (QUANTILES ascending): the values quantile(q) gives,
// computed the same way (rank - zero count against the positive bins' cumulative count).
export function summarize(sketch) {
  const out = { count: sketch.count() };
  const n = sketch.total;
  if (n === 0) {
    for (const { key } of QUANTILES) out[key] = NaN;
    out.max = NaN;
    return out;
  }
  let k = 0;
  for (; k < QUANTILES.length; ++k) {
    if (sketch.maxIndex >= 0 && !(Math.max(0, QUANTILES[k].q * (n - 1)) < sketch.zero)) break;
    out[QUANTILES[k].key] = 0;
  }
  let cumulative = 0;
  for (let i = sketch.minIndex; i <= sketch.maxIndex && k < QUANTILES.length; ++i) {
    cumulative += sketch.counts[i];
    while (k < QUANTILES.length && cumulative > Math.max(0, QUANTILES[k].q * (n - 1)) - sketch.zero) {
      out[QUANTILES[k++].key] = sketch.mapping.value(i);
    }
  }
  for (; k < QUANTILES.length; ++k) out[QUANTILES[k].key] = sketch.mapping.value(sketch.maxIndex);
  out.max = sketch.max();
  return out;
}
