// Checkpoint files (see bilevel/checkpoint.hpp for the format).
#include <bilevel/checkpoint.hpp>

#include <bilevel/error.hpp>

#include "../common/file_byte_order.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

namespace bilevel {
namespace {

constexpr char kMagic[8] = {'B', 'L', 'V', 'L', 'C', 'K', 'P', 'T'};
constexpr std::uint32_t kVersion = 4;

/// Versions 2 and 3 (still read).
struct HeaderV3 {
  char magic[8];
  std::uint32_t version;
  std::uint32_t value_bytes;
  std::int64_t iteration, dx, dy, instances;
  std::uint32_t crc;  ///< CRC-32 (zlib) of x, y, the state's lengths and values
  std::uint32_t state_arrays;  ///< version 2: reserved, 0
  char tag[kCheckpointTagBytes];
};

/// Version 4: the CRC covers the whole file (this header with crc = 0, the settings, the
/// values), and the run's settings follow the header.
struct HeaderV4 {
  char magic[8];
  std::uint32_t version;
  std::uint32_t value_bytes;
  std::int64_t iteration, dx, dy, instances;
  std::uint32_t crc;
  std::uint32_t state_arrays;
  std::uint32_t settings_bytes;
  std::uint32_t reserved;  ///< 0
  char tag[kCheckpointTagBytes];
};

template <typename T>
std::uint32_t payload_crc(const std::vector<T>& x, const std::vector<T>& y,
                          const std::vector<std::int64_t>& lengths,
                          const std::vector<std::vector<T>>& state, uLong crc = crc32(0L, Z_NULL, 0)) {
  // (zlib restarts the CRC on a null buffer: an empty vector's data() may be null)
  const auto add = [&crc](const void* data, std::size_t bytes) {
    if (bytes > 0) crc = crc32_z(crc, static_cast<const Bytef*>(data), bytes);
  };
  add(x.data(), x.size() * sizeof(T));
  add(y.data(), y.size() * sizeof(T));
  add(lengths.data(), lengths.size() * sizeof(std::int64_t));
  for (const std::vector<T>& a : state) add(a.data(), a.size() * sizeof(T));
  return static_cast<std::uint32_t>(crc);
}

/// Version 4's CRC: the header (its crc field zero) and the settings, then the values.
template <typename T>
std::uint32_t file_crc(HeaderV4 h, const std::string& settings, const std::vector<T>& x,
                       const std::vector<T>& y, const std::vector<std::int64_t>& lengths,
                       const std::vector<std::vector<T>>& state) {
  h.crc = 0;
  uLong crc = crc32(0L, Z_NULL, 0);
  crc = crc32_z(crc, reinterpret_cast<const Bytef*>(&h), sizeof h);
  if (!settings.empty())
    crc = crc32_z(crc, reinterpret_cast<const Bytef*>(settings.data()), settings.size());
  return payload_crc(x, y, lengths, state, crc);
}

template <typename T>
std::vector<std::int64_t> state_lengths(const std::vector<std::vector<T>>& state) {
  std::vector<std::int64_t> lengths;
  for (const std::vector<T>& a : state) lengths.push_back(static_cast<std::int64_t>(a.size()));
  return lengths;
}

/// The first non-finite value of x or y as "x[i] of instance b", or "" when all are finite.
template <typename T>
std::string first_non_finite(const std::vector<T>& v, index_t rows, const char* name,
                             index_t* instance) {
  for (std::size_t k = 0; k < v.size(); ++k)
    if (!std::isfinite(v[k])) {
      *instance = static_cast<index_t>(k) / rows;
      return std::string(name) + "[" + std::to_string(static_cast<index_t>(k) % rows) +
             "] of instance " + std::to_string(*instance) + " is " + std::to_string(v[k]);
    }
  return "";
}

void write_all(int fd, const void* data, std::size_t bytes, const std::string& path) {
  const auto* p = static_cast<const char*>(data);
  while (bytes > 0) {
    const ssize_t n = ::write(fd, p, bytes);
    if (n < 0 && errno == EINTR) continue;
    BILEVEL_EXPECTS(n > 0, "writing checkpoint file '" << path << "' failed: "
                                                       << std::strerror(errno)
                                                       << " (the previous checkpoint stays)");
    p += n;
    bytes -= static_cast<std::size_t>(n);
  }
}

}  // namespace

template <typename T>
void write_checkpoint(const std::string& path, const Checkpoint<T>& c, bool keep_previous) {
  BILEVEL_EXPECTS(c.tag.size() <= kCheckpointTagBytes,
                  "checkpoint for '" << path << "': the tag is longer than "
                                     << kCheckpointTagBytes << " bytes");
  BILEVEL_EXPECTS(static_cast<index_t>(c.x.size()) == c.dx * c.instances &&
                      static_cast<index_t>(c.y.size()) == c.dy * c.instances,
                  "checkpoint for '" << path << "': x and y must hold dx * B and dy * B values");
  BILEVEL_EXPECTS(c.state.size() <= kCheckpointMaxStateArrays,
                  "checkpoint for '" << path << "': " << c.state.size()
                                     << " carried-state arrays, at most "
                                     << kCheckpointMaxStateArrays);
  for (const std::vector<T>& a : c.state)
    BILEVEL_EXPECTS(static_cast<index_t>(a.size()) % c.instances == 0,
                    "checkpoint for '" << path << "': a carried-state array of " << a.size()
                                       << " values is not rows x " << c.instances);
  // a diverged state never replaces the previous checkpoint
  index_t instance = 0;
  std::string bad = first_non_finite(c.x, c.dx, "x", &instance);
  if (bad.empty()) bad = first_non_finite(c.y, c.dy, "y", &instance);
  for (std::size_t k = 0; k < c.state.size() && bad.empty(); ++k)
    bad = first_non_finite(c.state[k], static_cast<index_t>(c.state[k].size()) / c.instances,
                           ("carried state " + std::to_string(k)).c_str(), &instance);
  if (!bad.empty())
    throw DivergenceError("diverged at iteration " + std::to_string(c.iteration) + ": " + bad +
                              "; the checkpoint '" + path + "' was not replaced",
                          static_cast<long>(c.iteration), static_cast<long>(instance));
  BILEVEL_EXPECTS(c.settings.size() <= kCheckpointMaxSettingsBytes,
                  "checkpoint for '" << path << "': " << c.settings.size()
                                     << " bytes of settings, at most " << kCheckpointMaxSettingsBytes);
  HeaderV4 h{};
  std::memcpy(h.magic, kMagic, sizeof kMagic);
  h.version = kVersion;
  h.value_bytes = sizeof(T);
  h.iteration = c.iteration, h.dx = c.dx, h.dy = c.dy, h.instances = c.instances;
  const std::vector<std::int64_t> lengths = state_lengths(c.state);
  h.state_arrays = static_cast<std::uint32_t>(c.state.size());
  h.settings_bytes = static_cast<std::uint32_t>(c.settings.size());
  std::memcpy(h.tag, c.tag.data(), c.tag.size());
  h.crc = file_crc(h, c.settings, c.x, c.y, lengths, c.state);
  // a temporary file of this writer's own (two runs writing one path never share it), written
  // and synced, then renamed over the old one and the directory synced: a crash at any point
  // leaves one complete checkpoint; a failure (a full disk) removes the temporary
  std::string tmp = path + ".tmp-XXXXXX";
  const int fd = ::mkstemp(tmp.data());
  BILEVEL_EXPECTS(fd >= 0, "cannot write checkpoint file '" << path << "': cannot create a file "
                                                            << "beside it: " << std::strerror(errno));
  try {
    ::fchmod(fd, 0644);
    write_all(fd, &h, sizeof h, path);
    write_all(fd, c.settings.data(), c.settings.size(), path);
    write_all(fd, c.x.data(), c.x.size() * sizeof(T), path);
    write_all(fd, c.y.data(), c.y.size() * sizeof(T), path);
    write_all(fd, lengths.data(), lengths.size() * sizeof(std::int64_t), path);
    for (const std::vector<T>& a : c.state) write_all(fd, a.data(), a.size() * sizeof(T), path);
    BILEVEL_EXPECTS(::fsync(fd) == 0, "syncing checkpoint file '" << path << "' failed: "
                                                                  << std::strerror(errno));
  } catch (...) {
    ::close(fd);
    ::unlink(tmp.c_str());
    throw;
  }
  ::close(fd);
  if (keep_previous) {
    // the checkpoint it replaces becomes PATH.previous (through a link of its own, renamed):
    // PATH itself exists at every moment
    std::string link_tmp = path + ".previous-XXXXXX";
    const int lfd = ::mkstemp(link_tmp.data());
    if (lfd >= 0) {
      ::close(lfd);
      ::unlink(link_tmp.c_str());
      if (::link(path.c_str(), link_tmp.c_str()) == 0 &&
          std::rename(link_tmp.c_str(), (path + ".previous").c_str()) != 0)
        ::unlink(link_tmp.c_str());
    }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const int e = errno;
    ::unlink(tmp.c_str());
    throw InvalidArgument("cannot replace checkpoint file '" + path + "': " + std::strerror(e));
  }
  const std::string dir = std::filesystem::path(path).parent_path().string();
  const int dfd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    (void)::fsync(dfd);
    ::close(dfd);
  }
}

