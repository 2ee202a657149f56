// Data files read as a stream of rows, for loaders that keep only some of them (a rank's shard
// of a data-parallel run): the sizes and the labels are known once the file is opened, and each
// pass over the file hands the chosen rows' dense features to a visitor, in file order. Also
// where a data set named on the command line ("fashion-mnist", an IDX folder, a LIBSVM file)
// resolves to files, for load_data_source and load_hyperclean_shard alike.
#pragma once

#include <bilevel/types.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace bilevel::detail {

class RowFile {
 public:
  virtual ~RowFile() = default;
  const std::string& source() const { return source_; }
  index_t samples() const { return samples_; }
  index_t features() const { return features_; }
  int classes() const { return classes_; }
  /// Every row's class, 0..classes()-1.
  const std::vector<std::int32_t>& labels() const { return labels_; }
  /// visit(i, row) for each row i with wanted[i] != 0 (all rows for a null `wanted`), in file
  /// order; `row` holds features() floats until visit returns. The whole file is read each
  /// time, so a damaged one fails the same way on every pass.
  virtual void for_each_row(const std::vector<std::uint8_t>* wanted,
                            const std::function<void(index_t, const float*)>& visit) const = 0;

 protected:
  std::string source_;
  index_t samples_ = 0, features_ = 0;
  int classes_ = 0;
  std::vector<std::int32_t> labels_;
};

/// IDX images and labels (gzipped or not), checked as read_idx checks them.
std::unique_ptr<RowFile> open_idx_rows(const std::string& images_path,
                                       const std::string& labels_path, int classes = 10);
/// A LIBSVM file, checked as read_libsvm checks it (one parsing pass when opened).
std::unique_ptr<RowFile> open_libsvm_rows(const std::string& path);

/// The files a data set name stands for: an IDX training pool and test set, or one LIBSVM file.
struct DataFiles {
  bool idx = false;
  std::string train_images, train_labels, test_images, test_labels;  // idx
  std::string libsvm;                                                // !idx
  std::string description;
};
/// Throws InvalidArgument naming `what` and the path or the missing file.
DataFiles resolve_data_files(const std::string& spec, const std::string& what);

}  // namespace bilevel::detail
