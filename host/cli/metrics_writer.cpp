#include "metrics_writer.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <stdexcept>
#include <vector>

namespace bilevel::cli {
namespace {

/// Writes all of `bytes`; false with errno set when the file takes fewer.
bool write_all(int fd, const std::string& bytes) {
  const char* p = bytes.data();
  std::size_t left = bytes.size();
  while (left > 0) {
    const ssize_t n = ::write(fd, p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    p += n;
    left -= static_cast<std::size_t>(n);
  }
  return true;
}

}  // namespace

MetricsWriter::MetricsWriter(const std::string& path) : path_(path) {}

MetricsWriter::~MetricsWriter() {
  if (fd_ >= 0) ::close(fd_);
}

void MetricsWriter::open() {
  std::string kept;
  if (keep_until_ >= 0) {
    // a resumed run: the lines of the iterations up to the checkpoint stay, the ones written
    // after it (which the resumed run writes again) and the old summary go
    std::ifstream in(path_);
    std::string line;
    while (std::getline(in, line)) {
      const auto j = nlohmann::json::parse(line, nullptr, false);
      if (j.is_discarded() || !j.is_object() || j.contains("summary")) continue;
      const auto it = j.find("iteration");
      if (it != j.end() && it->is_number_integer() && it->get<long>() <= keep_until_)
        kept += line + "\n";
    }
  }
  fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd_ < 0)
    throw std::runtime_error("cannot open metrics file '" + path_ + "' for writing: " +
                             std::strerror(errno));
  if (!write_all(fd_, kept)) {
    const int e = errno;
    (void)::ftruncate(fd_, 0);
    throw std::runtime_error("writing metrics file '" + path_ + "' failed: " + std::strerror(e));
  }
  size_ = static_cast<long long>(kept.size());
}

void MetricsWriter::write(const nlohmann::json& object) {
  if (path_.empty()) return;
  if (fd_ < 0) open();
  const std::string line = object.dump() + "\n";
  if (!write_all(fd_, line)) {
    // take the partial line back: the file ends with its last complete line
    const int e = errno;
    (void)::ftruncate(fd_, size_);
    (void)::lseek(fd_, size_, SEEK_SET);
    throw std::runtime_error("writing metrics file '" + path_ + "' failed: " + std::strerror(e) +
                             " (it keeps its complete lines)");
  }
  size_ += static_cast<long long>(line.size());
}

}  // namespace bilevel::cli
