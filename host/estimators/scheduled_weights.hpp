// Per-instance weights that follow a schedule of the iteration (sl-BAMM's mu_k, F2SA's
// lambda_k, LV-HBA's 1/c_k), computed on the executor from the solver's iteration counter so
// that a captured iteration replays with the weights of the iteration it replays.
#pragma once

#include <bilevel/estimators.hpp>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace bilevel::detail {

template <typename T>
class ScheduledWeights {
 public:
  /// w_j(k) = base_j (offset + slope k)^(-power); `base`: 1 value for all instances or B.
  void prepare(std::shared_ptr<Executor> exec, const std::vector<double>& base, index_t instances,
               Schedule schedule, const std::string& what) {
    base_ = per_instance_array<T>(exec, base, instances, what);
    weights_ = Array<T>(exec, instances, 1);
    own_counter_ = Array<std::uint32_t>(exec, 1, 1, std::vector<std::uint32_t>{0u});
    schedule_ = schedule;
  }

  /// The weights of ctx's iteration (B values on the executor). Outside a solver (no counter in
  /// ctx) the iteration is uploaded to a counter of this object's own first.
  const T* at(const EstimateContext<T>& ctx) {
    const std::uint32_t* counter = ctx.counter;
    if (counter == nullptr) {
      own_counter_.upload({static_cast<std::uint32_t>(ctx.iteration)});
      counter = own_counter_.data();
    }
    ctx.problem.executor()->template ops<T>().schedule(base_.data(), base_.rows(), schedule_,
                                                       counter, weights_.data());
    return weights_.data();
  }

 private:
  Array<T> base_, weights_;
  Array<std::uint32_t> own_counter_;
  Schedule schedule_;
};

}  // namespace bilevel::detail