template <typename T>
Checkpoint<T> read_checkpoint(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  BILEVEL_EXPECTS(in.good(), "cannot open checkpoint file '" << path << "'");
  // magic and version first: the header that follows depends on the version
  char start[12] = {};
  in.read(start, sizeof start);
  BILEVEL_EXPECTS(in.gcount() == 12 && std::memcmp(start, kMagic, sizeof kMagic) == 0,
                  "'" << path << "' is not a bilevel checkpoint");
  std::uint32_t version = 0;
  std::memcpy(&version, start + 8, sizeof version);
  BILEVEL_EXPECTS(version == kVersion || version == 3 || version == 2,
                  "checkpoint '" << path << "' has version " << version
                                 << ", this build reads 2 to " << kVersion);
  // both headers as version 4's (a version 2 or 3 header has no settings, no reserved word)
  HeaderV4 h{};
  in.seekg(0);
  if (version == kVersion) {
    in.read(reinterpret_cast<char*>(&h), sizeof h);
    BILEVEL_EXPECTS(in.gcount() == static_cast<std::streamsize>(sizeof h),
                    "checkpoint '" << path << "' is truncated (no complete header)");
  } else {
    HeaderV3 old{};
    in.read(reinterpret_cast<char*>(&old), sizeof old);
    BILEVEL_EXPECTS(in.gcount() == static_cast<std::streamsize>(sizeof old),
                    "checkpoint '" << path << "' is truncated (no complete header)");
    std::memcpy(h.magic, old.magic, sizeof h.magic);
    h.version = old.version, h.value_bytes = old.value_bytes, h.iteration = old.iteration;
    h.dx = old.dx, h.dy = old.dy, h.instances = old.instances, h.crc = old.crc;
    h.state_arrays = version == 2 ? 0 : old.state_arrays;
    std::memcpy(h.tag, old.tag, sizeof h.tag);
  }
  const std::size_t header_bytes = version == kVersion ? sizeof(HeaderV4) : sizeof(HeaderV3);
  BILEVEL_EXPECTS(h.value_bytes == sizeof(T),
                  "checkpoint '" << path << "' holds " << (h.value_bytes == 4 ? "float" : "double")
                                 << " values; this run is " << (sizeof(T) == 4 ? "float" : "double")
                                 << " (--precision)");
  BILEVEL_EXPECTS(h.iteration >= 0 && h.dx > 0 && h.dy > 0 && h.instances > 0 &&
                      h.settings_bytes <= kCheckpointMaxSettingsBytes && h.reserved == 0,
                  "checkpoint '" << path << "' has an invalid header");
  const std::uint32_t arrays = h.state_arrays;
  BILEVEL_EXPECTS(arrays <= kCheckpointMaxStateArrays,
                  "checkpoint '" << path << "' has an invalid header (" << arrays
                                 << " carried-state arrays)");
  // the payload the header claims must be what the file holds, before anything is allocated
  const std::string what = "checkpoint '" + path + "'";
  const index_t values = checked_add(checked_mul(h.dx, h.instances, what + ": dx x B"),
                                     checked_mul(h.dy, h.instances, what + ": dy x B"),
                                     what + ": values");
  const index_t xy_bytes = checked_mul(values, static_cast<index_t>(sizeof(T)), what + ": bytes");
  std::error_code ec;
  const auto size = std::filesystem::file_size(path, ec);
  const index_t table = static_cast<index_t>(arrays * sizeof(std::int64_t));
  const index_t fixed = static_cast<index_t>(header_bytes + h.settings_bytes);
  BILEVEL_EXPECTS(!ec && static_cast<std::uintmax_t>(xy_bytes) + table + fixed <= size,
                  what << " is truncated: the header claims " << xy_bytes
                       << " bytes of x and y (dx " << h.dx << ", dy " << h.dy << ", "
                       << h.instances << " instances) but the file holds " << (ec ? 0 : size)
                       << " bytes in all");
  Checkpoint<T> c;
  c.iteration = h.iteration, c.dx = h.dx, c.dy = h.dy, c.instances = h.instances;
  c.tag.assign(h.tag, strnlen(h.tag, sizeof h.tag));
  c.settings.resize(h.settings_bytes);
  in.read(c.settings.data(), static_cast<std::streamsize>(c.settings.size()));
  c.x.resize(static_cast<std::size_t>(h.dx * h.instances));
  c.y.resize(static_cast<std::size_t>(h.dy * h.instances));
  in.read(reinterpret_cast<char*>(c.x.data()), static_cast<std::streamsize>(c.x.size() * sizeof(T)));
  in.read(reinterpret_cast<char*>(c.y.data()), static_cast<std::streamsize>(c.y.size() * sizeof(T)));
  BILEVEL_EXPECTS(in.gcount() == static_cast<std::streamsize>(c.y.size() * sizeof(T)),
                  what << " is truncated");
  std::vector<std::int64_t> lengths(arrays);
  in.read(reinterpret_cast<char*>(lengths.data()),
          static_cast<std::streamsize>(lengths.size() * sizeof(std::int64_t)));
  BILEVEL_EXPECTS(in.gcount() == static_cast<std::streamsize>(lengths.size() * sizeof(std::int64_t)),
                  what << " is truncated");
  index_t state_bytes = 0;
  for (const std::int64_t n : lengths) {
    BILEVEL_EXPECTS(n >= 0 && n % h.instances == 0,
                    what << " has an invalid carried-state length " << n);
    state_bytes = checked_add(state_bytes, checked_mul(n, static_cast<index_t>(sizeof(T)), what),
                              what);
  }
  const index_t claimed = checked_add(checked_add(xy_bytes, table, what), state_bytes, what);
  BILEVEL_EXPECTS(static_cast<std::uintmax_t>(claimed) + fixed == size,
                  what << " is truncated or padded: the header and its table claim " << claimed
                       << " bytes of values (dx " << h.dx << ", dy " << h.dy << ", "
                       << h.instances << " instances, " << arrays
                       << " carried-state arrays) but the file holds " << size << " bytes in all");
  for (const std::int64_t n : lengths) {
    std::vector<T> a(static_cast<std::size_t>(n));
    in.read(reinterpret_cast<char*>(a.data()), static_cast<std::streamsize>(a.size() * sizeof(T)));
    BILEVEL_EXPECTS(in.gcount() == static_cast<std::streamsize>(a.size() * sizeof(T)),
                    what << " is truncated");
    c.state.push_back(std::move(a));
  }
  // version 4: over the whole file, header included (a flipped bit in the iteration is caught);
  // versions 2 and 3 covered the values only
  const std::uint32_t crc = version == kVersion ? file_crc(h, c.settings, c.x, c.y, lengths, c.state)
                            : version == 2       ? payload_crc(c.x, c.y, {}, c.state)
                                                 : payload_crc(c.x, c.y, lengths, c.state);
  BILEVEL_EXPECTS(crc == h.crc, what << " is damaged: its contents do not match their "
                                     << "CRC-32 (a bit flipped on disk or in transfer?)");
  index_t instance = 0;
  std::string bad = first_non_finite(c.x, c.dx, "x", &instance);
  if (bad.empty()) bad = first_non_finite(c.y, c.dy, "y", &instance);
  for (std::size_t k = 0; k < c.state.size() && bad.empty(); ++k)
    bad = first_non_finite(c.state[k], static_cast<index_t>(c.state[k].size()) / c.instances,
                           ("carried state " + std::to_string(k)).c_str(), &instance);
  BILEVEL_EXPECTS(bad.empty(), what << " holds a diverged state: " << bad);
  return c;
}

