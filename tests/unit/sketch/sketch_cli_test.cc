// `orion sketch summarize|merge|show`, run as a user would: the real binary in a shell.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <string>

#include "sketch/ddsketch.h"
#include "sketch/encoding/base64.h"
#include "sketch/encoding/ddsketch_encoding.h"

namespace orion::sketch {
namespace {

struct Result {
  int exit_code = -1;
  std::string out;
  std::string err;
};

class SketchCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("orion_sketch_cli_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string Path(const std::string& name) const { return (dir_ / name).string(); }

  // Runs `printf INPUT | orion ARGS` in sh.
  Result Orion(const std::string& args, const std::string& input = "") const {
    const std::string err_path = Path("stderr");
    const std::string command =
        "printf '" + input + "' | " + ORION_BINARY + " " + args + " 2>" + err_path;
    Result result;
    FILE* pipe = popen(command.c_str(), "r");
    char buffer[4096];
    size_t n;
    while ((n = fread(buffer, 1, sizeof buffer, pipe)) > 0) result.out.append(buffer, n);
    const int status = pclose(pipe);
    result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    std::ifstream err(err_path);
    result.err.assign(std::istreambuf_iterator<char>(err), {});
    return result;
  }

  nlohmann::json Json(const std::string& args, const std::string& input = "") const {
    const Result result = Orion(args, input);
    EXPECT_EQ(result.exit_code, 0) << result.err;
    return nlohmann::json::parse(result.out);
  }

  std::filesystem::path dir_;
};

TEST_F(SketchCliTest, SummarizePrintsTheSummaryAndTheSketch) {
  const Result result = Orion("sketch summarize", "1\\n2\\n\\n# comment\\n3\\n");
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_NE(result.out.find("count    3\n"), std::string::npos) << result.out;
  EXPECT_NE(result.out.find("min      1\n"), std::string::npos) << result.out;
  EXPECT_NE(result.out.find("max      3\n"), std::string::npos) << result.out;
  EXPECT_NE(result.out.find("sum      6\n"), std::string::npos) << result.out;
  for (const char* line : {"p50 ", "p90 ", "p99 ", "p99.9 ", "mapping  kernel", "sketch   Ch"}) {
    EXPECT_NE(result.out.find(line), std::string::npos) << line << " in\n" << result.out;
  }
}

TEST_F(SketchCliTest, SummarizeJsonHasExactlyTheDocumentedKeys) {
  const nlohmann::json summary = Json("sketch summarize --json", "1000\\n2000\\n3000\\n4000\\n");
  std::set<std::string> keys;
  for (const auto& [key, value] : summary.items()) keys.insert(key);
  EXPECT_EQ(keys, (std::set<std::string>{"count", "min", "max", "sum", "p50", "p90", "p99", "p999",
                                         "sketch"}));
  EXPECT_EQ(summary["count"], 4);
  EXPECT_EQ(summary["min"], 1000.0);
  EXPECT_EQ(summary["max"], 4000.0);
  EXPECT_EQ(summary["sum"], 10000.0);
  const IndexMapping kernel = IndexMapping::Kernel();
  EXPECT_EQ(summary["p50"], kernel.value(kernel.index(uint64_t{2000})));   // rank 1.5 -> 2000
  EXPECT_EQ(summary["p999"], kernel.value(kernel.index(uint64_t{3000})));  // rank 2.997
}

TEST_F(SketchCliTest, UnitsConvertToNanoseconds) {
  const nlohmann::json summary = Json("sketch summarize --json --unit ms", "1.5\\n2\\n");
  EXPECT_EQ(summary["min"], 1.5e6);
  EXPECT_EQ(summary["max"], 2e6);
  EXPECT_EQ(Json("sketch summarize -j -u s", "3\\n")["sum"], 3e9);
  EXPECT_EQ(Json("sketch summarize -j -u us", "3\\n")["sum"], 3e3);
}

TEST_F(SketchCliTest, EmptyInputIsAnEmptySketch) {
  const nlohmann::json summary = Json("sketch summarize --json");
  EXPECT_EQ(summary["count"], 0);
  EXPECT_TRUE(summary["min"].is_null());
  EXPECT_TRUE(summary["p50"].is_null());
}

TEST_F(SketchCliTest, MalformedNumbersGiveTheLine) {
  for (const std::string bad : {"abc", "1e999", "nan", "12ms", "--5"}) {
    const Result result = Orion("sketch summarize", "1\\n2\\n" + bad + "\\n");
    EXPECT_EQ(result.exit_code, 2) << bad;
    EXPECT_NE(result.err.find("stdin line 3"), std::string::npos) << bad << ": " << result.err;
  }
}

TEST_F(SketchCliTest, UsageErrorsExitTwo) {
  for (const std::string args :
       {"sketch", "sketch frobnicate", "sketch summarize --unit h", "sketch summarize extra",
        "sketch show", "sketch merge", "sketch show --unit ms x", "sketch summarize --nope"}) {
    const Result result = Orion(args);
    EXPECT_EQ(result.exit_code, 2) << args;
    EXPECT_NE(result.err.find("orion sketch"), std::string::npos) << args;
  }
  const Result help = Orion("sketch --help");
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_NE(help.out.find("Examples:"), std::string::npos);
}

TEST_F(SketchCliTest, ShowReadsRawAndBase64Sketches) {
  const Result written = Orion("sketch summarize --json -o " + Path("a.pb"), "5\\n50\\n500\\n");
  ASSERT_EQ(written.exit_code, 0) << written.err;
  const nlohmann::json summary = nlohmann::json::parse(written.out);
  std::ofstream(Path("a.b64")) << summary["sketch"].get<std::string>() << "\n";
  EXPECT_EQ(Json("sketch show --json " + Path("a.pb")), summary);
  EXPECT_EQ(Json("sketch show --json " + Path("a.b64")), summary);
  EXPECT_EQ(Json("sketch show --json - < " + Path("a.pb")), summary);
}

// Merging the sketches of two halves gives the sketch of the whole, byte for byte.
TEST_F(SketchCliTest, MergeEqualsSummarizingEverything) {
  ASSERT_EQ(Orion("sketch summarize -o " + Path("a.pb"), "1\\n20\\n300\\n").exit_code, 0);
  ASSERT_EQ(Orion("sketch summarize -o " + Path("b.pb"), "4000\\n0\\n60000\\n").exit_code, 0);
  const nlohmann::json merged =
      Json("sketch merge --json -o " + Path("ab.pb") + " " + Path("a.pb") + " " + Path("b.pb"));
  const nlohmann::json whole =
      Json("sketch summarize --json", "1\\n20\\n300\\n4000\\n0\\n60000\\n");
  EXPECT_EQ(merged, whole);
  EXPECT_EQ(Json("sketch show --json " + Path("ab.pb")), whole);
}

TEST_F(SketchCliTest, MalformedSketchesGiveTheByteOffset) {
  std::ofstream(Path("bad.pb"), std::ios::binary) << std::string("\x0a\x05\x09", 3);
  const Result bad = Orion("sketch show " + Path("bad.pb"));
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.err.find("bad.pb (protobuf): byte 1: length 5 exceeds"), std::string::npos)
      << bad.err;

