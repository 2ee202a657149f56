// --checkpoint and --resume for the solving commands.
#pragma once

#include "commands.hpp"

#include <bilevel/checkpoint.hpp>
#include <bilevel/distributed.hpp>
#include <bilevel/error.hpp>
#include <bilevel/solvers/solver.hpp>

#include <unistd.h>

#include <cstdio>
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

namespace bilevel::cli {

/// What shapes a problem beyond the algorithm's options: (key, value) pairs, values exact
/// (the command's data source, split sizes, corruption, regularisation, precisions, ranks...).
using ProblemSettings = std::vector<std::pair<std::string, std::string>>;

/// A number as a setting: exact (17 significant digits: mu 1e-7 and 2e-7 differ).
inline std::string exact_setting(double v) {
  char text[32];
  std::snprintf(text, sizeof text, "%.17g", v);
  return text;
}

/// What a checkpoint of this run is tagged with (a line for people; read from version 2 and 3
/// files, which have no settings): the command, algorithm, seed, precision and the problem's
/// settings, cut to the tag's 256 bytes.
inline std::string checkpoint_tag(const std::string& command, const RunOptions& run,
                                  const ProblemSettings& problem) {
  std::string tag = command + " " + run.algo + " seed " + std::to_string(run.seed) + " " +
                    run.precision + ";";
  for (const auto& [key, value] : problem) tag += " " + key + " " + value;
  if (tag.size() > kCheckpointTagBytes) tag.resize(kCheckpointTagBytes);
  return tag;
}

/// Every setting that shapes this run's iterates, as "key=value" lines: the command, the
/// precision and instances, the problem's settings, the algorithm's options (describe_settings,
/// which holds the seed, the batches and every step). A checkpoint records them; resuming
/// compares them.
inline std::string run_settings(const std::string& command, const RunOptions& run,
                                const ProblemSettings& problem, const AlgorithmOptions& options) {
  std::string s = "command=" + command + "\nprecision=" + run.precision +
                  "\ninstances=" + std::to_string(run.instances) + "\n";
  for (const auto& [key, value] : problem) s += "problem." + key + "=" + value + "\n";
  return s + describe_settings(options);
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

/// Every rank's value of `mine`, in rank order (an all-reduce of one slot per rank).
inline std::vector<double> values_of_all_ranks(Communicator& comm, double mine) {
  std::vector<double> all(static_cast<std::size_t>(comm.size()), 0.0);
  all[static_cast<std::size_t>(comm.rank())] = mine;
  comm.allreduce_sum_host(all.data(), comm.size());
  return all;
}

/// With --resume: x0, y0 and loop.start_iteration from the checkpoint file, checked against
/// this run's settings (version 4: every one that differs is named; versions 2 and 3: the tag
/// they were written with, `legacy_problem` being the problem's part of it),
/// dimensions and iteration count; returns its carried state, for the solver's restore_state
/// (empty without --resume). Over several ranks, the files of the latest iteration every rank
/// has: a rank whose file is one checkpoint ahead (a run stopped while the ranks were writing)
/// takes its PATH.previous. `say`: print where it resumes from.
template <typename T>
std::vector<std::vector<T>> resume_if_asked(const std::string& command, const RunOptions& run,
                                            const ProblemSettings& problem,
                                            const std::string& legacy_problem,
                                            const AlgorithmOptions& options, index_t dx,
                                            index_t dy, index_t instances, std::vector<T>& x0,
                                            std::vector<T>& y0, ScheduleOptions& loop,
                                            Communicator& comm, bool say = true) {
  if (run.resume.empty()) return {};
  Checkpoint<T> c = read_checkpoint<T>(run.resume);
  std::string file = run.resume;
  if (comm.size() > 1) {
    const std::vector<double> at = values_of_all_ranks(comm, static_cast<double>(c.iteration));
    const double common = *std::min_element(at.begin(), at.end());
    if (static_cast<double>(c.iteration) != common) {
      file = run.resume + ".previous";
      BILEVEL_EXPECTS(std::ifstream(file, std::ios::binary).good(),
                      "--resume: this rank's '" << run.resume << "' is at iteration "
                                                << c.iteration << ", another rank's at " << common
                                                << ", and there is no '" << file
                                                << "' to go back to");
      c = read_checkpoint<T>(file);
      BILEVEL_EXPECTS(static_cast<double>(c.iteration) == common,
                      "--resume: the ranks' checkpoints have no common iteration (this rank's '"
                          << run.resume << "' and its .previous are not at " << common << ")");
    }
  }
  if (!c.settings.empty()) {
    const std::string differ =
        settings_difference(c.settings, run_settings(command, run, problem, options),
                            describe_settings(AlgorithmOptions{}));
    BILEVEL_EXPECTS(differ.empty(), "--resume: checkpoint '" << file
                                        << "' was written by a run with other settings: "
                                        << differ);
  } else {
    // a version 2 or 3 file: its tag, as those versions wrote it (`legacy_problem`)
    std::string tag = command + " " + run.algo + " seed " + std::to_string(run.seed) + " " +
                      run.precision + "; " + legacy_problem;
    if (tag.size() > kCheckpointTagBytes) tag.resize(kCheckpointTagBytes);
    BILEVEL_EXPECTS(c.tag == tag, "checkpoint '" << file << "' belongs to another run ('" << c.tag
                                                 << "'); this run is '" << tag << "'");
  }
  BILEVEL_EXPECTS(c.dx == dx && c.dy == dy && c.instances == instances,
                  "checkpoint '" << file << "' is for dx = " << c.dx << ", dy = " << c.dy << ", "
                                 << c.instances << " instance(s); this run has dx = " << dx
                                 << ", dy = " << dy << ", " << instances);
  BILEVEL_EXPECTS(c.iteration <= loop.iterations,
                  "checkpoint '" << file << "' is at iteration " << c.iteration
                                 << ", past --iters " << loop.iterations);
  x0 = c.x;
  y0 = c.y;
  loop.start_iteration = c.iteration;
  if (say)
    std::fprintf(stderr, "  resuming from '%s' at iteration %lld%s\n", file.c_str(),
                 static_cast<long long>(c.iteration),
                 c.state.empty() ? "" : " (with the algorithm's carried state)");
  return std::move(c.state);
}

/// Fails early, before any work, when --checkpoint cannot be written or --resume not read:
/// the path (and its PATH.previous) must be a regular file or absent - never a directory or a
/// device, which the rename would replace - in a writable directory. Nothing is created or
/// removed.
template <typename T>
void check_checkpoint_paths(const RunOptions& run) {
  namespace fs = std::filesystem;
  if (!run.checkpoint.empty()) {
    for (const std::string& p : {run.checkpoint, run.checkpoint + ".previous"}) {
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
  if (run.resume.empty()) return;
  BILEVEL_EXPECTS(std::ifstream(run.resume, std::ios::binary).good(),
                  "cannot open checkpoint file '" << run.resume << "'");
  (void)read_checkpoint<T>(run.resume);
}

/// With --checkpoint: a checkpointer that writes the file with this run's tag and settings,
/// and loop.checkpoint_every set. Over several ranks each file keeps its predecessor
/// (PATH.previous), so that the ranks always share a checkpoint iteration.
template <typename T>
typename Solver<T>::Checkpointer checkpoint_writer(const std::string& command,
                                                   const RunOptions& run,
                                                   const ProblemSettings& problem,
                                                   const AlgorithmOptions& options,
                                                   ScheduleOptions& loop, const Communicator& comm) {
  if (run.checkpoint.empty()) return {};
  loop.checkpoint_every = run.checkpoint_every;
  const std::string path = run.checkpoint, tag = checkpoint_tag(command, run, problem);
  const std::string settings = run_settings(command, run, problem, options);
  const bool keep_previous = comm.size() > 1;
  return [path, tag, settings, keep_previous](const Checkpoint<T>& c) {
    Checkpoint<T> tagged = c;
    tagged.tag = tag;
    tagged.settings = settings;
    write_checkpoint(path, tagged, keep_previous);
  };
}

}  // namespace bilevel::cli
