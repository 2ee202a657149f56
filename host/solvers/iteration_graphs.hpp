// The iteration graphs (internal to the scheduler). An iteration's launches depend on k only
// through the counter on the executor, so each distinct shape of iteration (with or without a
// lower-level round, times the estimator's own shapes, e.g. UFOM's triggered correction) is
// captured once as a graph and replayed from then on. The first iteration of a run always runs
// directly (estimators set up their state on their first call); where the backend has nothing
// to capture (the CPU) or capture is off, every iteration runs directly.
#pragma once

#include <bilevel/executor.hpp>
#include <bilevel/types.hpp>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <utility>
#include <vector>

namespace bilevel::detail {

/// What decides an iteration's launches besides k: a lower-level round or not, and the
/// estimator's iteration_shape(k).
using IterationShape = std::pair<bool, std::uint64_t>;

class IterationGraphs {
 public:
  /// Records `work` into a graph without running it, or returns null (nothing to capture).
  using Capture = std::function<std::unique_ptr<CapturedWork>(const std::function<void()>& work)>;

  IterationGraphs(bool enabled, Capture capture)
      : enabled_(enabled), capture_(std::move(capture)) {}

  /// Runs one iteration: `iteration` itself when `direct` (the run's first), when capture is
  /// off or unsupported; otherwise the replay of the graph of `shape`, captured on first sight.
  void run(const IterationShape& shape, bool direct, const std::function<void()>& iteration);

  /// Shapes captured so far, and the nodes of each graph (by shape).
  index_t captured_shapes() const;
  std::vector<long> graph_nodes() const;

 private:
  bool enabled_;
  Capture capture_;
  bool unsupported_ = false;
  std::map<IterationShape, std::unique_ptr<CapturedWork>> graphs_;
};

}  // namespace bilevel::detail
