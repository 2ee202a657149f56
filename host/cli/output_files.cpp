#include "output_files.hpp"

#include <bilevel/error.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

namespace bilevel::cli {

bool same_file(const std::string& a, const std::string& b) {
  if (a.empty() || b.empty()) return false;
  struct stat sa {}, sb {};
  if (::stat(a.c_str(), &sa) == 0 && ::stat(b.c_str(), &sb) == 0)
    return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
  std::error_code ea, eb;
  const auto ca = std::filesystem::weakly_canonical(a, ea);
  const auto cb = std::filesystem::weakly_canonical(b, eb);
  return !ea && !eb && ca == cb;
}

void refuse_shared_outputs(const std::vector<std::pair<std::string, std::string>>& paths) {
  for (std::size_t i = 0; i < paths.size(); ++i)
    for (std::size_t j = i + 1; j < paths.size(); ++j)
      BILEVEL_EXPECTS(!same_file(paths[i].second, paths[j].second),
                      paths[i].first << " '" << paths[i].second << "' and " << paths[j].first
                                     << " '" << paths[j].second
                                     << "' are one file: each would destroy the other; give "
                                        "them different paths");
}

void write_file_atomically(const std::string& path, const std::string& bytes,
                           const std::string& what) {
  std::string tmp = path + ".tmp-XXXXXX";
  const int fd = ::mkstemp(tmp.data());
  BILEVEL_EXPECTS(fd >= 0, what << " '" << path << "': cannot create a file beside it: "
                                << std::strerror(errno));
  const auto fail = [&](const char* doing) {
    const int e = errno;
    ::close(fd);
    ::unlink(tmp.c_str());
    throw InvalidArgument(what + " '" + path + "': " + doing + " failed: " + std::strerror(e));
  };
  ::fchmod(fd, 0644);
  const char* p = bytes.data();
  std::size_t left = bytes.size();
  while (left > 0) {
    const ssize_t n = ::write(fd, p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) fail("writing");
    p += n;
    left -= static_cast<std::size_t>(n);
  }
  if (::fsync(fd) != 0) fail("syncing");
  ::close(fd);
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const int e = errno;
    ::unlink(tmp.c_str());
    throw InvalidArgument(what + " '" + path + "': cannot replace it: " + std::strerror(e));
  }
}

}  // namespace bilevel::cli
