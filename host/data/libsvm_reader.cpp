// LIBSVM text files: "label index:value index:value ...", 1-based increasing indices.
#include <bilevel/data.hpp>
#include <bilevel/error.hpp>

#include "row_file.hpp"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>

namespace bilevel {
namespace {

/// Dense features refused beyond this width (sparse input is not supported yet).
constexpr index_t kMaxDenseFeatures = index_t(1) << 22;

/// At most 24 characters of the text at p, up to white space, with bytes outside printable
/// ASCII escaped as \xNN (a binary file must not print thousands of raw bytes).
std::string excerpt(const char* p) {
  std::string out;
  int n = 0;
  for (; *p != '\0' && *p != ' ' && *p != '\t' && n < 24; ++p, ++n) {
    const auto c = static_cast<unsigned char>(*p);
    if (c >= 32 && c < 127) {
      out += static_cast<char>(c);
    } else {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    }
  }
  if (n == 24 && *p != '\0' && *p != ' ' && *p != '\t') out += "...";
  return out;
}

struct Row {
  long label = 0;
  std::vector<std::pair<index_t, float>> entries;  // (0-based index, value), increasing
};

/// A LIBSVM file line by line: each sample line parsed into a Row, every error naming the file
/// and the line.
class LineParser {
 public:
  explicit LineParser(const std::string& path) : path_(path), in_(path) {
    if (!in_) throw InvalidArgument("cannot open '" + path + "': " + std::strerror(errno));
  }
  /// The next sample line into `row` (blank lines and comments skipped); false at the end.
  bool next(Row& row) {
    while (read_line()) {
      ++line_no_;
      if (parse(row)) return true;
    }
    if (in_.bad()) throw InvalidArgument("reading '" + path_ + "' failed");
    return false;
  }

  /// The longest line read: a sample of kMaxDenseFeatures entries of "index:value" fits; a file
  /// without newlines (/dev/zero, a binary) is refused here instead of read whole into memory.
  static constexpr std::size_t kMaxLineBytes = std::size_t{64} << 20;

 private:
  /// The next line into line_ (without its newline); false at the end of the file. Lines are
  /// taken a buffer at a time and bounded by kMaxLineBytes.
  bool read_line() {
    line_.clear();
    bool any = false;
    for (;;) {
      if (pos_ == len_) {
        in_.read(buffer_.data(), static_cast<std::streamsize>(buffer_.size()));
        len_ = static_cast<std::size_t>(in_.gcount());
        pos_ = 0;
        if (len_ == 0) return any;
      }
      any = true;
      const char* start = buffer_.data() + pos_;
      const void* nl = std::memchr(start, '\n', len_ - pos_);
      const std::size_t take =
          nl ? static_cast<std::size_t>(static_cast<const char*>(nl) - start) : len_ - pos_;
      if (line_.size() + take > kMaxLineBytes) {
        ++line_no_;
        fail("longer than " + std::to_string(kMaxLineBytes >> 20) +
             " MiB (more than any sample of at most " + std::to_string(kMaxDenseFeatures) +
             " features: not a LIBSVM file?)");
      }
      line_.append(start, take);
      pos_ += take;
      if (nl) {
        ++pos_;
        return true;
      }
    }
  }

  [[noreturn]] void fail(const std::string& what) const {
    throw InvalidArgument("'" + path_ + "' line " + std::to_string(line_no_) + ": " + what);
  }

