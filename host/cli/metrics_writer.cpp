#include "metrics_writer.hpp"

#include <stdexcept>
#include <vector>

namespace bilevel::cli {

MetricsWriter::MetricsWriter(const std::string& path, long keep_until) : path_(path) {
  if (path.empty()) return;
  std::vector<std::string> kept;
  if (keep_until >= 0) {
    // a resumed run: the lines of the iterations up to the checkpoint stay, the ones written
    // after it (which the resumed run writes again) and the old summary go
    std::ifstream in(path);
    std::string line;
    while (std::getline(in, line)) {
      const auto j = nlohmann::json::parse(line, nullptr, false);
      if (j.is_discarded() || !j.is_object() || j.contains("summary")) continue;
      const auto it = j.find("iteration");
      if (it != j.end() && it->is_number_integer() && it->get<long>() <= keep_until)
        kept.push_back(line);
    }
  }
  out_.open(path, std::ios::out | std::ios::trunc);
  if (!out_) throw std::runtime_error("cannot open metrics file '" + path + "' for writing");
  for (const auto& line : kept) out_ << line << '\n';
  out_.flush();
}

void MetricsWriter::write(const nlohmann::json& object) {
  if (!out_.is_open()) return;
  out_ << object.dump() << '\n';
  out_.flush();
  if (!out_) throw std::runtime_error("writing metrics file '" + path_ + "' failed");
}

}  // namespace bilevel::cli
