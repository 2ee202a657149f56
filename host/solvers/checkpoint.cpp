// Checkpoint files (see bilevel/checkpoint.hpp for the format).
#include <bilevel/checkpoint.hpp>

#include <bilevel/error.hpp>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace bilevel {
namespace {

constexpr char kMagic[8] = {'B', 'L', 'V', 'L', 'C', 'K', 'P', 'T'};
constexpr std::uint32_t kVersion = 1;

struct Header {
  char magic[8];
  std::uint32_t version;
  std::uint32_t value_bytes;
  std::int64_t iteration, dx, dy, instances;
  char tag[64];
};

}  // namespace

template <typename T>
void write_checkpoint(const std::string& path, const Checkpoint<T>& c) {
  BILEVEL_EXPECTS(c.tag.size() <= sizeof(Header::tag),
                  "checkpoint for '" << path << "': the tag is longer than 64 bytes");
  BILEVEL_EXPECTS(static_cast<index_t>(c.x.size()) == c.dx * c.instances &&
                      static_cast<index_t>(c.y.size()) == c.dy * c.instances,
                  "checkpoint for '" << path << "': x and y must hold dx * B and dy * B values");
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    BILEVEL_EXPECTS(out.good(), "cannot write checkpoint file '" << tmp << "'");
    Header h{};
    std::memcpy(h.magic, kMagic, sizeof kMagic);
    h.version = kVersion;
    h.value_bytes = sizeof(T);
    h.iteration = c.iteration, h.dx = c.dx, h.dy = c.dy, h.instances = c.instances;
    std::memcpy(h.tag, c.tag.data(), c.tag.size());
    out.write(reinterpret_cast<const char*>(&h), sizeof h);
    out.write(reinterpret_cast<const char*>(c.x.data()), static_cast<std::streamsize>(c.x.size() * sizeof(T)));
    out.write(reinterpret_cast<const char*>(c.y.data()), static_cast<std::streamsize>(c.y.size() * sizeof(T)));
    out.flush();
    BILEVEL_EXPECTS(out.good(), "writing checkpoint file '" << tmp << "' failed (disk full?)");
  }
  BILEVEL_EXPECTS(std::rename(tmp.c_str(), path.c_str()) == 0,
                  "cannot rename '" << tmp << "' to '" << path << "'");
}

template <typename T>
Checkpoint<T> read_checkpoint(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  BILEVEL_EXPECTS(in.good(), "cannot open checkpoint file '" << path << "'");
  Header h{};
  in.read(reinterpret_cast<char*>(&h), sizeof h);
  BILEVEL_EXPECTS(in.gcount() == static_cast<std::streamsize>(sizeof h) &&
                      std::memcmp(h.magic, kMagic, sizeof kMagic) == 0,
                  "'" << path << "' is not a bilevel checkpoint");
  BILEVEL_EXPECTS(h.version == kVersion, "checkpoint '" << path << "' has version " << h.version
                                                        << ", this build reads " << kVersion);
  BILEVEL_EXPECTS(h.value_bytes == sizeof(T),
                  "checkpoint '" << path << "' holds " << (h.value_bytes == 4 ? "float" : "double")
                                 << " values; this run is " << (sizeof(T) == 4 ? "float" : "double")
                                 << " (--precision)");
  BILEVEL_EXPECTS(h.iteration >= 0 && h.dx > 0 && h.dy > 0 && h.instances > 0,
                  "checkpoint '" << path << "' has an invalid header");
  // the payload the header claims must be what the file holds, before anything is allocated
  const index_t values = checked_add(checked_mul(h.dx, h.instances, "checkpoint '" + path + "': dx x B"),
                                     checked_mul(h.dy, h.instances, "checkpoint '" + path + "': dy x B"),
                                     "checkpoint '" + path + "': values");
  const index_t payload = checked_mul(values, static_cast<index_t>(sizeof(T)),
                                      "checkpoint '" + path + "': bytes");
  std::error_code ec;
  const auto size = std::filesystem::file_size(path, ec);
  BILEVEL_EXPECTS(!ec && static_cast<std::uintmax_t>(payload) + sizeof h == size,
                  "checkpoint '" << path << "' is truncated or padded: the header claims " << payload
                                 << " bytes of values (dx " << h.dx << ", dy " << h.dy << ", "
                                 << h.instances << " instances) but the file holds "
                                 << (ec ? 0 : size) << " bytes in all");
  Checkpoint<T> c;
  c.iteration = h.iteration, c.dx = h.dx, c.dy = h.dy, c.instances = h.instances;
  c.tag.assign(h.tag, strnlen(h.tag, sizeof h.tag));
  c.x.resize(static_cast<std::size_t>(h.dx * h.instances));
  c.y.resize(static_cast<std::size_t>(h.dy * h.instances));
  in.read(reinterpret_cast<char*>(c.x.data()), static_cast<std::streamsize>(c.x.size() * sizeof(T)));
  in.read(reinterpret_cast<char*>(c.y.data()), static_cast<std::streamsize>(c.y.size() * sizeof(T)));
  BILEVEL_EXPECTS(in.gcount() == static_cast<std::streamsize>(c.y.size() * sizeof(T)),
                  "checkpoint '" << path << "' is truncated");
  in.peek();
  BILEVEL_EXPECTS(in.eof(), "checkpoint '" << path << "' has trailing bytes");
  return c;
}

template void write_checkpoint(const std::string&, const Checkpoint<float>&);
template void write_checkpoint(const std::string&, const Checkpoint<double>&);
template Checkpoint<float> read_checkpoint(const std::string&);
template Checkpoint<double> read_checkpoint(const std::string&);

}  // namespace bilevel
