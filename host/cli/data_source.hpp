// Resolves `--data` of `bilevel hyperclean`: fashion-mnist, a folder of IDX files under their
// MNIST names, a LIBSVM file, or synthetic.
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

struct SyntheticSpec {
  index_t samples = 0, features = 0;
  int classes = 0;
  std::uint64_t seed = 0;
};

/// Throws InvalidArgument naming the path or the missing file.
LoadedData load_data(const std::string& spec, const SyntheticSpec& synthetic);

}  // namespace bilevel::cli
