#include <bilevel/sampling.hpp>

namespace bilevel {

template <typename T>
MinibatchSampler<T>::MinibatchSampler(std::shared_ptr<Executor> exec, std::uint64_t seed,
                                      index_t population, index_t size, index_t sets,
                                      bool epochs)
    : exec_(std::move(exec)),
      seed_(seed),
      population_(population),
      size_(size),
      sets_(sets),
      full_(population == 0 || size <= 0 || size >= population),
      epochs_(epochs) {
  BILEVEL_EXPECTS(population >= 0, "sampler: population must be >= 0, got " << population);
  BILEVEL_EXPECTS(sets >= 1, "sampler: sets must be >= 1, got " << sets);
  if (!full_) indices_ = Array<sample_index_t>(exec_, size_, sets_);
}

template <typename T>
Batch MinibatchSampler<T>::draw(SampleStream purpose, std::uint32_t substep, index_t iteration) {
  if (full_) return Batch{nullptr, population_, population_};
  // The Philox counter word: purpose in the top byte, sub-step (0 .. 2^24) below it.
  const std::uint32_t stream = (static_cast<std::uint32_t>(purpose) << 24) | (substep & 0xFFFFFFu);
  // indices = Philox(seed; i / 4, instance 0, stream, iteration) mapped to [0, population)
  const std::uint32_t step = counter_ != nullptr ? 0u : static_cast<std::uint32_t>(iteration);
  Batch batch{indices_.data(), size_, population_, sets_ > 1 ? size_ : 0};
  batch.draw = BatchDraw{deferred_, seed_, stream, step, counter_, sets_, epochs_};
  if (!deferred_)
    exec_->ops<T>().sample_indices(seed_, stream, step, 0u, population_, size_, indices_.data(),
                                   counter_, sets_, epochs_);
  return batch;
}

void draw_batch_indices(Executor& exec, const Batch& batch) {
  if (!batch.draw.deferred || batch.full()) return;
  // (the buffer is the sampler's, lent to the batch to be written here)
  exec.ops<float>().sample_indices(batch.draw.seed, batch.draw.stream, batch.draw.step, 0u,
                                   batch.population, batch.size,
                                   const_cast<sample_index_t*>(batch.indices),
                                   batch.draw.step_on_device, batch.draw.sets, batch.draw.epochs);
}

template class MinibatchSampler<float>;
template class MinibatchSampler<double>;

}  // namespace bilevel
