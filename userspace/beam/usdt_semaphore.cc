#include "userspace/beam/usdt_semaphore.h"

#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

namespace orion::beam {
namespace {

// File offset of a link-time virtual address, from the ELF's PT_LOAD segments.
StatusOr<uint64_t> VaddrToFileOffset(const std::string& path, uint64_t vaddr) {
  if (elf_version(EV_CURRENT) == EV_NONE) return Internal("libelf: ", elf_errmsg(-1));
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return NotFound("cannot open ", path, ": ", std::strerror(errno));
  Elf* elf = elf_begin(fd, ELF_C_READ, nullptr);
  StatusOr<uint64_t> result = NotFound("address 0x", std::hex, vaddr, " is in no segment of ", path);
  size_t n = 0;
  if (elf && elf_getphdrnum(elf, &n) == 0) {
    for (size_t i = 0; i < n; ++i) {
      GElf_Phdr ph;
      if (!gelf_getphdr(elf, static_cast<int>(i), &ph) || ph.p_type != PT_LOAD) continue;
      if (vaddr >= ph.p_vaddr && vaddr < ph.p_vaddr + ph.p_filesz) {
        result = ph.p_offset + (vaddr - ph.p_vaddr);
        break;
      }
    }
  }
  if (elf) elf_end(elf);
  close(fd);
  return result;
}

}  // namespace

StatusOr<uint16_t> ReadUsdtSemaphore(pid_t pid, const std::string& elf_path,
                                     uint64_t semaphore_vaddr) {
  ASSIGN_OR_RETURN(uint64_t file_offset, VaddrToFileOffset(elf_path, semaphore_vaddr));
  struct stat st;
  if (stat(elf_path.c_str(), &st) != 0) return NotFound("cannot stat ", elf_path);

  // Find the mapping of that file (by device and inode) covering the file offset.
  std::ifstream maps("/proc/" + std::to_string(pid) + "/maps");
  if (!maps) return NotFound("no process with pid ", pid);
  std::string line;
  while (std::getline(maps, line)) {
    uint64_t start, end, offset, inode;
    unsigned dev_major, dev_minor;
    char perms[8];
    if (std::sscanf(line.c_str(), "%" SCNx64 "-%" SCNx64 " %7s %" SCNx64 " %x:%x %" SCNu64, &start,
                    &end, perms, &offset, &dev_major, &dev_minor, &inode) != 7) {
      continue;
    }
    if (inode != st.st_ino || file_offset < offset || file_offset >= offset + (end - start)) {
      continue;
    }
    uint16_t value = 0;
    iovec local = {&value, sizeof(value)};
    iovec remote = {reinterpret_cast<void*>(start + (file_offset - offset)), sizeof(value)};
    if (process_vm_readv(pid, &local, 1, &remote, 1, 0) != sizeof(value)) {
      return PermissionDenied("cannot read the memory of pid ", pid, ": ", std::strerror(errno));
    }
    return value;
  }
  return NotFound(elf_path, " is not mapped in pid ", pid);
}

}  // namespace orion::beam
