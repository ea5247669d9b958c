#include "userspace/probes/percpu.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <cerrno>
#include <cstring>

namespace orion::probes {

int PossibleCpus() {
  static const int n = libbpf_num_possible_cpus();
  return n;
}

Status LookupPercpu(int map_fd, const void* key, size_t value_size, std::vector<uint8_t>* out) {
  const size_t stride = (value_size + 7) & ~size_t{7};
  out->assign(stride * PossibleCpus(), 0);
  if (bpf_map_lookup_elem(map_fd, key, out->data()) != 0) {
    return Internal("reading a per-CPU BPF map: ", std::strerror(errno));
  }
  return OkStatus();
}

StatusOr<uint64_t> SumPercpuU64(int map_fd, uint32_t key) {
  std::vector<uint8_t> raw;
  RETURN_IF_ERROR(LookupPercpu(map_fd, &key, sizeof(uint64_t), &raw));
  uint64_t sum = 0;
  for (int cpu = 0; cpu < PossibleCpus(); ++cpu) {
    uint64_t v;
    std::memcpy(&v, raw.data() + cpu * sizeof(uint64_t), sizeof(v));
    sum += v;
  }
  return sum;
}

uint64_t ObjectMapMemoryBytes(const bpf_object* obj) {
  uint64_t total = 0;
  for (const bpf_map* map = bpf_object__next_map(obj, nullptr); map;
       map = bpf_object__next_map(obj, map)) {
    uint64_t value = bpf_map__value_size(map);
    const auto type = bpf_map__type(map);
    if (type == BPF_MAP_TYPE_PERCPU_ARRAY || type == BPF_MAP_TYPE_PERCPU_HASH ||
        type == BPF_MAP_TYPE_LRU_PERCPU_HASH) {
      value *= PossibleCpus();
    }
    total += (bpf_map__key_size(map) + value) * bpf_map__max_entries(map);
  }
  return total;
}

}  // namespace orion::probes
