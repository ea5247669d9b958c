#include "userspace/probes/hist_reader.h"

#include <algorithm>
#include <vector>

#include "bpf/capture.h"
#include "sketch/kernel_histogram.h"
#include "userspace/probes/percpu.h"

namespace orion::probes {

Status ReadKernelHistogram(int map_fd, const void* key, sketch::CountSketch* out) {
  const int cpus = PossibleCpus();
  const size_t stride = (sizeof(hist) + 7) & ~size_t{7};
  std::vector<uint8_t> raw;
  RETURN_IF_ERROR(LookupPercpu(map_fd, key, sizeof(hist), &raw));
  std::vector<uint64_t> slots(CAPTURE_HIST_SLOTS);
  hist_stats stats = {};
  bool any = false;
  for (int cpu = 0; cpu < cpus; ++cpu) {
    const auto* h = reinterpret_cast<const hist*>(raw.data() + cpu * stride);
    if (h->stats.count == 0) continue;
    for (int i = 0; i < CAPTURE_HIST_SLOTS; ++i) slots[i] += h->slots[i];
    stats.count += h->stats.count;
    stats.sum_ns += h->stats.sum_ns;
    stats.min_ns = any ? std::min(stats.min_ns, h->stats.min_ns) : h->stats.min_ns;
    stats.max_ns = std::max(stats.max_ns, h->stats.max_ns);
    any = true;
  }
  out->clear();
  if (!any) return OkStatus();
  RETURN_IF_ERROR(sketch::FoldKernelHistogram(slots, *out));
  out->set_summary(static_cast<double>(stats.sum_ns), static_cast<double>(stats.min_ns),
                   static_cast<double>(stats.max_ns));
  return OkStatus();
}

}  // namespace orion::probes
