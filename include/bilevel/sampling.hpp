// Minibatch indices from a counter-based RNG (Philox4x32-10), keyed by the run's seed and
// countered by (purpose, sub-step, iteration, instance): any batch of any iteration can be
// drawn again, in any order, on any backend, with the same result. Batches are shared by all
// instances of a run (instance 0), which lets B instances on shared data run as one GEMM.
#pragma once

#include <bilevel/array.hpp>
#include <bilevel/problem.hpp>

#include <cstdint>
#include <memory>

namespace bilevel {

/// What a batch is drawn for. Part of the Philox counter, so that streams never overlap.
enum class SampleStream : std::uint32_t {
  lower_step = 1,  ///< lower-level SGD steps on y
  upper = 2,       ///< grad f for the hypergradient
  second_order = 3,///< HVP batches of the linear-system solvers (Neumann terms, CG)
  cross = 4,       ///< the batch of the final J v
  evaluation = 5,  ///< metrics
  initialization = 6, ///< init refinement of y before the loop
};

template <typename T>
class MinibatchSampler {
 public:
  /// `size` = 0 or >= `population` gives full batches (the deterministic case). `sets` > 1
  /// draws one independent index set per instance (Philox instance word b for instance b).
  /// `epochs`: each stream (purpose, substep) walks the data in epochs, a new random order
  /// each, batch `iteration` taking the next `size` samples of the walk (random reshuffling:
  /// every sample once per epoch, as a shuffled DataLoader or benchopt's samplers); else every
  /// index is drawn uniformly with replacement.
  MinibatchSampler(std::shared_ptr<Executor> exec, std::uint64_t seed, index_t population,
                   index_t size, index_t sets = 1, bool epochs = false);

  /// Draws the batch for (purpose, substep, iteration) into this sampler's buffer and returns
  /// it. The batch stays valid until the next draw from this sampler. With a counter attached
  /// the kernel reads the iteration from it instead, and `iteration` (which the caller keeps
  /// equal to it) is not used: that is what lets a captured iteration be replayed.
  Batch draw(SampleStream purpose, std::uint32_t substep, index_t iteration);

  /// Reads the iteration of every later draw from `iteration_on_device` (a counter on the
  /// executor's memory, advanced there by the solver); nullptr detaches it.
  void attach_counter(const std::uint32_t* iteration_on_device) { counter_ = iteration_on_device; }

  /// Deferred draws: draw() launches nothing and returns the batch with its Batch::draw set,
  /// for a problem that draws the indices inside its own kernels (Problem::draws_minibatches);
  /// draw_batch_indices writes them into this sampler's buffer when they are needed.
  void set_deferred(bool deferred) { deferred_ = deferred; }

  index_t batch_size() const { return full_ ? population_ : size_; }
  bool full() const { return full_; }

 private:
  std::shared_ptr<Executor> exec_;
  std::uint64_t seed_;
  index_t population_;
  index_t size_;
  index_t sets_;
  bool full_;
  bool epochs_;
  Array<sample_index_t> indices_;
  const std::uint32_t* counter_ = nullptr;
  bool deferred_ = false;
};

/// Writes a deferred batch's indices (Batch::draw) into its buffer, on the executor's stream
/// (capturable: the draw reads the iteration counter there); nothing for an eager batch.
void draw_batch_indices(Executor& exec, const Batch& batch);

}  // namespace bilevel
