// The progress line on stderr: rewritten in place on a terminal, plain lines otherwise.
#pragma once

#include <cstdio>
#include <string>

namespace bilevel::cli {

class Progress {
 public:
  explicit Progress(std::FILE* out = stderr);
  ~Progress();
  /// Shows one line of progress (replaces the previous one on a terminal).
  void update(const std::string& line);
  /// Ends the progress display (moves past the in-place line).
  void finish();

 private:
  std::FILE* out_;
  bool terminal_;
  bool open_ = false;
};

}  // namespace bilevel::cli
