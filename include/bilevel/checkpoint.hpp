// Checkpoints: the state (x, y) of a run at an iteration, written to and read from a file, so
// that a long run can be resumed (ScheduleOptions::start_iteration continues the iteration
// counter, hence the same minibatches and step schedules as an uninterrupted run). What is
// resumed is x and y; estimators' auxiliary state (warm-started v, momentum) starts afresh.
//
// File format (little-endian): 8 bytes "BLVLCKPT", uint32 version (1), uint32 bytes per value
// (4: float, 8: double), int64 iteration, dx, dy, instances, 64 bytes of tag (NUL-padded), then
// x (dx x B) and y (dy x B), column-major.
#pragma once

#include <bilevel/types.hpp>

#include <string>
#include <vector>

namespace bilevel {

template <typename T>
struct Checkpoint {
  index_t iteration = 0;  ///< iterations done: a resumed run starts at this k
  index_t dx = 0, dy = 0, instances = 0;
  /// What run this belongs to (the CLI writes command, algorithm and seed), at most 64 bytes:
  /// resuming checks it, so that a checkpoint does not silently continue another run.
  std::string tag;
  std::vector<T> x;  ///< dx x B
  std::vector<T> y;  ///< dy x B
};

/// Writes `c` to `path` atomically (a temporary file renamed over it: a crash leaves the
/// previous checkpoint). Throws InvalidArgument naming the file when it cannot be written.
template <typename T>
void write_checkpoint(const std::string& path, const Checkpoint<T>& c);

/// Reads a checkpoint written with the same precision. Throws InvalidArgument naming the file
/// and what is wrong (missing, not a checkpoint, other version or precision, truncated).
template <typename T>
Checkpoint<T> read_checkpoint(const std::string& path);

}  // namespace bilevel
