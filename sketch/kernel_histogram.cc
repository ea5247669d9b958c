#include "sketch/kernel_histogram.h"

#include "sketch/bucket_index.h"

namespace orion::sketch {

Status FoldKernelHistogram(std::span<const uint64_t> slots, CountSketch& sketch) {
  if (!sketch.mapping().is_kernel()) {
    return InvalidArgument("kernel buckets fold only into a sketch with the kernel's mapping, not ",
                           sketch.mapping().Describe());
  }
  if (slots.size() != ORION_BUCKET_COUNT) {
    return InvalidArgument("a kernel histogram has ", ORION_BUCKET_COUNT, " slots, not ",
                           slots.size());
  }
  for (int slot = 0; slot < ORION_BUCKET_COUNT; ++slot) {
    if (orion_bucket_is_zero(slot)) {
      sketch.add_zero_count(slots[slot]);
    } else {
      sketch.add_bucket_counts(slot, slots[slot]);
    }
  }
  return OkStatus();
}

}  // namespace orion::sketch
