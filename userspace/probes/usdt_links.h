// Attaches BPF programs to a BEAM's USDT probes and owns the resulting links.
//
// Links are file-descriptor owned: destroying a UsdtLinks (or the process exiting, being
// killed, crashing) detaches every uprobe and decrements every USDT semaphore, so the BEAM
// stops formatting probe arguments. Nothing can be left attached.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "base/status.h"

struct bpf_program;
struct bpf_link;

namespace orion::probes {

class UsdtLinks {
 public:
  UsdtLinks() = default;
  ~UsdtLinks();
  UsdtLinks(const UsdtLinks&) = delete;
  UsdtLinks& operator=(const UsdtLinks&) = delete;
  UsdtLinks(UsdtLinks&& other) noexcept;
  UsdtLinks& operator=(UsdtLinks&& other) noexcept;

  // Attaches `prog` to every site of erlang:<probe> in `binary` for process `pid`, with
  // `cookie` readable through bpf_usdt_cookie().
  Status Attach(bpf_program* prog, pid_t pid, const std::string& binary, const std::string& probe,
                uint64_t cookie);

  size_t size() const { return links_.size(); }
  void DetachAll();

 private:
  std::vector<bpf_link*> links_;
};

}  // namespace orion::probes
