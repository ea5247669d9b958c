#include "userspace/probes/probe_counter.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <cerrno>
#include <cstring>

#include "bpf/probe_count.h"
#include "probe_count.skel.h"
#include "userspace/probes/percpu.h"

namespace orion::probes {
namespace {

bool Arg1IsMfa(const std::string& probe) {
  return probe == "global__function__entry" || probe == "local__function__entry" ||
         probe == "function__return";
}

}  // namespace

std::vector<std::string> ProbeCounter::DefaultProbes() {
  return {"global__function__entry", "local__function__entry", "function__return",
          "exception__catch",        "process__scheduled",     "process__exit",
          "message__send",           "message__queued",        "gc_minor__start",
          "gc_major__start",         "orion__call",            "orion__calls"};
}

StatusOr<std::unique_ptr<ProbeCounter>> ProbeCounter::Start(const beam::BeamProcess& beam,
                                                            const std::vector<std::string>& probes,
                                                            const std::string& target_mfa) {
  if (probes.size() > PROBE_COUNT_MAX_PROBES) {
    return InvalidArgument("at most ", PROBE_COUNT_MAX_PROBES, " probes can be counted at once");
  }
  if (target_mfa.size() >= PROBE_COUNT_MFA_LEN) {
    return InvalidArgument("MFA longer than ", PROBE_COUNT_MFA_LEN - 1, " bytes: ", target_mfa);
  }
  std::unique_ptr<ProbeCounter> counter(new ProbeCounter());
  counter->probes_ = probes;
  counter->skel_ = probe_count_bpf__open();
  if (!counter->skel_) return Internal("opening the probe_count BPF object: ", std::strerror(errno));
  std::memcpy(const_cast<char*>(counter->skel_->rodata->target_mfa), target_mfa.data(),
              target_mfa.size());
  counter->skel_->rodata->target_mfa_len = static_cast<int>(target_mfa.size());
  if (int err = probe_count_bpf__load(counter->skel_)) {
    return Internal("loading the probe_count BPF program: ", std::strerror(-err));
  }
  for (size_t slot = 0; slot < probes.size(); ++slot) {
    uint64_t cookie = slot | (Arg1IsMfa(probes[slot]) ? PROBE_COUNT_ARG1_IS_MFA : 0);
    RETURN_IF_ERROR(counter->links_.Attach(counter->skel_->progs.count_probe, beam.pid,
                                           beam.attach_path, probes[slot], cookie));
  }
  return counter;
}

ProbeCounter::~ProbeCounter() {
  links_.DetachAll();
  probe_count_bpf__destroy(skel_);
}

StatusOr<std::vector<ProbeCounter::Count>> ProbeCounter::Read() const {
  std::vector<Count> counts;
  const int hits_fd = bpf_map__fd(skel_->maps.hits);
  const int target_fd = bpf_map__fd(skel_->maps.target_hits);
  for (uint32_t slot = 0; slot < probes_.size(); ++slot) {
    Count c;
    c.probe = probes_[slot];
    ASSIGN_OR_RETURN(c.hits, SumPercpuU64(hits_fd, slot));
    ASSIGN_OR_RETURN(c.target_hits, SumPercpuU64(target_fd, slot));
    counts.push_back(std::move(c));
  }
  return counts;
}

}  // namespace orion::probes