std::string settings_difference(const std::string& written, const std::string& now,
                                const std::string& defaults_text) {
  const auto parse = [](const std::string& text) {
    std::map<std::string, std::string> out;
    std::istringstream in(text);
    std::string line;
    while (std::getline(in, line)) {
      const std::size_t eq = line.find('=');
      if (eq == std::string::npos) continue;
      out[line.substr(0, eq)] = line.substr(eq + 1);
    }
    return out;
  };
  const auto a = parse(written), b = parse(now);
  // the problem's settings first (the others, steps derived from the data, follow from them),
  // at most five named
  std::vector<std::string> problem, other;
  const auto add = [&](const std::string& key, const std::string& was, const std::string& is) {
    (key.rfind("problem.", 0) == 0 || key == "command" ? problem : other)
        .push_back(key + ": " + (was.empty() ? "(none)" : was) + " in the checkpoint, " +
                   (is.empty() ? "(none)" : is) + " now");
  };
  for (const auto& [key, value] : a) {
    const auto it = b.find(key);
    if (it == b.end()) add(key, value, "");
    else if (it->second != value) add(key, value, it->second);
  }
  // a setting the checkpoint does not name was added after it was written: at its default it
  // runs as the writing version ran (srba_period=0 in files from before SRBA)
  const auto defaults = parse(defaults_text);
  for (const auto& [key, value] : b) {
    if (a.find(key) != a.end()) continue;
    const auto d = defaults.find(key);
    if (d == defaults.end() || d->second != value) add(key, "", value);
  }
  problem.insert(problem.end(), other.begin(), other.end());
  std::string out;
  for (std::size_t i = 0; i < problem.size() && i < 5; ++i) out += (i ? "; " : "") + problem[i];
  if (problem.size() > 5) out += "; and " + std::to_string(problem.size() - 5) + " more";
  return out;
}

template void write_checkpoint(const std::string&, const Checkpoint<float>&, bool);
template void write_checkpoint(const std::string&, const Checkpoint<double>&, bool);
template Checkpoint<float> read_checkpoint(const std::string&);
template Checkpoint<double> read_checkpoint(const std::string&);

}  // namespace bilevel
