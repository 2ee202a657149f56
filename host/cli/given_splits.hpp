// Splits given as three LIBSVM files (another program's draws, e.g. benchopt's), shared by
// `bilevel hyperclean` and `bilevel hpo`: --data is the training split, --validation-data and
// --test-data the other two (internal to the CLI).
#pragma once

#include <bilevel/data.hpp>

#include <string>

namespace bilevel::cli {

/// The options of given splits, checked before any work: both files or neither; --data a
/// LIBSVM file (not 'synthetic' or 'fashion-mnist', which are split here); no split sizes
/// (`sizes_given`); --no-standardize (`!standardize`) only with given splits. Errors name the
/// options.
void check_given_splits(const std::string& data, const std::string& validation_data,
                        const std::string& test_data, bool sizes_given, bool standardize);

/// The three files with one class map and dimension (read_libsvm_splits), standardized on the
/// training split unless `standardize` is false (prepare_given_splits): labels as given.
HypercleanData read_given_splits(const std::string& data, const std::string& validation_data,
                                 const std::string& test_data, bool standardize);

}  // namespace bilevel::cli
