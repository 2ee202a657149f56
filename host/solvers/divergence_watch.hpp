// The divergence watch (internal to the scheduler). DivergenceWatch keeps, per instance, the
// iteration its divergence was seen at and a message that names the variable ("f is inf",
// "||y|| is 3e+21, beyond the divergence limit 1e+20"); a diverged instance stays diverged and
// the others go on, until none is left: then it throws DivergenceError for the instance that
// diverged last. NormChecks<T> is the cheap check between evaluations: ||x|| and ||y|| of
// every instance, copied back asynchronously into one of two slots and read at the next check
// (or the end), so that the device never waits for the host.
#pragma once

#include "run_state.hpp"

#include <memory>
#include <string>
#include <vector>

namespace bilevel::detail {

class DivergenceWatch {
 public:
  DivergenceWatch(index_t instances, double limit);

  /// Not finite, or beyond the divergence limit in magnitude.
  bool divergent(double value) const;
  /// Checks values[r * B + b] (r < count, named names[r]) of every healthy instance b and
  /// marks it when one is divergent, naming each divergent one: "diverged WHEN iteration I,
  /// instance b: NAME is V[, beyond the divergence limit L][ and NAME2 is V2...] (try smaller
  /// step sizes)"; WHEN is "at" for values computed at I, "by" for values seen by then.
  /// Allocates only for a message.
  template <typename T>
  void check(const char* when, index_t iteration, const char* const* names, std::size_t count,
             const T* values);
  /// Marks instance b diverged at `iteration` (the first mark stays).
  void mark(index_t b, index_t iteration, const std::string& message);
  bool diverged(index_t b) const { return diverged_at_[static_cast<std::size_t>(b)] >= 0; }
  /// DivergenceError (the last instance to diverge) when every instance has diverged.
  void throw_if_all_diverged() const;

  const std::vector<index_t>& diverged_at() const { return diverged_at_; }
  const std::vector<std::string>& messages() const { return messages_; }

 private:
  double limit_;
  index_t healthy_;
  std::vector<index_t> diverged_at_;
  std::vector<std::string> messages_;
};

template <typename T>
class NormChecks {
 public:
  NormChecks(RunState<T>& state, DivergenceWatch& watch);
  /// Reads the previous check, then enqueues ||x||, ||y|| of every instance and their copy.
  void enqueue(index_t iteration);
  /// Waits for the pending check (if any) and marks what diverged by its iteration.
  void read();

 private:
  RunState<T>& s_;
  DivergenceWatch& watch_;
  Array<T> slots_[2];
  HostBuffer<T> host_[2];
  int next_slot_ = 0;
  int pending_slot_ = -1;
  index_t pending_iteration_ = 0;
  std::unique_ptr<StreamMark> done_;
};

}  // namespace bilevel::detail
