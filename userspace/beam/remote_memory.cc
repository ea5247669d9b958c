#include "userspace/beam/remote_memory.h"

#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>

namespace orion::beam {
namespace {

struct ElfFile {
  int fd = -1;
  Elf* elf = nullptr;
  ~ElfFile() {
    if (elf) elf_end(elf);
    if (fd >= 0) close(fd);
  }
};

Status OpenElf(const std::string& path, ElfFile* f) {
  if (elf_version(EV_CURRENT) == EV_NONE) return Internal("libelf: ", elf_errmsg(-1));
  f->fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (f->fd < 0) return NotFound("cannot open ", path, ": ", std::strerror(errno));
  f->elf = elf_begin(f->fd, ELF_C_READ, nullptr);
  if (!f->elf || elf_kind(f->elf) != ELF_K_ELF) return InvalidArgument(path, " is not an ELF file");
  return OkStatus();
}

// File offset of a link-time virtual address, from the ELF's PT_LOAD segments.
StatusOr<uint64_t> VaddrToFileOffset(const std::string& path, uint64_t vaddr) {
  ElfFile f;
  RETURN_IF_ERROR(OpenElf(path, &f));
  size_t n = 0;
  if (elf_getphdrnum(f.elf, &n) == 0) {
    for (size_t i = 0; i < n; ++i) {
      GElf_Phdr ph;
      if (!gelf_getphdr(f.elf, static_cast<int>(i), &ph) || ph.p_type != PT_LOAD) continue;
      if (vaddr >= ph.p_vaddr && vaddr < ph.p_vaddr + ph.p_filesz) {
        return ph.p_offset + (vaddr - ph.p_vaddr);
      }
    }
  }
  return NotFound("address 0x", std::hex, vaddr, " is in no file-backed segment of ", path);
}

}  // namespace

StatusOr<ElfSymbol> FindElfSymbol(const std::string& elf_path, const std::string& name) {
  ElfFile f;
  RETURN_IF_ERROR(OpenElf(elf_path, &f));
  for (Elf64_Word type : {SHT_SYMTAB, SHT_DYNSYM}) {
    Elf_Scn* scn = nullptr;
    while ((scn = elf_nextscn(f.elf, scn)) != nullptr) {
      GElf_Shdr shdr;
      if (!gelf_getshdr(scn, &shdr) || shdr.sh_type != type || shdr.sh_entsize == 0) continue;
      Elf_Data* data = elf_getdata(scn, nullptr);
      if (!data) continue;
      const size_t count = shdr.sh_size / shdr.sh_entsize;
      for (size_t i = 0; i < count; ++i) {
        GElf_Sym sym;
        if (!gelf_getsym(data, static_cast<int>(i), &sym) || sym.st_shndx == SHN_UNDEF) continue;
        const char* sym_name = elf_strptr(f.elf, shdr.sh_link, sym.st_name);
        if (sym_name && name == sym_name) return ElfSymbol{sym.st_value, sym.st_size};
      }
    }
  }
  return NotFound("no symbol ", name, " in ", elf_path);
}

StatusOr<uint64_t> RemoteAddress(pid_t pid, const std::string& elf_path, uint64_t vaddr) {
  ASSIGN_OR_RETURN(uint64_t file_offset, VaddrToFileOffset(elf_path, vaddr));
  struct stat st;
  if (stat(elf_path.c_str(), &st) != 0) return NotFound("cannot stat ", elf_path);

  // The mapping of that file (by inode) that covers the file offset.
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
    return start + (file_offset - offset);
  }
  return NotFound(elf_path, " is not mapped in pid ", pid);
}

Status ReadRemote(pid_t pid, uint64_t address, void* out, size_t size) {
  iovec local = {out, size};
  iovec remote = {reinterpret_cast<void*>(address), size};
  if (process_vm_readv(pid, &local, 1, &remote, 1, 0) != static_cast<ssize_t>(size)) {
    if (errno == ESRCH) return NotFound("pid ", pid, " is gone");
    return PermissionDenied("cannot read the memory of pid ", pid, ": ", std::strerror(errno));
  }
  return OkStatus();
}

Status WriteRemote(pid_t pid, uint64_t address, const void* data, size_t size) {
  iovec local = {const_cast<void*>(data), size};
  iovec remote = {reinterpret_cast<void*>(address), size};
  if (process_vm_writev(pid, &local, 1, &remote, 1, 0) != static_cast<ssize_t>(size)) {
    if (errno == ESRCH) return NotFound("pid ", pid, " is gone");
    return PermissionDenied("cannot write the memory of pid ", pid, ": ", std::strerror(errno));
  }
  return OkStatus();
}

StatusOr<uint64_t> LocateRemoteTable(pid_t pid, const std::string& elf_path,
                                     const std::string& exe, const RemoteTableSpec& spec) {
  auto symbol = FindElfSymbol(elf_path, spec.symbol);
  if (!symbol.ok()) {
    return NotFound("pid ", pid, "'s emulator has no ", spec.what, " (", exe,
                    " was built without Orion's patch ", spec.patch, "): ", spec.missing);
  }
  if (symbol->size != spec.size) {
    return FailedPrecondition("pid ", pid, "'s ", spec.what, " has ", symbol->size,
                              " bytes where this orion knows ", spec.size,
                              " (another version of patch ", spec.patch, ")");
  }
  ASSIGN_OR_RETURN(uint64_t address, RemoteAddress(pid, elf_path, symbol->vaddr));
  uint32_t header[3];
  RETURN_IF_ERROR(ReadRemote(pid, address, header, sizeof(header)));
  if (header[0] != spec.magic || header[1] != spec.version || header[2] != spec.size) {
    return FailedPrecondition("pid ", pid, "'s ", spec.what, " has version ", header[1],
                              " (magic 0x", std::hex, header[0], "); this orion knows version ",
                              std::dec, spec.version);
  }
  return address;
}

bool ProcessAlive(pid_t pid) { return pid > 0 && (kill(pid, 0) == 0 || errno == EPERM); }

BeamFileLock::BeamFileLock(pid_t beam_pid, const char* name) {
  const std::string path =
      std::string("/run/lock/orion-") + name + "-" + std::to_string(beam_pid) + ".lock";
  fd_ = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd_ >= 0) flock(fd_, LOCK_EX);
}

BeamFileLock::~BeamFileLock() { Unlock(); }

void BeamFileLock::Unlock() {
  if (fd_ >= 0) close(fd_);  // releases the lock
  fd_ = -1;
}

}  // namespace orion::beam
