// Data sets by name (data.hpp, load_data_source): Fashion-MNIST from Debian's package, a folder
// of MNIST-named IDX files, or a LIBSVM file.
#include <bilevel/data.hpp>
#include <bilevel/error.hpp>

#include "row_file.hpp"

#include <sys/stat.h>

namespace bilevel {
namespace {

constexpr const char* kFashionMnist = "/usr/share/datasets/fashion-mnist";

bool is_directory(const std::string& path) {
  struct stat st {};
  return stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

bool exists(const std::string& path) {
  struct stat st {};
  return stat(path.c_str(), &st) == 0;
}

/// `folder/name` or `folder/name.gz`, whichever exists.
std::string idx_file(const std::string& what, const std::string& folder, const std::string& name) {
  for (const std::string& candidate : {folder + "/" + name, folder + "/" + name + ".gz"})
    if (exists(candidate)) return candidate;
  throw InvalidArgument(what + " " + folder + ": missing " + name + " (or " + name +
                        ".gz); an IDX folder needs train-images-idx3-ubyte, "
                        "train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte");
}

}  // namespace

namespace detail {

DataFiles resolve_data_files(const std::string& spec, const std::string& what) {
  DataFiles out;
  std::string folder = spec;
  if (spec == "fashion-mnist") {
    folder = kFashionMnist;
    if (!is_directory(folder))
      throw InvalidArgument(what + " fashion-mnist: " + kFashionMnist +
                            " not found; install Debian's dataset-fashion-mnist package "
                            "(scripts/setup.sh does)");
  }
  if (is_directory(folder)) {
    out.idx = true;
    out.train_images = idx_file(what, folder, "train-images-idx3-ubyte");
    out.train_labels = idx_file(what, folder, "train-labels-idx1-ubyte");
    out.test_images = idx_file(what, folder, "t10k-images-idx3-ubyte");
    out.test_labels = idx_file(what, folder, "t10k-labels-idx1-ubyte");
    out.description = spec == "fashion-mnist" ? "Fashion-MNIST (" + folder + ")" : folder;
    return out;
  }
  if (!exists(spec))
    throw InvalidArgument(what + " '" + spec + "': no such file or folder (expected fashion-mnist, "
                          "synthetic, an IDX folder or a LIBSVM file)");
  out.libsvm = spec;
  out.description = spec + " (LIBSVM)";
  return out;
}

}  // namespace detail

DataSource load_data_source(const std::string& spec, const std::string& what) {
  const detail::DataFiles files = detail::resolve_data_files(spec, what);
  DataSource out;
  if (files.idx) {
    out.pool = read_idx(files.train_images, files.train_labels);
    out.test = read_idx(files.test_images, files.test_labels);
  } else {
    out.pool = read_libsvm(files.libsvm);
  }
  out.description = files.description;
  return out;
}

std::string describe_data_source(const std::string& spec, const std::string& what) {
  return detail::resolve_data_files(spec, what).description;
}

}  // namespace bilevel
