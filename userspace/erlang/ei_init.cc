#include "userspace/erlang/ei_init.h"

#include <ei.h>

#include <mutex>

namespace orion::erlang {

void InitErlInterface() {
  static std::once_flag once;
  std::call_once(once, [] { ei_init(); });
}

}  // namespace orion::erlang
