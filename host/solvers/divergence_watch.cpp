#include "divergence_watch.hpp"

#include <cmath>
#include <sstream>

namespace bilevel::detail {

DivergenceWatch::DivergenceWatch(index_t instances, double limit)
    : limit_(limit),
      healthy_(instances),
      diverged_at_(static_cast<std::size_t>(instances), -1),
      messages_(static_cast<std::size_t>(instances)) {}

bool DivergenceWatch::divergent(double value) const {
  return !std::isfinite(value) || std::abs(value) > limit_;
}

template <typename T>
void DivergenceWatch::check(const char* when, index_t iteration, const char* const* names,
                            std::size_t count, const T* values) {
  const index_t nb = static_cast<index_t>(diverged_at_.size());
  for (index_t b = 0; b < nb; ++b) {
    if (diverged(b)) continue;
    // every divergent value of this check, in order (naming only the first blamed ||x|| when
    // y had blown up and taken x with it)
    std::ostringstream os;
    int found = 0;
    for (std::size_t r = 0; r < count; ++r) {
      const double value = static_cast<double>(values[static_cast<index_t>(r) * nb + b]);
      if (!divergent(value)) continue;
      if (found++ == 0)
        os << "diverged " << when << " iteration " << iteration << ", instance " << b << ": ";
      else
        os << " and ";
      os << names[r] << " is " << value;
      if (std::isfinite(value)) os << ", beyond the divergence limit " << limit_;
    }
    if (found == 0) continue;
    os << " (try smaller step sizes)";
    mark(b, iteration, os.str());
  }
}

void DivergenceWatch::mark(index_t b, index_t iteration, const std::string& message) {
  if (diverged(b)) return;
  diverged_at_[static_cast<std::size_t>(b)] = iteration;
  messages_[static_cast<std::size_t>(b)] = message;
  --healthy_;
}

void DivergenceWatch::throw_if_all_diverged() const {
  if (healthy_ > 0) return;
  std::size_t last = 0;
  for (std::size_t b = 0; b < diverged_at_.size(); ++b)
    if (diverged_at_[b] > diverged_at_[last]) last = b;
  throw DivergenceError(messages_[last], static_cast<long>(diverged_at_[last]),
                        static_cast<long>(last));
}

template void DivergenceWatch::check(const char*, index_t, const char* const*, std::size_t,
                                     const float*);
template void DivergenceWatch::check(const char*, index_t, const char* const*, std::size_t,
                                     const double*);

template <typename T>
NormChecks<T>::NormChecks(RunState<T>& state, DivergenceWatch& watch)
    : s_(state),
      watch_(watch),
      slots_{Array<T>(state.exec, state.nb, 2), Array<T>(state.exec, state.nb, 2)},
      host_{HostBuffer<T>(state.exec, 2 * state.nb), HostBuffer<T>(state.exec, 2 * state.nb)} {}

template <typename T>
void NormChecks<T>::enqueue(index_t iteration) {
  read();
  const int slot = next_slot_;
  next_slot_ = 1 - next_slot_;
  const index_t nb = s_.nb;
  T* m = slots_[slot].data();
  // ||x||, ||y|| per instance (x split over ranks: ||x||^2 summed, the root taken when read)
  if (s_.shards != nullptr) {
    s_.ops.batch_dot(s_.x.view(), s_.x.view(), m);
    s_.shards->allreduce_sum(*s_.exec, m, nb);
  } else {
    s_.ops.batch_nrm2(s_.x.view(), m);
  }
  s_.ops.batch_nrm2(s_.y.view(), m + nb);
  host_[slot].copy_async_from(m);
  pending_slot_ = slot;
  pending_iteration_ = iteration;
  done_ = s_.exec->mark();
}

template <typename T>
void NormChecks<T>::read() {
  if (pending_slot_ < 0) return;
  const int slot = pending_slot_;
  pending_slot_ = -1;
  done_->wait();
  T* host = host_[slot].data();
  if (s_.shards != nullptr)
    for (index_t b = 0; b < s_.nb; ++b) host[b] = std::sqrt(host[b]);
  static const char* const names[] = {"||x||", "||y||"};
  watch_.check("by", pending_iteration_, names, 2, host);
  watch_.throw_if_all_diverged();
}

template class NormChecks<float>;
template class NormChecks<double>;

}  // namespace bilevel::detail
