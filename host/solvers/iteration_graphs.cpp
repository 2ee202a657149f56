#include "iteration_graphs.hpp"

namespace bilevel::detail {

void IterationGraphs::run(const IterationShape& shape, bool direct,
                          const std::function<void()>& iteration) {
  if (!enabled_ || unsupported_ || direct) {
    iteration();
    return;
  }
  std::unique_ptr<CapturedWork>& graph = graphs_[shape];
  if (!graph) {
    graph = capture_(iteration);
    if (!graph) {  // the backend has nothing to capture: run directly from now on
      graphs_.erase(shape);
      unsupported_ = true;
      iteration();
      return;
    }
  }
  graph->replay();
}

index_t IterationGraphs::captured_shapes() const {
  return static_cast<index_t>(graphs_.size());
}

std::vector<long> IterationGraphs::graph_nodes() const {
  std::vector<long> nodes;
  for (const auto& [shape, graph] : graphs_) nodes.push_back(graph->nodes());
  return nodes;
}

}  // namespace bilevel::detail
