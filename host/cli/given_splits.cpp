#include "given_splits.hpp"

#include <bilevel/error.hpp>

#include <utility>
#include <vector>

namespace bilevel::cli {

void check_given_splits(const std::string& data, const std::string& validation_data,
                        const std::string& test_data, bool sizes_given, bool standardize) {
  if (validation_data.empty() && test_data.empty()) {
    BILEVEL_EXPECTS(standardize, "--no-standardize takes the splits as given (--validation-data "
                                 "and --test-data); a file split here is standardized on its "
                                 "training split");
    return;
  }
  BILEVEL_EXPECTS(!validation_data.empty() && !test_data.empty(),
                  "--validation-data and --test-data come together (the splits as given: --data "
                  "is the training split)");
  BILEVEL_EXPECTS(data != "synthetic" && data != "fashion-mnist",
                  "--validation-data and --test-data take LIBSVM files, and --data the training "
                  "split's LIBSVM file; '" << data << "' is split here");
  BILEVEL_EXPECTS(!sizes_given, "--train, --validation and --test size a split of one file; with "
                                "--validation-data and --test-data each split is its whole file");
}

HypercleanData read_given_splits(const std::string& data, const std::string& validation_data,
                                 const std::string& test_data, bool standardize) {
  std::vector<Dataset> splits = read_libsvm_splits({data, validation_data, test_data});
  return prepare_given_splits(std::move(splits[0]), std::move(splits[1]), std::move(splits[2]),
                              standardize);
}

}  // namespace bilevel::cli
