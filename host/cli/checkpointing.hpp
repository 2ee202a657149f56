// --checkpoint and --resume for the solving commands.
#pragma once

#include "commands.hpp"

#include <bilevel/checkpoint.hpp>
#include <bilevel/error.hpp>
#include <bilevel/solvers/solver.hpp>

#include <cstdio>
#include <fstream>
#include <vector>

namespace bilevel::cli {

/// What a checkpoint of this run is tagged with: the command, the algorithm and the seed (the
/// seed fixes the data split and the minibatches a resumed run must continue).
inline std::string checkpoint_tag(const std::string& command, const RunOptions& run) {
  return command + " " + run.algo + " seed " + std::to_string(run.seed);
}

/// With --resume: x0, y0 and loop.start_iteration from the checkpoint file, checked against
/// this run's tag, dimensions and iteration count.
template <typename T>
void resume_if_asked(const std::string& command, const RunOptions& run, index_t dx, index_t dy,
                     index_t instances, std::vector<T>& x0, std::vector<T>& y0,
                     ScheduleOptions& loop) {
  if (run.resume.empty()) return;
  const Checkpoint<T> c = read_checkpoint<T>(run.resume);
  BILEVEL_EXPECTS(c.tag == checkpoint_tag(command, run),
                  "checkpoint '" << run.resume << "' belongs to another run ('" << c.tag
                                 << "'); this run is '" << checkpoint_tag(command, run) << "'");
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
  std::fprintf(stderr, "  resuming from '%s' at iteration %lld\n", run.resume.c_str(),
               static_cast<long long>(c.iteration));
}

/// Fails early, before any work, when --checkpoint cannot be written or --resume not read.
inline void check_checkpoint_paths(const RunOptions& run) {
  if (!run.checkpoint.empty()) {
    const std::string probe = run.checkpoint + ".tmp";
    std::ofstream out(probe, std::ios::binary | std::ios::trunc);
    BILEVEL_EXPECTS(out.good(), "cannot write checkpoint file '" << run.checkpoint << "'");
    out.close();
    std::remove(probe.c_str());
  }
  if (!run.resume.empty())
    BILEVEL_EXPECTS(std::ifstream(run.resume, std::ios::binary).good(),
                    "cannot open checkpoint file '" << run.resume << "'");
}

/// With --checkpoint: a checkpointer that writes the file, and loop.checkpoint_every set.
template <typename T>
typename Solver<T>::Checkpointer checkpoint_writer(const std::string& command,
                                                   const RunOptions& run, ScheduleOptions& loop) {
  if (run.checkpoint.empty()) return {};
  loop.checkpoint_every = run.checkpoint_every;
  const std::string path = run.checkpoint, tag = checkpoint_tag(command, run);
  return [path, tag](const Checkpoint<T>& c) {
    Checkpoint<T> tagged = c;
    tagged.tag = tag;
    write_checkpoint(path, tagged);
  };
}

}  // namespace bilevel::cli
