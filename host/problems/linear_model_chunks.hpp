// LinearModelProblem::for_each_chunk, the walk over a batch's samples that the oracles
// (linear_model.cpp) and the evaluation (linear_model_metrics.cpp) share: private to host/problems.
#pragma once

#include <bilevel/problems/linear_model.hpp>
#include <bilevel/sampling.hpp>

#include <algorithm>

namespace bilevel {

template <typename T>
template <typename F>
void LinearModelProblem<T>::for_each_chunk(const Part& p, const Batch& batch, index_t instances,
                                          F&& f) {
  // the composed path reads the indices from memory: a deferred batch's are drawn now
  draw_batch_indices(*exec_, batch);
  if (batch.independent()) {
    BILEVEL_EXPECTS(batch.population <= p.samples,
                    name() << ": a batch drawn from " << batch.population
                                                      << " samples used on a split of "
                                                      << p.samples);
    BILEVEL_EXPECTS(batch.stride == batch.size, name() << ": independent index sets must be "
                                                "contiguous (stride = size)");
    BILEVEL_EXPECTS(batch.size > 0 && batch.size * instances <= reserved_batch_,
                    name() << ": independent batches of " << batch.size << " samples for "
                                                          << instances
                                                          << " instances but workspace for "
                                                          << reserved_batch_
                                                          << " (call reserve first)");
    // every instance's samples, instance after instance: one gather (the index sets are
    // contiguous)
    MatrixView<T> g(gathered_.data(), rows_, batch.size * instances);
    columns_as_t(p, batch.indices, 0, batch.size * instances, g.data);
    f(Chunk{ConstMatrixView<T>(g.data, rows_, batch.size), batch.indices, 0, batch.size, true});
    return;
  }
  if (!batch.full() && batch.size < p.samples) {
    BILEVEL_EXPECTS(batch.population <= p.samples,
                    name() << ": a batch drawn from " << batch.population
                                                      << " samples used on a split of "
                                                      << p.samples);
    BILEVEL_EXPECTS(batch.size > 0 && batch.size <= reserved_batch_,
                    name() << ": batch of " << batch.size << " samples but workspace for "
                                            << reserved_batch_ << " (call reserve first)");
    MatrixView<T> g(gathered_.data(), rows_, batch.size);
    // A_b = columns of the batch's samples
    columns_as_t(p, batch.indices, 0, batch.size, g.data);
    f(Chunk{g, batch.indices, 0, batch.size});
    return;
  }
  for (index_t off = 0; off < p.samples; off += chunk_) {
    const index_t m = std::min(chunk_, p.samples - off);
    if (bf16_) {
      // A_c = the chunk's columns widened to T
      columns_as_t(p, nullptr, off, m, expanded_.data());
      f(Chunk{ConstMatrixView<T>(expanded_.data(), rows_, m), nullptr, off, m});
    } else {
      f(Chunk{ConstMatrixView<T>(p.x.data() + off * rows_, rows_, m), nullptr, off, m});
    }
  }
}

}  // namespace bilevel
