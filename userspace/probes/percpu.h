// Reading per-CPU BPF maps from userspace.
#pragma once

#include <cstdint>
#include <vector>

#include "base/status.h"

struct bpf_object;

namespace orion::probes {

// Number of possible CPUs, the stride of per-CPU map values.
int PossibleCpus();

// The per-CPU u64 values of `key` in a per-CPU array or hash map, summed.
StatusOr<uint64_t> SumPercpuU64(int map_fd, uint32_t key);

// The raw per-CPU values of `key`: PossibleCpus() blocks of `value_size` bytes (each
// rounded up to 8, as the kernel lays them out).
Status LookupPercpu(int map_fd, const void* key, size_t value_size, std::vector<uint8_t>* out);

// Bytes of kernel memory the maps of a loaded object take (per-CPU values once per CPU):
// what a capture or a top costs, for -v and docs/performance.md.
uint64_t ObjectMapMemoryBytes(const bpf_object* obj);

}  // namespace orion::probes
