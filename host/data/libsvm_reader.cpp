// LIBSVM text files: "label index:value index:value ...", 1-based increasing indices.
#include <bilevel/data.hpp>
#include <bilevel/error.hpp>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>

namespace bilevel {

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
    const std::size_t hash = line.find('#');
    if (hash != std::string::npos) line.resize(hash);
    const char* p = line.c_str();
    while (*p == ' ' || *p == '\t' || *p == '\r') ++p;
    if (*p == '\0') continue;  // blank line or comment
    char* end = nullptr;
    errno = 0;
    const double label = std::strtod(p, &end);
    if (end == p || errno != 0 || !std::isfinite(label) || label != std::floor(label))
      fail("the label must be an integer, got '" + std::string(p, std::strcspn(p, " \t")) + "'");
    Row row{static_cast<long>(label), {}};
    p = end;
    index_t previous = 0;
    while (true) {
      while (*p == ' ' || *p == '\t' || *p == '\r') ++p;
      if (*p == '\0') break;
      errno = 0;
      const long long index = std::strtoll(p, &end, 10);
      if (end == p || *end != ':')
        fail("expected index:value, got '" + std::string(p, std::strcspn(p, " \t")) + "'");
      if (index < 1) fail("feature indices start at 1, got " + std::to_string(index));
      if (index <= previous) fail("feature indices must increase, got " + std::to_string(index) +
                                  " after " + std::to_string(previous));
      p = end + 1;
      errno = 0;
      const double value = std::strtod(p, &end);
      if (end == p || errno == ERANGE) fail("bad value after index " + std::to_string(index));
      if (!std::isfinite(value)) fail("feature " + std::to_string(index) + " is " + std::string(p, end - p));
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
  d.x.assign(static_cast<std::size_t>(d.samples * features), 0.0f);
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
