// LIBSVM text files: "label index:value index:value ...", 1-based increasing indices.
#include <bilevel/data.hpp>
#include <bilevel/error.hpp>

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

}  // namespace

Dataset read_libsvm(const std::string& path, index_t features) {
  std::ifstream in(path);
  if (!in) throw InvalidArgument("cannot open '" + path + "': " + std::strerror(errno));
  struct Row {
    long label;
    std::vector<std::pair<index_t, float>> entries;
  };
  std::vector<Row> rows;
  index_t max_index = 0;
  std::string line;
  long line_no = 0;
  const auto fail = [&](const std::string& what) {
    throw InvalidArgument("'" + path + "' line " + std::to_string(line_no) + ": " + what);
  };
  while (std::getline(in, line)) {
    ++line_no;
    const std::size_t nul = line.find('\0');
    if (nul != std::string::npos)
      fail("NUL byte at column " + std::to_string(nul + 1) + " (a binary file?)");
    const std::size_t hash = line.find('#');
    if (hash != std::string::npos) line.resize(hash);
    const char* p = line.c_str();
    while (*p == ' ' || *p == '\t' || *p == '\r') ++p;
    if (*p == '\0') continue;  // blank line or comment
    char* end = nullptr;
    errno = 0;
    const double label = std::strtod(p, &end);
    if (end == p || errno != 0 || !std::isfinite(label) || label != std::floor(label))
      fail("the label must be an integer, got '" + excerpt(p) + "'");
    if (std::abs(label) > 2147483647.0)
      fail("the label " + excerpt(p) + " is out of range (at most 2^31 - 1 in magnitude)");
    Row row{static_cast<long>(label), {}};
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
      max_index = std::max<index_t>(max_index, index);
    }
    rows.push_back(std::move(row));
  }
  if (in.bad()) throw InvalidArgument("reading '" + path + "' failed");
  BILEVEL_EXPECTS(!rows.empty(), "'" << path << "': no samples");
  if (features == 0) features = max_index;
  BILEVEL_EXPECTS(features > 0, "'" << path << "': no sample has a feature");
  BILEVEL_EXPECTS(max_index <= features, "'" << path << "': feature index " << max_index
                                             << " exceeds the dimension " << features);
  std::map<long, int> classes;
  for (const Row& r : rows) classes.emplace(r.label, 0);
  int next = 0;
  for (auto& [label, id] : classes) id = next++;
  Dataset d;
  d.source = path;
  d.samples = static_cast<index_t>(rows.size());
  d.features = features;
  d.classes = next;
  d.x.assign(static_cast<std::size_t>(checked_mul(d.samples, features,
                                                  "'" + path + "': samples x features")),
             0.0f);
  d.labels.resize(rows.size());
  for (std::size_t i = 0; i < rows.size(); ++i) {
    d.labels[i] = classes[rows[i].label];
    for (const auto& [j, v] : rows[i].entries) d.x[i * features + j] = v;
  }
  BILEVEL_EXPECTS(d.classes >= 2, "'" << path << "': all samples have the same label");
  d.validate();
  return d;
}

}  // namespace bilevel
