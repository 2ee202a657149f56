#include "metrics_writer.hpp"

#include <stdexcept>

namespace bilevel::cli {

MetricsWriter::MetricsWriter(const std::string& path) : path_(path) {
  if (path.empty()) return;
  out_.open(path, std::ios::out | std::ios::trunc);
  if (!out_) throw std::runtime_error("cannot open metrics file '" + path + "' for writing");
}

void MetricsWriter::write(const nlohmann::json& object) {
  if (!out_.is_open()) return;
  out_ << object.dump() << '\n';
  out_.flush();
  if (!out_) throw std::runtime_error("writing metrics file '" + path_ + "' failed");
}

}  // namespace bilevel::cli
