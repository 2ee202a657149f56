// Checkpoints: the state of a run at an iteration, written to and read from a file, so that a
// long run can be resumed (ScheduleOptions::start_iteration continues the iteration counter,
// hence the same minibatches and step schedules as an uninterrupted run). The state is x, y and
// what the solver and the estimator carry between iterations (the upper update's m, a
// warm-started v, F2SA's z, ...): with it, a resumed run continues the uninterrupted run bit for
// bit. The settings that shape the run travel with it, so that a resume under other settings is
// refused in words. Versions 2 and 3 are still read.
//
// File format (little-endian), version 4: 8 bytes "BLVLCKPT", uint32 version (4), uint32 bytes
// per value (4: float, 8: double), int64 iteration, dx, dy, instances, uint32 CRC-32 of the whole
// file (computed with this field 0), uint32 the number S of carried-state arrays (at most 64),
// uint32 the settings' bytes (at most 64 KiB), uint32 0, 256 bytes of tag (NUL-padded), then the
// settings ("key=value" lines), x (dx x B) and y (dy x B), column-major, then S int64 lengths
// and the S arrays' values. Version 3: the same without the settings and their two words, the
// CRC over the values only; version 2: also without S and the arrays.
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
  /// Every setting that shapes the iterates, as "key=value" lines (the CLI: the command's
  /// problem and data settings and describe_settings of the algorithm's options); empty in
  /// version 2 and 3 files. Compared with settings_difference on resume.
  std::string settings;
};

/// The most bytes of settings a checkpoint holds.
constexpr std::size_t kCheckpointMaxSettingsBytes = std::size_t{64} << 10;

/// The most carried-state arrays a checkpoint holds.
constexpr std::size_t kCheckpointMaxStateArrays = 64;

/// Writes `c` to `path` atomically (a temporary file of this call's own, synced, renamed over it,
/// the directory synced: a crash leaves the previous checkpoint, and two writers of one path
/// never share a temporary). With `keep_previous`, the checkpoint it replaces stays as
/// PATH.previous (runs over several ranks: a common iteration then always exists). A state
/// with a non-finite value is never written: DivergenceError names the iteration, the instance
/// and the value, and the previous file stays. Throws InvalidArgument naming the file when it
/// cannot be written (a full disk: the temporary is removed).
template <typename T>
void write_checkpoint(const std::string& path, const Checkpoint<T>& c, bool keep_previous = false);

/// Reads a checkpoint written with the same precision. Throws InvalidArgument naming the file
/// and what is wrong (missing, not a checkpoint, other version or precision, a header that
/// claims more than the file holds, truncated, a CRC mismatch, a non-finite value).
template <typename T>
Checkpoint<T> read_checkpoint(const std::string& path);

/// The settings that differ between a checkpoint's and this run's ("key=value" lines), as
/// "key: A in the checkpoint, B now; ..."; empty when they agree. A setting the checkpoint does
/// not name (added after the file was written) agrees when `defaults` ("key=value" lines: the
/// CLI passes describe_settings of a default AlgorithmOptions) holds its value now.
std::string settings_difference(const std::string& written, const std::string& now,
                                const std::string& defaults = "");

}  // namespace bilevel
