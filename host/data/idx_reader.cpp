// IDX files (MNIST, Fashion-MNIST), gzipped or not: zlib's gzread reads both.
#include <bilevel/data.hpp>
#include <bilevel/error.hpp>

#include "row_file.hpp"

#include <zlib.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <memory>
#include <vector>

namespace bilevel {
namespace {

struct GzCloser {
  void operator()(gzFile_s* f) const { gzclose(f); }
};
using GzFile = std::unique_ptr<gzFile_s, GzCloser>;

GzFile open_gz(const std::string& path) {
  GzFile f(gzopen(path.c_str(), "rb"));
  if (!f) throw InvalidArgument("cannot open '" + path + "': " + std::strerror(errno));
  return f;
}

void read_exact(gzFile_s* f, const std::string& path, void* dst, std::size_t bytes,
                const char* what) {
  std::size_t done = 0;
  auto* out = static_cast<unsigned char*>(dst);
  while (done < bytes) {
    const unsigned chunk = static_cast<unsigned>(std::min<std::size_t>(bytes - done, 1u << 30));
    const int got = gzread(f, out + done, chunk);
    if (got <= 0) {
      int code = 0;
      const char* msg = gzerror(f, &code);
      throw InvalidArgument("'" + path + "': truncated or corrupt while reading " + what + " (" +
                            std::to_string(done) + " of " + std::to_string(bytes) + " bytes" +
                            (code != Z_OK && msg ? std::string(", ") + msg : std::string()) + ")");
    }
    done += static_cast<std::size_t>(got);
  }
}

std::uint32_t big_endian(const unsigned char* b) {
  return (std::uint32_t(b[0]) << 24) | (std::uint32_t(b[1]) << 16) | (std::uint32_t(b[2]) << 8) |
         std::uint32_t(b[3]);
}

/// Reads the header; returns the dimensions after checking the magic number.
std::vector<std::uint32_t> read_header(gzFile_s* f, const std::string& path,
                                       std::uint32_t expected_magic) {
  unsigned char magic[4];
  read_exact(f, path, magic, 4, "the magic number");
  const std::uint32_t m = big_endian(magic);
  if (m != expected_magic) {
    char buf[160];
    std::snprintf(buf, sizeof buf, "'%s': wrong IDX magic number 0x%08x (expected 0x%08x: %s)",
                  path.c_str(), m, expected_magic,
                  expected_magic == 0x803 ? "unsigned byte images, 3 dimensions"
                                          : "unsigned byte labels, 1 dimension");
    throw InvalidArgument(buf);
  }
  const int dims = static_cast<int>(m & 0xff);
  std::vector<std::uint32_t> shape(dims);
  for (int d = 0; d < dims; ++d) {
    unsigned char b[4];
    read_exact(f, path, b, 4, "the dimensions");
    shape[d] = big_endian(b);
  }
  return shape;
}

/// After the announced data: the stream must end there, and end intact (zlib checks the CRC
/// and the length in the gzip trailer only when the end is read).
void expect_end(gzFile_s* f, const std::string& path) {
  unsigned char extra;
  const int got = gzread(f, &extra, 1);
  if (got > 0)
    throw InvalidArgument("'" + path + "': more data than the header's dimensions announce");
  int code = Z_OK;
  const char* msg = gzerror(f, &code);
  if (got < 0 || (code != Z_OK && code != Z_STREAM_END))
    throw InvalidArgument("'" + path + "': corrupt gzip stream at its end (" +
                          (msg ? std::string(msg) : std::string("zlib error")) + ")");
}

/// Plain files are checked against their size before a header's claim is believed.
void check_plain_size(gzFile_s* f, const std::string& path, index_t bytes, const char* what) {
  if (!gzdirect(f)) return;
  std::error_code ec;
  const auto size = std::filesystem::file_size(path, ec);
  if (!ec && static_cast<std::uintmax_t>(bytes) > size)
    throw InvalidArgument("'" + path + "': the header claims " + std::to_string(bytes) +
                          " bytes of " + what + " but the file holds " + std::to_string(size) +
                          " bytes in all");
}

/// `bytes` bytes announced by a header, read into a vector that grows with what arrives (a
/// header cannot make the reader allocate more than the file holds). Plain files are checked
/// against their size first.
std::vector<unsigned char> read_announced(gzFile_s* f, const std::string& path, index_t bytes,
                                          const char* what) {
  check_plain_size(f, path, bytes, what);
  std::vector<unsigned char> out;
  constexpr index_t kStep = index_t(1) << 24;
  for (index_t done = 0; done < bytes;) {
    const index_t n = std::min(kStep, bytes - done);
    out.resize(static_cast<std::size_t>(done + n));
    read_exact(f, path, out.data() + done, static_cast<std::size_t>(n), what);
    done += n;
  }
  return out;
}

/// An IDX pair opened: both headers read and checked against each other, the images' stream
/// positioned after its header (a plain file's size checked against its claim), the labels'
/// stream after its own.
struct IdxPair {
  GzFile images, labels;
  index_t samples = 0, features = 0;
};

IdxPair open_idx_pair(const std::string& images_path, const std::string& labels_path,
                      int classes) {
  BILEVEL_EXPECTS(classes >= 2 && classes <= 256,
                  "IDX labels: the declared classes must be in [2, 256], got " << classes);
  IdxPair p;
  p.images = open_gz(images_path);
  const std::vector<std::uint32_t> ishape = read_header(p.images.get(), images_path, 0x00000803);
  p.labels = open_gz(labels_path);
  const std::vector<std::uint32_t> lshape = read_header(p.labels.get(), labels_path, 0x00000801);
  BILEVEL_EXPECTS(ishape[0] == lshape[0], "'" << images_path << "' holds " << ishape[0]
                                              << " images but '" << labels_path << "' holds "
                                              << lshape[0] << " labels");
  p.samples = ishape[0];
  p.features = checked_mul(ishape[1], ishape[2], "'" + images_path + "': image rows x columns");
  BILEVEL_EXPECTS(p.features > 0 && p.features < (1 << 24),
                  "'" << images_path << "': implausible image size " << ishape[1] << " x " << ishape[2]);
  check_plain_size(p.images.get(), images_path,
                   checked_mul(p.samples, p.features, "'" + images_path + "': images x pixels"),
                   "pixels");
  return p;
}

/// The labels of an opened pair, to the end of their stream, checked: the declared range (0..9
/// for (Fashion-)MNIST) and at least two distinct values.
std::vector<unsigned char> read_idx_labels(IdxPair& p, const std::string& labels_path,
                                           int classes) {
  std::vector<unsigned char> labels = read_announced(p.labels.get(), labels_path, p.samples, "labels");
  expect_end(p.labels.get(), labels_path);
  bool two = false;
  for (std::size_t i = 0; i < labels.size(); ++i) {
    BILEVEL_EXPECTS(labels[i] < classes, "'" << labels_path << "': label " << int(labels[i])
                                             << " of sample " << i << " is outside 0.."
                                             << classes - 1 << " (the declared classes)");
    two = two || labels[i] != labels[0];
  }
  BILEVEL_EXPECTS(two || p.samples < 2, "'" << labels_path << "': all samples have the same label");
  return labels;
}

/// IDX files row by row: only the labels stay in memory; each pass decompresses the images again.
class IdxRows final : public detail::RowFile {
 public:
  IdxRows(const std::string& images_path, const std::string& labels_path, int classes)
      : images_path_(images_path) {
    IdxPair p = open_idx_pair(images_path, labels_path, classes);
    const std::vector<unsigned char> labels = read_idx_labels(p, labels_path, classes);
    source_ = images_path;
    samples_ = p.samples;
    features_ = p.features;
    classes_ = classes;
    labels_.assign(labels.begin(), labels.end());
  }

