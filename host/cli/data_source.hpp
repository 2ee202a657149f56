// Resolves `--data` of `bilevel hyperclean` for data read from files: fashion-mnist, a folder
// of IDX files under their MNIST names, or a LIBSVM file. (`synthetic` is generated on the
// executor by HypercleanProblem itself.)
#pragma once

#include <bilevel/data.hpp>

#include <optional>
#include <string>

namespace bilevel::cli {

struct LoadedData {
  Dataset pool;                  ///< train + validation (+ test when no separate test set)
  std::optional<Dataset> test;   ///< the separate test set of IDX sources
  std::string description;
};

/// Throws InvalidArgument naming the path or the missing file.
LoadedData load_data(const std::string& spec);

}  // namespace bilevel::cli
