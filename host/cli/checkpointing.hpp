// --checkpoint and --resume for the solving commands.
#pragma once

#include "commands.hpp"

#include <bilevel/checkpoint.hpp>
#include <bilevel/distributed.hpp>
#include <bilevel/error.hpp>
#include <bilevel/solvers/solver.hpp>

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <vector>

namespace bilevel::cli {

/// What a checkpoint of this run is tagged with: the command, the algorithm, the seed (it fixes
/// the data split and the minibatches a resumed run must continue) and `problem`, the command's
/// description of everything else that shapes the problem (data source, split sizes,
/// corruption, precisions); cut to the tag's 256 bytes.
inline std::string checkpoint_tag(const std::string& command, const RunOptions& run,
                                  const std::string& problem) {
  std::string tag = command + " " + run.algo + " seed " + std::to_string(run.seed) + " " +
                    run.precision + "; " + problem;
  if (tag.size() > kCheckpointTagBytes) tag.resize(kCheckpointTagBytes);
  return tag;
}

/// The checkpoint files of a run over several ranks: each rank writes and reads its own,
/// PATH.rank-R-of-P (x may be split over the ranks), so a checkpoint resumes on the same P.
inline RunOptions per_rank_checkpoints(RunOptions run, const Communicator& comm) {
  if (comm.size() == 1) return run;
  const std::string suffix =
      ".rank-" + std::to_string(comm.rank()) + "-of-" + std::to_string(comm.size());
  if (!run.checkpoint.empty()) run.checkpoint += suffix;
  if (!run.resume.empty()) run.resume += suffix;
  return run;
}

/// After resuming on several ranks: every rank's file must be at the same iteration (a run
/// stopped while the ranks were writing can leave files of different iterations).
inline void check_resumed_together(Communicator& comm, const RunOptions& run,
                                   const ScheduleOptions& loop) {
  if (comm.size() == 1 || run.resume.empty()) return;
  const double it = static_cast<double>(loop.start_iteration);
  double sums[2] = {it, it * it};
  comm.allreduce_sum_host(sums, 2);
  BILEVEL_EXPECTS(sums[1] * comm.size() == sums[0] * sums[0],
                  "--resume: the ranks' checkpoint files are at different iterations (this "
                  "rank's '"
                      << run.resume << "' is at " << loop.start_iteration
                      << "); resume from files written at the same checkpoint");
}

/// With --resume: x0, y0 and loop.start_iteration from the checkpoint file, checked against
/// this run's tag, dimensions and iteration count; returns its carried state, for the solver's
/// restore_state (empty without --resume). `say`: print where it resumes from.
template <typename T>
std::vector<std::vector<T>> resume_if_asked(const std::string& command, const RunOptions& run, const std::string& problem,
                     index_t dx, index_t dy, index_t instances, std::vector<T>& x0,
                     std::vector<T>& y0, ScheduleOptions& loop, bool say = true) {
  if (run.resume.empty()) return {};
  Checkpoint<T> c = read_checkpoint<T>(run.resume);
  const std::string tag = checkpoint_tag(command, run, problem);
  BILEVEL_EXPECTS(c.tag == tag, "checkpoint '" << run.resume << "' belongs to another run ('"
                                               << c.tag << "'); this run is '" << tag << "'");
  BILEVEL_EXPECTS(c.dx == dx && c.dy == dy && c.instances == instances,
                  "checkpoint '" << run.resume << "' is for dx = " << c.dx << ", dy = " << c.dy
                                 << ", " << c.instances << " instance(s); this run has dx = "
                                 << dx << ", dy = " << dy << ", " << instances);
  BILEVEL_EXPECTS(c.iteration <= loop.iterations,
                  "checkpoint '" << run.resume << "' is at iteration " << c.iteration
                                 << ", past --iters " << loop.iterations);
  x0 = c.x;
  y0 = c.y;
  loop.start_iteration = c.iteration;
  if (say)
    std::fprintf(stderr, "  resuming from '%s' at iteration %lld%s\n", run.resume.c_str(),
                 static_cast<long long>(c.iteration),
                 c.state.empty() ? "" : " (with the algorithm's carried state)");
  return std::move(c.state);
}

/// Fails early, before any work, when --checkpoint cannot be written or --resume not read:
/// the path (and its PATH.tmp) must be a regular file or absent - never a directory or a device,
/// which the rename would replace - in a writable directory. Nothing is created or removed.
/// Returns the iteration of the --resume checkpoint (-1 without one), for the metrics file.
template <typename T>
long check_checkpoint_paths(const RunOptions& run) {
  namespace fs = std::filesystem;
  if (!run.checkpoint.empty()) {
    for (const std::string& p : {run.checkpoint, run.checkpoint + ".tmp"}) {
      std::error_code ec;
      const fs::file_status st = fs::symlink_status(p, ec);
      BILEVEL_EXPECTS(!fs::exists(st) || fs::is_regular_file(st),
                      "--checkpoint '" << run.checkpoint << "': '" << p
                                       << "' exists and is not a regular file (a directory, "
                                          "device or link); give the path of a file");
    }
    const std::string dir = fs::path(run.checkpoint).parent_path().string();
    BILEVEL_EXPECTS(::access(dir.empty() ? "." : dir.c_str(), W_OK) == 0,
                    "cannot write checkpoint file '" << run.checkpoint << "': the directory '"
                                                     << (dir.empty() ? "." : dir)
                                                     << "' is missing or not writable");
  }
  if (run.resume.empty()) return -1;
  BILEVEL_EXPECTS(std::ifstream(run.resume, std::ios::binary).good(),
                  "cannot open checkpoint file '" << run.resume << "'");
  return static_cast<long>(read_checkpoint<T>(run.resume).iteration);
}

/// With --checkpoint: a checkpointer that writes the file, and loop.checkpoint_every set.
template <typename T>
typename Solver<T>::Checkpointer checkpoint_writer(const std::string& command,
                                                   const RunOptions& run,
                                                   const std::string& problem,
                                                   ScheduleOptions& loop) {
  if (run.checkpoint.empty()) return {};
  loop.checkpoint_every = run.checkpoint_every;
  const std::string path = run.checkpoint, tag = checkpoint_tag(command, run, problem);
  return [path, tag](const Checkpoint<T>& c) {
    Checkpoint<T> tagged = c;
    tagged.tag = tag;
    write_checkpoint(path, tagged);
  };
}

}  // namespace bilevel::cli
