// IDX files (MNIST, Fashion-MNIST), gzipped or not: zlib's gzread reads both.
#include <bilevel/data.hpp>
#include <bilevel/error.hpp>

#include <zlib.h>

#include <cstring>
#include <memory>

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

void expect_end(gzFile_s* f, const std::string& path) {
  unsigned char extra;
  if (gzread(f, &extra, 1) > 0)
    throw InvalidArgument("'" + path + "': more data than the header's dimensions announce");
}

}  // namespace

Dataset read_idx(const std::string& images_path, const std::string& labels_path) {
  GzFile fi = open_gz(images_path);
  const std::vector<std::uint32_t> ishape = read_header(fi.get(), images_path, 0x00000803);
  GzFile fl = open_gz(labels_path);
  const std::vector<std::uint32_t> lshape = read_header(fl.get(), labels_path, 0x00000801);
  BILEVEL_EXPECTS(ishape[0] == lshape[0], "'" << images_path << "' holds " << ishape[0]
                                              << " images but '" << labels_path << "' holds "
                                              << lshape[0] << " labels");
  Dataset d;
  d.source = images_path;
  d.samples = ishape[0];
  d.features = static_cast<index_t>(ishape[1]) * ishape[2];
  BILEVEL_EXPECTS(d.features > 0 && d.features < (1 << 24),
                  "'" << images_path << "': implausible image size " << ishape[1] << " x " << ishape[2]);
  std::vector<unsigned char> pixels(static_cast<std::size_t>(d.samples * d.features));
  read_exact(fi.get(), images_path, pixels.data(), pixels.size(), "the pixels");
  expect_end(fi.get(), images_path);
  std::vector<unsigned char> labels(static_cast<std::size_t>(d.samples));
  read_exact(fl.get(), labels_path, labels.data(), labels.size(), "the labels");
  expect_end(fl.get(), labels_path);
  d.x.assign(pixels.begin(), pixels.end());
  d.labels.assign(labels.begin(), labels.end());
  int max_label = 0;
  for (auto l : labels) max_label = std::max<int>(max_label, l);
  d.classes = max_label + 1;
  d.source = images_path;
  d.validate();
  return d;
}

}  // namespace bilevel
