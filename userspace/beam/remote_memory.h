// Reading and writing a variable of a running process by its link-time address: how orion
// reads a USDT semaphore and fills the enable table of Orion's BEAM patch 0003.
//
// The address is found in the ELF file the process has mapped (through the path libbpf
// attaches to, reachable from our mount namespace); the process's /proc/PID/maps gives where
// that file's segment lies, which covers PIE and non-PIE executables alike. Only initialized
// data (.data, file-backed) can be found this way, not .bss.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "base/status.h"

namespace orion::beam {

struct ElfSymbol {
  uint64_t vaddr = 0;  // link-time address
  uint64_t size = 0;
};

// A data or function symbol of `elf_path` by name (.symtab, then .dynsym); NotFound if absent.
StatusOr<ElfSymbol> FindElfSymbol(const std::string& elf_path, const std::string& name);

// Where link-time address `vaddr` of `elf_path` is in the memory of `pid`, which must have
// that file mapped.
StatusOr<uint64_t> RemoteAddress(pid_t pid, const std::string& elf_path, uint64_t vaddr);

// process_vm_readv / process_vm_writev of exactly `size` bytes (root, or ptrace rights).
// NotFound if the process is gone, PermissionDenied for any other failure.
Status ReadRemote(pid_t pid, uint64_t address, void* out, size_t size);
Status WriteRemote(pid_t pid, uint64_t address, const void* data, size_t size);

// A table Orion's patches put in the emulator's data (`symbol`, `size` bytes), whose first
// three uint32 are its magic, version and size: its address in `pid`. NotFound if the
// emulator has no such symbol (`missing` says what that means), FailedPrecondition if its
// size or header is not the layout this orion was built with (`what`: "enable table").
struct RemoteTableSpec {
  const char* symbol;
  size_t size;
  uint32_t magic;
  uint32_t version;
  const char* what;     // "the enable table"
  const char* patch;    // "0003"
  const char* missing;  // "every call fires the probes while a capture runs"
};
StatusOr<uint64_t> LocateRemoteTable(pid_t pid, const std::string& elf_path,
                                     const std::string& exe, const RemoteTableSpec& spec);

// Whether a process exists (the owner of a record in a BEAM's tables may have been killed).
bool ProcessAlive(pid_t pid);

// Serializes the read-modify-write of one of a BEAM's tables between orion processes: an
// exclusive flock on /run/lock/orion-NAME-PID.lock while it lives. Best effort: without the
// lock file (read-only /run) a change still happens, unserialized.
class BeamFileLock {
 public:
  BeamFileLock(pid_t beam_pid, const char* name);
  ~BeamFileLock();
  BeamFileLock(const BeamFileLock&) = delete;
  BeamFileLock& operator=(const BeamFileLock&) = delete;
  // Releases it before the end of the scope.
  void Unlock();

 private:
  int fd_ = -1;
};

}  // namespace orion::beam
