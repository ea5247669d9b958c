#include "userspace/probes/hist_reader.h"

#include <algorithm>

#include "bpf/capture.h"
#include "sketch/kernel_histogram.h"
#include "userspace/probes/percpu.h"

namespace orion::probes {

HistogramSum::HistogramSum() : slots_(ORION_BUCKET_COUNT) {}

void HistogramSum::Add(uint64_t count, uint64_t sum_ns, uint64_t min_ns, uint64_t max_ns,
                       const uint64_t* slots) {
  if (count == 0) return;
  for (int i = 0; i < ORION_BUCKET_COUNT; ++i) slots_[i] += slots[i];
  min_ns_ = count_ == 0 ? min_ns : std::min(min_ns_, min_ns);
  max_ns_ = std::max(max_ns_, max_ns);
  count_ += count;
  sum_ns_ += sum_ns;
}

Status HistogramSum::FoldInto(sketch::CountSketch* out) const {
  out->clear();
  if (count_ == 0) return OkStatus();
  RETURN_IF_ERROR(sketch::FoldKernelHistogram(slots_, *out));
  out->set_summary(static_cast<double>(sum_ns_), static_cast<double>(min_ns_),
                   static_cast<double>(max_ns_));
  return OkStatus();
}

Status ReadKernelHistogram(int map_fd, const void* key, sketch::CountSketch* out) {
  static_assert(CAPTURE_HIST_SLOTS == ORION_BUCKET_COUNT && sizeof(__u64) == sizeof(uint64_t));
  const int cpus = PossibleCpus();
  const size_t stride = (sizeof(hist) + 7) & ~size_t{7};
  std::vector<uint8_t> raw;
  RETURN_IF_ERROR(LookupPercpu(map_fd, key, sizeof(hist), &raw));
  HistogramSum sum;
  for (int cpu = 0; cpu < cpus; ++cpu) {
    const auto* h = reinterpret_cast<const hist*>(raw.data() + cpu * stride);
    sum.Add(h->stats.count, h->stats.sum_ns, h->stats.min_ns, h->stats.max_ns,
            reinterpret_cast<const uint64_t*>(h->slots));  // __u64 is unsigned long long
  }
  return sum.FoldInto(out);
}

}  // namespace orion::probes
