// Google Benchmark of sketch/ (scripts/bench.sh sketch): add per mapping, folding kernel buckets,
// merge, quantile, encode/decode, and in the same run the naive baseline they replace: keeping
// every value in a vector and sorting it for exact quantiles.
//
// Every benchmark reports items_per_second with one item = one operation (one value added, one
// bucket folded, one merge, one quantile, one encode or decode), so ns/op = 1e9 / items/s.
// Adds run in batches of kBatch values, as a loop over values would.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "sketch/bucket_index.h"
#include "sketch/ddsketch.h"
#include "sketch/encoding/ddsketch_encoding.h"
#include "sketch/kernel_histogram.h"

namespace orion::sketch {
namespace {

constexpr size_t kValues = 1 << 16;      // values cycled through by the add benchmarks
constexpr size_t kBatch = 256;           // values added per iteration of an add benchmark
constexpr size_t kNaiveValues = 100000;  // values behind one naive quantile or merge

// Latency-like values: lognormal around 50 us, over about 5 decades.
std::vector<double> Latencies(size_t n, uint64_t seed) {
  std::mt19937_64 random(seed);
  std::lognormal_distribution<double> latency(std::log(5e4), 1.5);
  std::vector<double> values(n);
  for (double& v : values) v = std::round(latency(random)) + 1;
  return values;
}

std::vector<uint64_t> IntegerLatencies(size_t n, uint64_t seed) {
  std::vector<uint64_t> values;
  for (double v : Latencies(n, seed)) values.push_back(static_cast<uint64_t>(v));
  return values;
}

IndexMapping MappingNamed(int which) {
  switch (which) {
    case 1:
      return *IndexMapping::Logarithmic(0.01);
    case 2:
      return *IndexMapping::LinearlyInterpolated(0.01);
    case 3:
      return *IndexMapping::CubicallyInterpolated(0.01);
    default:
      return IndexMapping::Kernel();
  }
}

// A kernel-mapping sketch with `bins` adjacent non-empty bins from 1 us up.
CountSketch SketchWithBins(int bins, uint64_t seed) {
  std::mt19937_64 random(seed);
  CountSketch sketch(IndexMapping::Kernel());
  const int first = sketch.mapping().index(uint64_t{1000});
  for (int i = 0; i < bins; ++i) sketch.add_bucket_counts(first + i, 1 + random() % 1000);
  return sketch;
}

// Integer nanoseconds through the kernel's integer path: what `orion sketch summarize` and a
// user-space probe do per value.
void BM_AddIntegerKernel(benchmark::State& state) {
  const std::vector<uint64_t> values = IntegerLatencies(kValues, 1);
  CountSketch sketch(IndexMapping::Kernel());
  size_t i = 0;
  for (auto _ : state) {
    for (size_t j = 0; j < kBatch; ++j) {
      if (!sketch.add_integer(values[i + j]).ok()) state.SkipWithError("add failed");
    }
    i = (i + kBatch) & (kValues - 1);
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations() * kBatch);
}
BENCHMARK(BM_AddIntegerKernel);

// Doubles, per mapping: 0 kernel, 1 logarithmic, 2 linear, 3 cubic (relative accuracy 1 %).
void BM_AddDouble(benchmark::State& state) {
  const std::vector<double> values = Latencies(kValues, 2);
  CountSketch sketch(MappingNamed(static_cast<int>(state.range(0))));
  state.SetLabel(sketch.mapping().Describe());
  size_t i = 0;
  for (auto _ : state) {
    for (size_t j = 0; j < kBatch; ++j) {
      if (!sketch.add(values[i + j]).ok()) state.SkipWithError("add failed");
    }
    i = (i + kBatch) & (kValues - 1);
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations() * kBatch);
}
BENCHMARK(BM_AddDouble)->ArgName("mapping")->DenseRange(0, 3);

// Folding one interval of the kernel's histogram (2,816 slots), per slot.
void BM_AddBucketCounts(benchmark::State& state) {
  std::mt19937_64 random(3);
  std::vector<uint64_t> slots(ORION_BUCKET_COUNT);
  for (uint64_t& count : slots) count = random() % 100;
  CountSketch sketch(IndexMapping::Kernel());
  for (auto _ : state) benchmark::DoNotOptimize(FoldKernelHistogram(slots, sketch));
  state.SetItemsProcessed(state.iterations() * ORION_BUCKET_COUNT);
}
BENCHMARK(BM_AddBucketCounts);

// Merging a 2,000-bin sketch into another 2,000-bin sketch.
void BM_Merge(benchmark::State& state) {
  CountSketch into = SketchWithBins(2000, 4);
  const CountSketch other = SketchWithBins(2000, 5);
  for (auto _ : state) benchmark::DoNotOptimize(into.merge(other));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Merge);

// p99 of a 2,000-bin sketch (a walk over most of its bins).
void BM_Quantile(benchmark::State& state) {
  const CountSketch sketch = SketchWithBins(2000, 6);
  for (auto _ : state) benchmark::DoNotOptimize(sketch.quantile(0.99));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Quantile);

void BM_Encode(benchmark::State& state) {
  const CountSketch sketch = SketchWithBins(2000, 7);
  for (auto _ : state) benchmark::DoNotOptimize(EncodeDDSketch(sketch));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Encode);

void BM_Decode(benchmark::State& state) {
  const std::vector<uint8_t> bytes = EncodeDDSketch(SketchWithBins(2000, 8));
  for (auto _ : state) benchmark::DoNotOptimize(DecodeDDSketch<DenseStore<uint64_t>>(bytes));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Decode);

// Naive baseline: keep every value (push_back into a vector).
void BM_NaiveAdd(benchmark::State& state) {
  const std::vector<double> values = Latencies(kValues, 2);
  std::vector<double> kept;
  size_t i = 0;
  for (auto _ : state) {
    if (kept.size() >= kNaiveValues) kept.clear();
    for (size_t j = 0; j < kBatch; ++j) kept.push_back(values[i + j]);
    i = (i + kBatch) & (kValues - 1);
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations() * kBatch);
}
BENCHMARK(BM_NaiveAdd);

// Naive baseline: an exact quantile of 100,000 kept values (sort a copy, index it).
void BM_NaiveQuantile(benchmark::State& state) {
  const std::vector<double> values = Latencies(kNaiveValues, 9);
  for (auto _ : state) {
    std::vector<double> sorted = values;
    std::sort(sorted.begin(), sorted.end());
    benchmark::DoNotOptimize(sorted[static_cast<size_t>(0.99 * (sorted.size() - 1))]);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_NaiveQuantile);

// Naive baseline: merging two sets of 100,000 kept values (concatenation).
void BM_NaiveMerge(benchmark::State& state) {
  const std::vector<double> a = Latencies(kNaiveValues, 10);
  const std::vector<double> b = Latencies(kNaiveValues, 11);
  for (auto _ : state) {
    std::vector<double> merged;
    merged.reserve(a.size() + b.size());
    merged.insert(merged.end(), a.begin(), a.end());
    merged.insert(merged.end(), b.begin(), b.end());
    benchmark::DoNotOptimize(merged.data());
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_NaiveMerge);

}  // namespace
}  // namespace orion::sketch

BENCHMARK_MAIN();
