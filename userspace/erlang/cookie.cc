#include "userspace/erlang/cookie.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace orion::erlang {

StatusOr<std::string> ReadCookieFile(const std::string& path, bool require_root_owned) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    if (err == ENOENT) {
      return NotFound("cookie file ", path,
                      " does not exist: create it with the cluster's cookie, e.g. "
                      "'install -m 600 -o root /dev/null ",
                      path, " && cat ~/.erlang.cookie > ", path, "'");
    }
    if (err == ELOOP) return PermissionDenied("cookie file ", path, " is a symlink: refused");
    return PermissionDenied("cannot open cookie file ", path, ": ", std::strerror(err));
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return PermissionDenied("cookie file ", path, " is not a regular file");
  }
  const uid_t want_owner = require_root_owned ? 0 : ::geteuid();
  if (st.st_uid != want_owner) {
    ::close(fd);
    return PermissionDenied("cookie file ", path, " is owned by uid ", st.st_uid, ", not ",
                            want_owner, ": refused (chown ", want_owner, " ", path, ")");
  }
  if ((st.st_mode & 077) != 0) {
    ::close(fd);
    char mode[8];
    std::snprintf(mode, sizeof(mode), "%04o", static_cast<unsigned>(st.st_mode & 07777));
    return PermissionDenied("cookie file ", path, " has mode ", mode,
                            ": refused, others could read it (chmod 600 ", path, ")");
  }
  char buf[258];
  const ssize_t n = ::read(fd, buf, sizeof(buf));
  ::close(fd);
  if (n < 0) return PermissionDenied("cannot read cookie file ", path, ": ", std::strerror(errno));
  std::string cookie(buf, static_cast<size_t>(n));
  while (!cookie.empty() && (cookie.back() == '\n' || cookie.back() == '\r')) cookie.pop_back();
  if (cookie.empty()) return InvalidArgument("cookie file ", path, " is empty");
  if (cookie.size() > 255) return InvalidArgument("cookie file ", path, ": cookie longer than 255");
  for (char c : cookie) {
    if (c < 0x21 || c > 0x7e) {
      return InvalidArgument("cookie file ", path,
                             ": the cookie must be one line of printable ASCII without spaces");
    }
  }
  return cookie;
}

}  // namespace orion::erlang
