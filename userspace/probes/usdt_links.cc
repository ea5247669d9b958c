#include "userspace/probes/usdt_links.h"

#include <bpf/libbpf.h>

#include <cerrno>
#include <cstring>
#include <utility>

namespace orion::probes {

UsdtLinks::~UsdtLinks() { DetachAll(); }

UsdtLinks::UsdtLinks(UsdtLinks&& other) noexcept : links_(std::move(other.links_)) {
  other.links_.clear();
}

UsdtLinks& UsdtLinks::operator=(UsdtLinks&& other) noexcept {
  if (this != &other) {
    DetachAll();
    links_ = std::move(other.links_);
    other.links_.clear();
  }
  return *this;
}

Status UsdtLinks::Attach(bpf_program* prog, pid_t pid, const std::string& binary,
                         const std::string& probe, uint64_t cookie) {
  LIBBPF_OPTS(bpf_usdt_opts, opts, .usdt_cookie = cookie);
  bpf_link* link = bpf_program__attach_usdt(prog, pid, binary.c_str(), "erlang", probe.c_str(), &opts);
  if (!link) {
    const int err = errno;
    if (err == ENOENT) {
      return NotFound("the BEAM has no probe erlang:", probe,
                      " (an OTP build without Orion's patches, or another OTP version?)");
    }
    return Internal("attaching to erlang:", probe, " in ", binary, " failed: ", std::strerror(err));
  }
  links_.push_back(link);
  return OkStatus();
}

void UsdtLinks::DetachAll() {
  for (bpf_link* link : links_) bpf_link__destroy(link);
  links_.clear();
}

}  // namespace orion::probes
