// Where a `bilevel hyperclean` run's data comes from (internal to the CLI): generated on the
// executor (synthetic), a file split here (whole, or this rank's shard of it), or splits given
// as three files; and the HypercleanProblem built on it after the memory plan.
#pragma once

#include "hyperclean_args.hpp"

#include <bilevel/bilevel.hpp>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace bilevel::cli {

/// Given splits (--validation-data, --test-data; nullopt without them): the three LIBSVM files
/// with one class map and dimension, standardized on the training split unless
/// --no-standardize. Their sample counts become a's split sizes (and corruption 0: the labels
/// are used as given). Refused in a data-parallel run (`ranks` > 1).
std::optional<HypercleanData> read_given_splits(HypercleanArgs& a, int ranks);

template <typename T>
struct HypercleanSetup {
  std::unique_ptr<HypercleanProblem<T>> problem;
  /// Per training sample of the run: 1 where the label was corrupted here (all 0 with given
  /// splits, where which labels are wrong is unknown).
  std::vector<std::uint8_t> corrupted;
  std::string description;  ///< the data in words, for the header and the summary
  MemoryDecision memory;
};

/// The problem on this rank's data: generated (synthetic), `given` splits, this rank's shard
/// of the file, or the whole file split here; the features placed as the memory plan says.
template <typename T>
HypercleanSetup<T> make_hyperclean_problem(const std::shared_ptr<Executor>& exec,
                                           const std::shared_ptr<Communicator>& comm,
                                           const HypercleanArgs& a,
                                           std::optional<HypercleanData> given);

}  // namespace bilevel::cli
