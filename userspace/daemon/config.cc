#include "userspace/daemon/config.h"

#include <cerrno>
#include <charconv>
#include <fstream>
#include <sstream>

namespace orion::daemon {
namespace {

std::string Trim(const std::string& s) {
  const size_t b = s.find_first_not_of(" \t\r");
  if (b == std::string::npos) return "";
  const size_t e = s.find_last_not_of(" \t\r");
  return s.substr(b, e - b + 1);
}

// Drops a trailing `# comment` that is not inside a string.
std::string StripComment(const std::string& line) {
  bool in_string = false;
  for (size_t i = 0; i < line.size(); ++i) {
    if (line[i] == '"' && (i == 0 || line[i - 1] != '\\')) in_string = !in_string;
    if (line[i] == '#' && !in_string) return line.substr(0, i);
  }
  return line;
}

StatusOr<std::string> ParseString(const std::string& v) {
  if (v.size() < 2 || v.front() != '"' || v.back() != '"') {
    return InvalidArgument("expected a \"quoted string\", got ", v);
  }
  const std::string inner = v.substr(1, v.size() - 2);
  if (inner.find('"') != std::string::npos || inner.find('\\') != std::string::npos) {
    return InvalidArgument("quotes and escapes are not supported in strings: ", v);
  }
  return inner;
}

StatusOr<bool> ParseBool(const std::string& v) {
  if (v == "true") return true;
  if (v == "false") return false;
  return InvalidArgument("expected true or false, got ", v);
}

StatusOr<uint32_t> ParseUint(const std::string& v) {
  uint32_t out = 0;
  const auto [ptr, ec] = std::from_chars(v.data(), v.data() + v.size(), out);
  if (ec != std::errc() || ptr != v.data() + v.size()) {
    return InvalidArgument("expected a non-negative integer, got ", v);
  }
  return out;
}

StatusOr<std::vector<std::string>> ParseStringArray(const std::string& v) {
  if (v.size() < 2 || v.front() != '[' || v.back() != ']') {
    return InvalidArgument("expected an array of strings [\"a\", \"b\"], got ", v);
  }
  std::vector<std::string> out;
  std::stringstream items(v.substr(1, v.size() - 2));
  std::string item;
  while (std::getline(items, item, ',')) {
    item = Trim(item);
    if (item.empty()) continue;
    ASSIGN_OR_RETURN(std::string s, ParseString(item));
    out.push_back(s);
  }
  return out;
}

Status SetKey(const std::string& key, const std::string& value, DaemonConfig* c) {
  if (key == "name") {
    ASSIGN_OR_RETURN(c->name, ParseString(value));
  } else if (key == "longnames") {
    ASSIGN_OR_RETURN(c->longnames, ParseBool(value));
  } else if (key == "cookie_file") {
    ASSIGN_OR_RETURN(c->cookie_file, ParseString(value));
  } else if (key == "peers") {
    ASSIGN_OR_RETURN(c->peers, ParseStringArray(value));
  } else if (key == "discover") {
    ASSIGN_OR_RETURN(c->discover, ParseBool(value));
  } else if (key == "only_netns") {
    ASSIGN_OR_RETURN(c->only_netns, ParseBool(value));
  } else if (key == "max_captures") {
    ASSIGN_OR_RETURN(c->max_captures, ParseUint(value));
  } else if (key == "max_connections") {
    ASSIGN_OR_RETURN(c->max_connections, ParseUint(value));
  } else if (key == "max_duration_ms") {
    ASSIGN_OR_RETURN(c->max_duration_ms, ParseUint(value));
  } else if (key == "grace_ms") {
    ASSIGN_OR_RETURN(c->grace_ms, ParseUint(value));
  } else if (key == "cookie") {
    return InvalidArgument("a cookie does not belong in the config file: put it in the ",
                           "cookie file (cookie_file, mode 0600, owned by root)");
  } else {
    return InvalidArgument("unknown setting '", key, "'");
  }
  return OkStatus();
}

}  // namespace

Status ParseConfigText(const std::string& text, const std::string& origin, DaemonConfig* config) {
  std::istringstream in(text);
  std::string raw;
  for (int line_no = 1; std::getline(in, raw); ++line_no) {
    const std::string line = Trim(StripComment(raw));
    if (line.empty()) continue;
    const size_t eq = line.find('=');
    if (eq == std::string::npos) {
      return InvalidArgument(origin, ":", line_no, ": expected key = value");
    }
    const Status status = SetKey(Trim(line.substr(0, eq)), Trim(line.substr(eq + 1)), config);
    if (!status.ok()) return InvalidArgument(origin, ":", line_no, ": ", status.message());
  }
  if (config->max_captures == 0 || config->max_connections == 0) {
    return InvalidArgument(origin, ": max_captures and max_connections must be at least 1");
  }
  return OkStatus();
}

Status LoadConfigFile(const std::string& path, bool missing_ok, DaemonConfig* config) {
  std::ifstream file(path);
  if (!file) {
    if (missing_ok && errno == ENOENT) return OkStatus();
    return NotFound("cannot read config file ", path);
  }
  std::stringstream text;
  text << file.rdbuf();
  if (text.str().size() > 64 * 1024) return InvalidArgument(path, ": larger than 64 KiB");
  return ParseConfigText(text.str(), path, config);
}

}  // namespace orion::daemon