  bool parse(Row& row) {
    const std::size_t nul = line_.find('\0');
    if (nul != std::string::npos)
      fail("NUL byte at column " + std::to_string(nul + 1) + " (a binary file?)");
    const std::size_t hash = line_.find('#');
    if (hash != std::string::npos) line_.resize(hash);
    const char* p = line_.c_str();
    while (*p == ' ' || *p == '\t' || *p == '\r') ++p;
    if (*p == '\0') return false;  // blank line or comment
    char* end = nullptr;
    errno = 0;
    const double label = std::strtod(p, &end);
    if (end == p || errno != 0 || !std::isfinite(label) || label != std::floor(label))
      fail("the label must be an integer, got '" + excerpt(p) + "'");
    if (std::abs(label) > 2147483647.0)
      fail("the label " + excerpt(p) + " is out of range (at most 2^31 - 1 in magnitude)");
    row.label = static_cast<long>(label);
    row.entries.clear();
    p = end;
    index_t previous = 0;
    while (true) {
      while (*p == ' ' || *p == '\t' || *p == '\r') ++p;
      if (*p == '\0') break;
      errno = 0;
      const long long index = std::strtoll(p, &end, 10);
      if (end == p || *end != ':')
        fail("expected index:value, got '" + excerpt(p) + "'");
      if (errno == ERANGE) fail("feature index " + excerpt(p) + " is out of range");
      if (index > kMaxDenseFeatures)
        fail("feature index " + std::to_string(index) + " makes " + std::to_string(index) +
             " features; dense storage needs " + std::to_string(index) +
             " x 4 bytes per sample, and sparse input is not supported yet (at most " +
             std::to_string(kMaxDenseFeatures) + " features)");
      if (index < 1) fail("feature indices start at 1, got " + std::to_string(index));
      if (index <= previous) fail("feature indices must increase, got " + std::to_string(index) +
                                  " after " + std::to_string(previous));
      p = end + 1;
      errno = 0;
      const double value = std::strtod(p, &end);
      // ERANGE on underflow (1e-400) is a value of 0 or a denormal: accepted
      if (end == p || (errno == ERANGE && std::abs(value) > 1.0))
        fail("bad value after index " + std::to_string(index));
      if (!std::isfinite(value)) fail("feature " + std::to_string(index) + " is " + excerpt(p));
      if (*end != '\0' && *end != ' ' && *end != '\t' && *end != '\r')
        fail("bad value after index " + std::to_string(index));
      p = end;
      previous = index;
      row.entries.emplace_back(index - 1, static_cast<float>(value));
    }
    return true;
  }

  std::string path_;
  std::ifstream in_;
  std::string line_;
  long line_no_ = 0;
  std::vector<char> buffer_ = std::vector<char>(std::size_t{1} << 20);
  std::size_t pos_ = 0, len_ = 0;
};

index_t last_index(const Row& r) { return r.entries.empty() ? 0 : r.entries.back().first + 1; }

/// The distinct labels, sorted, as classes 0..C-1.
std::map<long, int> class_ids(const std::vector<long>& labels) {
  std::map<long, int> classes;
  for (const long l : labels) classes.emplace(l, 0);
  int next = 0;
  for (auto& [label, id] : classes) id = next++;
  return classes;
}

/// A LIBSVM file row by row: the first pass (when opened) keeps the labels and the dimension,
/// each later pass parses the file again.
class LibsvmRows final : public detail::RowFile {
 public:
  explicit LibsvmRows(const std::string& path) : path_(path) {
    LineParser parser(path);
    Row row;
    std::vector<long> raw;
    index_t max_index = 0;
    while (parser.next(row)) {
      raw.push_back(row.label);
      max_index = std::max(max_index, last_index(row));
    }
    BILEVEL_EXPECTS(!raw.empty(), "'" << path << "': no samples");
    BILEVEL_EXPECTS(max_index > 0, "'" << path << "': no sample has a feature");
    const std::map<long, int> ids = class_ids(raw);
    BILEVEL_EXPECTS(ids.size() >= 2, "'" << path << "': all samples have the same label");
    source_ = path;
    samples_ = static_cast<index_t>(raw.size());
    features_ = max_index;
    classes_ = static_cast<int>(ids.size());
    labels_.reserve(raw.size());
    for (const long l : raw) labels_.push_back(ids.at(l));
  }