  std::ofstream(Path("bad.b64")) << "Zm9v!";
  const Result bad64 = Orion("sketch show " + Path("bad.b64"));
  EXPECT_EQ(bad64.exit_code, 2);  // bad input: usage-class error
  EXPECT_NE(bad64.err.find("byte"), std::string::npos) << bad64.err;

  const Result missing = Orion("sketch show " + Path("missing.pb"));
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.err.find("cannot open"), std::string::npos) << missing.err;

  std::ofstream(Path("empty.pb"));
  EXPECT_EQ(Orion("sketch show " + Path("empty.pb")).exit_code, 2);
}

TEST_F(SketchCliTest, MergeRefusesDifferentMappings) {
  WeightedSketch logarithmic(*IndexMapping::Logarithmic(0.01));
  ASSERT_TRUE(logarithmic.add(5).ok());
  ASSERT_EQ(Orion("sketch summarize -o " + Path("kernel.pb"), "5\\n").exit_code, 0);
  const Result result = Orion("sketch merge " + Path("kernel.pb") + " " + Path("kernel.pb"));
  EXPECT_EQ(result.exit_code, 0) << result.err;
  std::ofstream(Path("log.b64")) << Base64Encode(EncodeDDSketch(logarithmic));
  const Result mixed = Orion("sketch merge " + Path("kernel.pb") + " " + Path("log.b64"));
  EXPECT_EQ(mixed.exit_code, 2);
  EXPECT_NE(mixed.err.find("different index mappings"), std::string::npos) << mixed.err;
}

}  // namespace
}  // namespace orion::sketch
