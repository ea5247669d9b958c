#include "userspace/beam/usdt_notes.h"

#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <unistd.h>

#include <cstring>
#include <memory>

#include "base/unique_fd.h"

namespace orion::beam {
namespace {

constexpr char kStapsdtOwner[] = "stapsdt";
constexpr uint32_t kStapsdtType = 3;

struct ElfCloser {
  void operator()(Elf* e) const { elf_end(e); }
};

// A stapsdt note's descriptor: pc, base, semaphore (each an address of the ELF's class),
// then provider, name and args as NUL-terminated strings.
bool ParseNote(const char* desc, size_t size, bool elf64, UsdtNote* out) {
  const size_t word = elf64 ? 8 : 4;
  if (size < 3 * word) return false;
  auto read_word = [&](size_t i) -> uint64_t {
    if (elf64) {
      uint64_t v;
      std::memcpy(&v, desc + i * word, 8);
      return v;
    }
    uint32_t v;
    std::memcpy(&v, desc + i * word, 4);
    return v;
  };
  out->pc = read_word(0);
  out->semaphore = read_word(2);
  const char* p = desc + 3 * word;
  const char* end = desc + size;
  std::string* fields[] = {&out->provider, &out->name, &out->args};
  for (std::string* field : fields) {
    const void* nul = std::memchr(p, '\0', end - p);
    if (!nul) return false;
    field->assign(p, static_cast<const char*>(nul));
    p = static_cast<const char*>(nul) + 1;
  }
  return true;
}

}  // namespace

StatusOr<std::vector<UsdtNote>> ReadUsdtNotes(const std::string& path) {
  if (elf_version(EV_CURRENT) == EV_NONE) return Internal("libelf: ", elf_errmsg(-1));
  UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) return NotFound("cannot open ", path, ": ", std::strerror(errno));
  std::unique_ptr<Elf, ElfCloser> elf(elf_begin(fd.get(), ELF_C_READ, nullptr));
  if (!elf || elf_kind(elf.get()) != ELF_K_ELF) return InvalidArgument(path, " is not an ELF file");
  const bool elf64 = gelf_getclass(elf.get()) == ELFCLASS64;

  std::vector<UsdtNote> notes;
  Elf_Scn* scn = nullptr;
  while ((scn = elf_nextscn(elf.get(), scn)) != nullptr) {
    GElf_Shdr shdr;
    if (!gelf_getshdr(scn, &shdr) || shdr.sh_type != SHT_NOTE) continue;
    Elf_Data* data = elf_getdata(scn, nullptr);
    if (!data) continue;
    size_t offset = 0;
    GElf_Nhdr nhdr;
    size_t name_off, desc_off;
    while ((offset = gelf_getnote(data, offset, &nhdr, &name_off, &desc_off)) > 0) {
      const char* base = static_cast<const char*>(data->d_buf);
      if (nhdr.n_type != kStapsdtType || nhdr.n_namesz != sizeof(kStapsdtOwner) ||
          std::memcmp(base + name_off, kStapsdtOwner, sizeof(kStapsdtOwner)) != 0) {
        continue;
      }
      UsdtNote note;
      if (ParseNote(base + desc_off, nhdr.n_descsz, elf64, &note)) notes.push_back(std::move(note));
    }
  }
  return notes;
}

int CountSites(const std::vector<UsdtNote>& notes, std::string_view provider,
               std::string_view name) {
  int n = 0;
  for (const auto& note : notes) n += note.provider == provider && note.name == name;
  return n;
}

}  // namespace orion::beam
