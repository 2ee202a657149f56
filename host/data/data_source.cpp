// Data sets by name (data.hpp, load_data_source): Fashion-MNIST from Debian's package, a folder
// of MNIST-named IDX files, or a LIBSVM file.
#include <bilevel/data.hpp>
#include <bilevel/error.hpp>

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

DataSource load_data_source(const std::string& spec, const std::string& what) {
  DataSource out;
  std::string folder = spec;
  if (spec == "fashion-mnist") {
    folder = kFashionMnist;
    if (!is_directory(folder))
      throw InvalidArgument(what + " fashion-mnist: " + kFashionMnist +
                            " not found; install Debian's dataset-fashion-mnist package "
                            "(scripts/setup.sh does)");
  }
  if (is_directory(folder)) {
    const std::string train_images = idx_file(what, folder, "train-images-idx3-ubyte");
    const std::string train_labels = idx_file(what, folder, "train-labels-idx1-ubyte");
    const std::string test_images = idx_file(what, folder, "t10k-images-idx3-ubyte");
    const std::string test_labels = idx_file(what, folder, "t10k-labels-idx1-ubyte");
    out.pool = read_idx(train_images, train_labels);
    out.test = read_idx(test_images, test_labels);
    out.description = spec == "fashion-mnist" ? "Fashion-MNIST (" + folder + ")" : folder;
    return out;
  }
  if (!exists(spec))
    throw InvalidArgument(what + " '" + spec + "': no such file or folder (expected fashion-mnist, "
                          "synthetic, an IDX folder or a LIBSVM file)");
  out.pool = read_libsvm(spec);
  out.description = spec + " (LIBSVM)";
  return out;
}

}  // namespace bilevel