  void for_each_row(const std::vector<std::uint8_t>* wanted,
                    const std::function<void(index_t, const float*)>& visit) const override {
    LineParser parser(path_);
    Row row;
    std::vector<float> dense(static_cast<std::size_t>(features_));
    index_t i = 0;
    for (; parser.next(row); ++i) {
      BILEVEL_EXPECTS(i < samples_ && last_index(row) <= features_,
                      "'" << path_ << "' changed while it was read");
      if (wanted && !(*wanted)[static_cast<std::size_t>(i)]) continue;
      std::fill(dense.begin(), dense.end(), 0.0f);
      for (const auto& [j, v] : row.entries) dense[static_cast<std::size_t>(j)] = v;
      visit(i, dense.data());
    }
    BILEVEL_EXPECTS(i == samples_, "'" << path_ << "' changed while it was read");
  }

 private:
  std::string path_;
};

}  // namespace

namespace detail {
std::unique_ptr<RowFile> open_libsvm_rows(const std::string& path) {
  return std::make_unique<LibsvmRows>(path);
}
}  // namespace detail

namespace {

/// A LIBSVM file's rows as parsed, and its largest feature index.
struct LibsvmFile {
  std::vector<Row> rows;
  index_t max_index = 0;
};

LibsvmFile read_rows(const std::string& path) {
  LineParser parser(path);
  LibsvmFile f;
  for (Row row; parser.next(row);) {
    f.max_index = std::max(f.max_index, last_index(row));
    f.rows.push_back(std::move(row));
    row = Row{};
  }
  BILEVEL_EXPECTS(!f.rows.empty(), "'" << path << "': no samples");
  return f;
}

std::vector<long> raw_labels(const LibsvmFile& f) {
  std::vector<long> raw;
  raw.reserve(f.rows.size());
  for (const Row& r : f.rows) raw.push_back(r.label);
  return raw;
}

/// The rows as dense samples of `features` features, labels through `classes`.
Dataset to_dataset(const std::string& path, const LibsvmFile& f, index_t features,
                   const std::map<long, int>& classes) {
  BILEVEL_EXPECTS(features > 0, "'" << path << "': no sample has a feature");
  BILEVEL_EXPECTS(f.max_index <= features, "'" << path << "': feature index " << f.max_index
                                               << " exceeds the dimension " << features);
  Dataset d;
  d.source = path;
  d.samples = static_cast<index_t>(f.rows.size());
  d.features = features;
  d.classes = static_cast<int>(classes.size());
  d.x.assign(static_cast<std::size_t>(checked_mul(d.samples, features,
                                                  "'" + path + "': samples x features")),
             0.0f);
  d.labels.resize(f.rows.size());
  for (std::size_t i = 0; i < f.rows.size(); ++i) {
    d.labels[i] = classes.at(f.rows[i].label);
    for (const auto& [j, v] : f.rows[i].entries) d.x[i * features + j] = v;
  }
  return d;
}

}  // namespace

Dataset read_libsvm(const std::string& path, index_t features) {
  const LibsvmFile f = read_rows(path);
  const std::map<long, int> classes = class_ids(raw_labels(f));
  Dataset d = to_dataset(path, f, features == 0 ? f.max_index : features, classes);
  BILEVEL_EXPECTS(d.classes >= 2, "'" << path << "': all samples have the same label");
  d.validate();
  return d;
}

std::vector<Dataset> read_libsvm_splits(const std::vector<std::string>& paths, index_t features) {
  BILEVEL_EXPECTS(!paths.empty(), "read_libsvm_splits: no files");
  std::vector<LibsvmFile> files;
  std::vector<long> raw;
  index_t max_index = 0;
  for (const std::string& path : paths) {
    files.push_back(read_rows(path));
    const std::vector<long> labels = raw_labels(files.back());
    raw.insert(raw.end(), labels.begin(), labels.end());
    max_index = std::max(max_index, files.back().max_index);
  }
  // one class map and one dimension for every file: a split may lack a class or a feature
  const std::map<long, int> classes = class_ids(raw);
  BILEVEL_EXPECTS(classes.size() >= 2, "'" << paths.front() << "' and the other splits: all "
                                           "samples have the same label");
  std::vector<Dataset> out;
  for (std::size_t k = 0; k < paths.size(); ++k) {
    out.push_back(to_dataset(paths[k], files[k], features == 0 ? max_index : features, classes));
    out.back().validate();
  }
  return out;
}

}  // namespace bilevel
