#include "userspace/beam/usdt_semaphore.h"

#include "userspace/beam/remote_memory.h"

namespace orion::beam {

StatusOr<uint16_t> ReadUsdtSemaphore(pid_t pid, const std::string& elf_path,
                                     uint64_t semaphore_vaddr) {
  ASSIGN_OR_RETURN(uint64_t address, RemoteAddress(pid, elf_path, semaphore_vaddr));
  uint16_t value = 0;
  RETURN_IF_ERROR(ReadRemote(pid, address, &value, sizeof(value)));
  return value;
}

}  // namespace orion::beam
