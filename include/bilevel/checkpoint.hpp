// Checkpoints: the state of a run at an iteration, written to and read from a file, so that a
// long run can be resumed (ScheduleOptions::start_iteration continues the iteration counter,
// hence the same minibatches and step schedules as an uninterrupted run). The state is x, y and
// what the solver and the estimator carry between iterations (the upper update's m, a
// warm-started v, F2SA's z, ...): with it, a resumed run continues the uninterrupted run bit for
// bit. Version 2 files (x and y only) are still read: their runs resume with that state afresh.
//
// File format (little-endian): 8 bytes "BLVLCKPT", uint32 version (3), uint32 bytes per value
// (4: float, 8: double), int64 iteration, dx, dy, instances, uint32 CRC-32 of what follows the
// header, uint32 the number S of carried-state arrays (at most 64; version 2: 0 and nothing
// after y), 256 bytes of tag (NUL-padded), then x (dx x B) and y (dy x B), column-major, then
// S int64 lengths and the S arrays' values.
#pragma once

#include <bilevel/types.hpp>

#include <cstddef>
#include <string>
#include <vector>

namespace bilevel {

/// The longest tag a checkpoint holds.
constexpr std::size_t kCheckpointTagBytes = 256;

template <typename T>
struct Checkpoint {
  index_t iteration = 0;  ///< iterations done: a resumed run starts at this k
  index_t dx = 0, dy = 0, instances = 0;
  /// What run this belongs to (the CLI writes the command, algorithm, seed and everything that
  /// shapes the problem: data source, split sizes, corruption, precisions), at most 256 bytes:
  /// resuming checks it, so that a checkpoint does not silently continue another run.
  std::string tag;
  std::vector<T> x;  ///< dx x B
  std::vector<T> y;  ///< dy x B
  /// The carried state, in the order the solver lists it (Solver::restore_state): each rows x
  /// B, column-major. Empty for presets that carry nothing and for version 2 files.
  std::vector<std::vector<T>> state;
};

/// The most carried-state arrays a checkpoint holds.
constexpr std::size_t kCheckpointMaxStateArrays = 64;

/// Writes `c` to `path` atomically (a temporary file, synced, renamed over it, the directory
/// synced: a crash leaves the previous checkpoint). A state with a non-finite value is never
/// written: DivergenceError names the iteration, the instance and the value, and the previous
/// file stays. Throws InvalidArgument naming the file when it cannot be written.
template <typename T>
void write_checkpoint(const std::string& path, const Checkpoint<T>& c);

/// Reads a checkpoint written with the same precision. Throws InvalidArgument naming the file
/// and what is wrong (missing, not a checkpoint, other version or precision, a header that
/// claims more than the file holds, truncated, a CRC mismatch, a non-finite value).
template <typename T>
Checkpoint<T> read_checkpoint(const std::string& path);

}  // namespace bilevel
