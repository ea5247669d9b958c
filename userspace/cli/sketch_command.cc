// orion sketch summarize|merge|show: reads numbers or protobuf sketches, prints a summary.
#include "userspace/cli/sketch_command.h"

#include <getopt.h>

#include <charconv>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "sketch/ddsketch.h"
#include "sketch/encoding/base64.h"
#include "sketch/encoding/ddsketch_encoding.h"
#include "userspace/cli/cli_support.h"

namespace orion {
namespace {

using sketch::CountSketch;
using sketch::WeightedSketch;

constexpr char kUsage[] =
    "Usage: orion sketch summarize [--unit UNIT] [--json] [--output FILE]\n"
    "       orion sketch merge [--json] [--output FILE] FILE...\n"
    "       orion sketch show [--json] FILE|-\n"
    "\n"
    "DDSketches with a guaranteed relative accuracy, in DataDog's protobuf format.\n"
    "  summarize  reads one number per line on stdin (blank lines and '#' lines are skipped),\n"
    "             folds them with the kernel's bucket mapping (gamma = 2^(1/64), 0.54 %),\n"
    "             prints count, min, max, sum, p50, p90, p99, p99.9 and the sketch (base64).\n"
    "             Values are kept in nanoseconds, whatever --unit they are read in.\n"
    "  merge      merges protobuf sketches (raw or base64 files, '-' for stdin) and prints the\n"
    "             same summary; the sketches must have the same mapping.\n"
    "  show       prints the summary of one protobuf sketch (raw or base64, '-' for stdin).\n"
    "\n"
    "Options:\n"
    "  -u, --unit UNIT     unit of the numbers on stdin: ns (default), us, ms, s\n"
    "  -j, --json          print one JSON object with the keys count, min, max, sum, p50,\n"
    "                      p90, p99, p999 and sketch (base64 protobuf)\n"
    "  -o, --output FILE   also write the sketch to FILE (raw protobuf)\n"
    "  -h, --help          this help\n"
    "\n"
    "Quantiles are DataDog's: the value of the bin holding the element of rank\n"
    "floor(q * (count - 1)) of the sorted values.  Exit status: 0 ok, 1 bad input, 2 usage.\n"
    "\n"
    "Examples:\n"
    "  seq 1 1000 | orion sketch summarize\n"
    "  printf '1.5\\n2.25\\n30\\n' | orion sketch summarize --unit ms --json\n"
    "  orion sketch summarize -o monday.pb < monday.txt\n"
    "  orion sketch merge monday.pb tuesday.pb\n"
    "  orion sketch summarize --json < lat.txt | jq -r .sketch | orion sketch show -\n";

constexpr size_t kMaxSketchFileBytes = size_t{64} << 20;

struct Options {
  std::string subcommand;
  std::string unit = "ns";
  double nanoseconds_per_unit = 1;
  bool json = false;
  std::string output;
  std::vector<std::string> files;
};

// A usage error: exit 2 with the usage on stderr.
struct UsageError {
  std::string message;
};
// --help: the usage on stdout, exit 0.
struct HelpRequested {};

// Nanoseconds in one `unit`, or nullopt for an unknown unit.
std::optional<double> NanosecondsPer(std::string_view unit) {
  constexpr std::pair<std::string_view, double> kUnits[] = {
      {"ns", 1}, {"us", 1e3}, {"ms", 1e6}, {"s", 1e9}};
  for (const auto& [name, nanoseconds] : kUnits) {
    if (unit == name) return nanoseconds;
  }
  return std::nullopt;
}

// The FILE arguments and flags each subcommand accepts.
std::optional<UsageError> CheckArguments(const Options& options) {
  if (options.subcommand == "summarize" && !options.files.empty()) {
    return UsageError{"summarize reads stdin and takes no FILE"};
  }
  if (options.subcommand != "summarize" && options.unit != "ns") {
    return UsageError{"--unit applies to summarize only"};
  }
  if (options.subcommand == "merge" && options.files.empty()) {
    return UsageError{"merge needs at least one FILE"};
  }
  if (options.subcommand == "show" && options.files.size() != 1) {
    return UsageError{"show takes exactly one FILE (or - for stdin)"};
  }
  return std::nullopt;
}

// Parses argv (argv[0] == "sketch").
std::variant<Options, UsageError, HelpRequested> ParseOptions(int argc, char** argv) {
  if (argc < 2) return UsageError{"missing subcommand (summarize, merge or show)"};
  Options options;
  options.subcommand = argv[1];
  if (options.subcommand == "-h" || options.subcommand == "--help") return HelpRequested{};
  if (options.subcommand != "summarize" && options.subcommand != "merge" &&
      options.subcommand != "show") {
    return UsageError{"unknown subcommand '" + options.subcommand + "'"};
  }
  static const option kOptions[] = {{"unit", required_argument, nullptr, 'u'},
                                    {"json", no_argument, nullptr, 'j'},
                                    {"output", required_argument, nullptr, 'o'},
                                    {"help", no_argument, nullptr, 'h'},
                                    {nullptr, 0, nullptr, 0}};
  char** args = argv + 1;  // args[0] is the subcommand
  optind = 0;              // GNU: reinitialise for a new argument vector
  opterr = 0;
  int c;
  while ((c = getopt_long(argc - 1, args, ":u:jo:h", kOptions, nullptr)) != -1) {
    switch (c) {
      case 'u': {
        options.unit = optarg;
        const std::optional<double> nanoseconds = NanosecondsPer(options.unit);
        if (!nanoseconds)
          return UsageError{"unknown unit '" + options.unit + "' (ns, us, ms or s)"};
        options.nanoseconds_per_unit = *nanoseconds;
        break;
      }
      case 'j':
        options.json = true;
        break;
      case 'o':
        options.output = optarg;
        break;
      case 'h':
        return HelpRequested{};
      case ':':
        return UsageError{std::string("option ") + args[optind - 1] + " needs an argument"};
      default:
        return UsageError{std::string("unknown option ") + args[optind - 1]};
    }
  }
  for (int i = optind; i < argc - 1; ++i) options.files.emplace_back(args[i]);
  if (auto usage = CheckArguments(options)) return *usage;
  return options;
}

std::string_view Trim(std::string_view s) {
  const size_t first = s.find_first_not_of(" \t\r");
  if (first == std::string_view::npos) return {};
  return s.substr(first, s.find_last_not_of(" \t\r") - first + 1);
}

// Adds one number (already trimmed, non-empty) to the sketch, in nanoseconds.  Plain integers
// in nanoseconds take the kernel's integer path.
Status AddNumber(std::string_view token, const Options& options, CountSketch& sketch) {
  const char* end = token.data() + token.size();
  if (options.nanoseconds_per_unit == 1) {
    uint64_t ns = 0;
    const auto [ptr, ec] = std::from_chars(token.data(), end, ns);
    if (ec == std::errc() && ptr == end) return sketch.add_integer(ns);
  }
  double value = 0;
  const auto [ptr, ec] = std::from_chars(token.data(), end, value);
  if (ec != std::errc() || ptr != end) {
    return InvalidArgument("'", token, "' is not a number");
  }
  if (!std::isfinite(value)) return InvalidArgument("'", token, "' is not a finite number");
  return sketch.add(value * options.nanoseconds_per_unit);
}

StatusOr<CountSketch> ReadNumbers(std::istream& in, const Options& options) {
  CountSketch sketch(sketch::IndexMapping::Kernel());
  std::string line;
  for (size_t line_number = 1; std::getline(in, line); ++line_number) {
    const std::string_view token = Trim(line);
    if (token.empty() || token.front() == '#') continue;
    const Status status = AddNumber(token, options, sketch);
    if (!status.ok()) {
      return status.WithContext("stdin line " + std::to_string(line_number));
    }
  }
  return sketch;
}

StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream file;
  std::istream* in = &std::cin;
  if (path != "-") {
    file.open(path, std::ios::binary);
    if (!file) return NotFound("cannot open ", path);
    in = &file;
  }
  std::string bytes;
  char buffer[65536];
  while (in->read(buffer, sizeof buffer) || in->gcount() > 0) {
    bytes.append(buffer, static_cast<size_t>(in->gcount()));
    if (bytes.size() > kMaxSketchFileBytes) {
      return InvalidArgument("larger than ", kMaxSketchFileBytes, " bytes: not a sketch");
    }
  }
  if (in->bad()) return Internal("read error");
  return bytes;
}

// A protobuf sketch from a file or stdin, raw or base64.
StatusOr<WeightedSketch> ReadSketch(const std::string& path) {
  const std::string name = path == "-" ? "stdin" : path;
  StatusOr<std::string> bytes = ReadFile(path);
  if (!bytes.ok()) return bytes.status().WithContext(name);
  if (bytes->empty()) return InvalidArgument(name, ": empty, not a sketch");
  std::vector<uint8_t> raw(bytes->begin(), bytes->end());
  std::string form = "protobuf";
  if (sketch::LooksLikeBase64(*bytes)) {
    StatusOr<std::vector<uint8_t>> decoded = sketch::Base64Decode(*bytes);
    if (!decoded.ok()) return decoded.status().WithContext(name + " (base64 text)");
    raw = *std::move(decoded);
    form = "base64-decoded protobuf";
  }
  StatusOr<WeightedSketch> sketch =
      sketch::DecodeDDSketch<sketch::DenseStore<double>>(std::span<const uint8_t>(raw));
  if (!sketch.ok()) return sketch.status().WithContext(name + " (" + form + ")");
  return sketch;
}

template <typename Sketch>
nlohmann::json Quantile(const Sketch& sketch, double q) {
  StatusOr<double> value = sketch.quantile(q);
  return value.ok() ? nlohmann::json(*value) : nlohmann::json(nullptr);
}

nlohmann::json CountJson(uint64_t count) {
  return count;
}
nlohmann::json CountJson(double count) {
  if (count == std::floor(count) && count < 9007199254740992.0) return static_cast<uint64_t>(count);
  return count;
}

template <typename Sketch>
nlohmann::json SummaryJson(const Sketch& sketch, const std::string& encoded) {
  const bool empty = sketch.empty();
  return nlohmann::json{
      {"count", CountJson(sketch.count())},
      {"min", empty ? nlohmann::json(nullptr) : nlohmann::json(sketch.min())},
      {"max", empty ? nlohmann::json(nullptr) : nlohmann::json(sketch.max())},
      {"sum", sketch.sum()},
      {"p50", Quantile(sketch, 0.5)},
      {"p90", Quantile(sketch, 0.9)},
      {"p99", Quantile(sketch, 0.99)},
      {"p999", Quantile(sketch, 0.999)},
      {"sketch", encoded},
  };
}

std::string Number(const nlohmann::json& value, const char* format) {
  if (value.is_null()) return "-";
  if (value.is_number_unsigned()) return std::to_string(value.get<uint64_t>());
  char text[64];
  std::snprintf(text, sizeof text, format, value.get<double>());
  return text;
}

void PrintText(const nlohmann::json& summary, const std::string& mapping) {
  std::printf("count    %s\n", Number(summary["count"], "%.15g").c_str());
  for (const char* key : {"min", "max", "sum"}) {
    std::printf("%-8s %s\n", key, Number(summary[key], "%.15g").c_str());
  }
  for (const auto& [key, label] :
       {std::pair{"p50", "p50"}, {"p90", "p90"}, {"p99", "p99"}, {"p999", "p99.9"}}) {
    std::printf("%-8s %s\n", label, Number(summary[key], "%.6g").c_str());
  }
  std::printf("mapping  %s\n", mapping.c_str());
  std::printf("sketch   %s\n", summary["sketch"].get<std::string>().c_str());
}

Status WriteFile(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::ofstream file(path, std::ios::binary | std::ios::trunc);
  file.write(reinterpret_cast<const char*>(bytes.data()),
             static_cast<std::streamsize>(bytes.size()));
  file.close();
  if (!file) return Internal("cannot write ", path);
  return OkStatus();
}

template <typename Sketch>
Status PrintSummary(const Sketch& sketch, const Options& options) {
  const std::vector<uint8_t> encoded = sketch::EncodeDDSketch(sketch);
  if (!options.output.empty()) RETURN_IF_ERROR(WriteFile(options.output, encoded));
  const nlohmann::json summary = SummaryJson(sketch, sketch::Base64Encode(encoded));
  if (options.json) {
    std::printf("%s\n", summary.dump().c_str());
  } else {
    PrintText(summary, sketch.mapping().Describe());
  }
  return OkStatus();
}

Status Summarize(const Options& options) {
  ASSIGN_OR_RETURN(CountSketch sketch, ReadNumbers(std::cin, options));
  return PrintSummary(sketch, options);
}

Status Merge(const Options& options) {
  ASSIGN_OR_RETURN(WeightedSketch merged, ReadSketch(options.files.front()));
  for (size_t i = 1; i < options.files.size(); ++i) {
    ASSIGN_OR_RETURN(WeightedSketch next, ReadSketch(options.files[i]));
    const Status status = merged.merge(next);
    if (!status.ok()) return status.WithContext(options.files[i]);
  }
  return PrintSummary(merged, options);
}

}  // namespace

int RunSketchCommand(int argc, char** argv) {
  const auto parsed = ParseOptions(argc, argv);
  if (std::holds_alternative<HelpRequested>(parsed)) {
    std::fputs(kUsage, stdout);
    return cli::kExitOk;
  }
  if (const auto* usage = std::get_if<UsageError>(&parsed)) {
    std::fprintf(stderr, "orion sketch: %s\nTry 'orion sketch --help'.\n", usage->message.c_str());
    return cli::kExitUsage;
  }
  const Options& options = std::get<Options>(parsed);
  const Status status = options.subcommand == "summarize" ? Summarize(options) : Merge(options);
  if (!status.ok()) {
    std::fprintf(stderr, "orion sketch %s: %s\n", options.subcommand.c_str(),
                 status.message().c_str());
    // Bad input (a malformed sketch, a non-number) exits 2 like every other usage/input
    // error of orion; anything else (a file that cannot be read) exits 1.
    return status.code() == StatusCode::kInvalidArgument ? cli::kExitUsage : cli::kExitFailure;
  }
  return cli::kExitOk;
}

}  // namespace orion
