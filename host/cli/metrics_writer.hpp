// Metrics as JSON lines: one object per evaluation, then one summary object. Each line is
// flushed when written, so the file stays readable if the run stops early.
#pragma once

#include <nlohmann/json.hpp>

#include <fstream>
#include <string>

namespace bilevel::cli {

class MetricsWriter {
 public:
  /// An empty path writes nothing. Throws std::runtime_error naming the file if it cannot open.
  /// keep_until >= 0 (a resumed run): the file's lines of iterations up to keep_until stay and
  /// new lines are appended after them.
  explicit MetricsWriter(const std::string& path, long keep_until = -1);
  void write(const nlohmann::json& object);
  bool enabled() const { return out_.is_open(); }

 private:
  std::string path_;
  std::ofstream out_;
};

}  // namespace bilevel::cli