  void for_each_row(const std::vector<std::uint8_t>* wanted,
                    const std::function<void(index_t, const float*)>& visit) const override {
    GzFile f = open_gz(images_path_);
    const std::vector<std::uint32_t> shape = read_header(f.get(), images_path_, 0x00000803);
    BILEVEL_EXPECTS(shape[0] == samples_, "'" << images_path_ << "' changed while it was read");
    std::vector<unsigned char> bytes(static_cast<std::size_t>(features_));
    std::vector<float> row(static_cast<std::size_t>(features_));
    for (index_t i = 0; i < samples_; ++i) {
      read_exact(f.get(), images_path_, bytes.data(), bytes.size(), "pixels");
      if (wanted && !(*wanted)[static_cast<std::size_t>(i)]) continue;
      std::copy(bytes.begin(), bytes.end(), row.begin());
      visit(i, row.data());
    }
    expect_end(f.get(), images_path_);
  }

 private:
  std::string images_path_;
};

}  // namespace

namespace detail {
std::unique_ptr<RowFile> open_idx_rows(const std::string& images_path,
                                       const std::string& labels_path, int classes) {
  return std::make_unique<IdxRows>(images_path, labels_path, classes);
}
}  // namespace detail

Dataset read_idx(const std::string& images_path, const std::string& labels_path, int classes) {
  IdxPair p = open_idx_pair(images_path, labels_path, classes);
  Dataset d;
  d.source = images_path;
  d.samples = p.samples;
  d.features = p.features;
  const index_t pixel_bytes =
      checked_mul(d.samples, d.features, "'" + images_path + "': images x pixels");
  const std::vector<unsigned char> pixels =
      read_announced(p.images.get(), images_path, pixel_bytes, "pixels");
  expect_end(p.images.get(), images_path);
  const std::vector<unsigned char> labels = read_idx_labels(p, labels_path, classes);
  d.x.assign(pixels.begin(), pixels.end());
  d.labels.assign(labels.begin(), labels.end());
  d.classes = classes;
  d.validate();
  return d;
}

}  // namespace bilevel
