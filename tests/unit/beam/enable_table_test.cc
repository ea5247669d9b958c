// The enable table's slot of a module is the BEAM's own atom hash (erts atom.c): a wrong
// value would make the patched emulator drop every call of a targeted module. The
// integration tests (capture_bpf_test) prove it against a real emulator; these pin the
// hash's corner cases: hashpjw's fold of the high nibble, and the latin-1 clutch, by which a
// 2-byte UTF-8 latin-1 character hashes as its one-byte code point.
#include <gtest/gtest.h>

#include "userspace/beam/enable_table.h"

namespace orion::beam {
namespace {

TEST(ErtsAtomHash, IsHashpjwOverTheName) {
  EXPECT_EQ(ErtsAtomHash(""), 0u);
  EXPECT_EQ(ErtsAtomHash("a"), 97u);
  EXPECT_EQ(ErtsAtomHash("ab"), (97u << 4) + 98u);
}

TEST(ErtsAtomHash, FoldsTheHighNibbleOfLongNames) {
  // Reference values from a transcription of atom.c's atom_hash in Python.
  EXPECT_EQ(ErtsAtomHash("lists"), 7539379u);
  EXPECT_EQ(ErtsAtomHash("erlang"), 113846343u);
  EXPECT_EQ(ErtsAtomHash("orion_workload"), 261649588u);
  EXPECT_EQ(ErtsAtomHash("Elixir.Orion.Demo"), 103674927u);
  EXPECT_LT(ErtsAtomHash("a_rather_long_module_name_that_folds_many_times"), 1u << 28);
}

TEST(ErtsAtomHash, Latin1CharactersHashAsTheirCodePoint) {
  EXPECT_EQ(ErtsAtomHash("\xC3\xA9"), ErtsAtomHash("\xE9"));  // é
  EXPECT_EQ(ErtsAtomHash("caf\xC3\xA9"), ErtsAtomHash("caf\xE9"));
  // Other UTF-8 sequences hash byte by byte.
  EXPECT_NE(ErtsAtomHash("\xE2\x82\xAC"), ErtsAtomHash("\xAC"));  // €
}

TEST(EnableTableSlot, IsTheHashModuloTheTableSize) {
  EXPECT_EQ(EnableTableSlot("lists"), 7539379u % kEnableTableSlots);
  EXPECT_EQ(EnableTableSlot("orion_workload"), 1204u);
  EXPECT_NE(EnableTableSlot("lists"), EnableTableSlot("orion_workload"));
}

}  // namespace
}  // namespace orion::beam
