// Metrics as JSON lines: one object per evaluation, then one summary object. Each line goes to
// the file in one write as it comes (so a run killed at any moment keeps every line written
// before it), and a line that cannot be written whole (a full disk) is taken back: the file
// always ends with a complete line.
#pragma once

#include <nlohmann/json.hpp>

#include <string>

namespace bilevel::cli {

class MetricsWriter {
 public:
  /// An empty path writes nothing. The file is opened at the first line, not here: a run
  /// refused before it starts (a resume under other settings, a bad option) leaves an existing
  /// file as it was.
  explicit MetricsWriter(const std::string& path);
  ~MetricsWriter();
  MetricsWriter(const MetricsWriter&) = delete;
  MetricsWriter& operator=(const MetricsWriter&) = delete;

  /// A resumed run: the file's lines of iterations up to `iteration` stay (the others and the
  /// old summary go, as the resumed run writes them again), then new lines follow them.
  void resume_at(long iteration) { keep_until_ = iteration; }
  /// Throws std::runtime_error naming the file when it cannot be opened or written.
  void write(const nlohmann::json& object);
  bool enabled() const { return !path_.empty(); }

 private:
  void open();

  std::string path_;
  long keep_until_ = -1;
  int fd_ = -1;
  long long size_ = 0;  // bytes of complete lines in the file
};

}  // namespace bilevel::cli
