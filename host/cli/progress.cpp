#include "progress.hpp"

#include <unistd.h>

namespace bilevel::cli {

Progress::Progress(std::FILE* out) : out_(out), terminal_(isatty(fileno(out)) != 0) {}

Progress::~Progress() { finish(); }

void Progress::update(const std::string& line) {
  if (terminal_) {
    std::fprintf(out_, "\r\033[K%s", line.c_str());
    open_ = true;
  } else {
    std::fprintf(out_, "%s\n", line.c_str());
  }
  std::fflush(out_);
}

void Progress::finish() {
  if (open_) std::fputc('\n', out_);
  open_ = false;
  std::fflush(out_);
}

}  // namespace bilevel::cli
