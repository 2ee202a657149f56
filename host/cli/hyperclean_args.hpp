// The arguments of `bilevel hyperclean` (internal to the CLI): what the command line sets, the
// --grid expansion into per-instance settings, and the memory plan made before anything is
// allocated (where the training features live, or an error naming the options that would fit).
#pragma once

#include "commands.hpp"

#include <bilevel/bilevel.hpp>

#include <string>
#include <vector>

namespace bilevel::cli {

/// The hyper-cleaning default precision is float (twice the GEMM speed; the targets are met).
inline RunOptions float_run_options() {
  RunOptions r;
  r.precision = "float";
  return r;
}

struct HypercleanArgs {
  std::string data = "fashion-mnist";
  index_t samples = 20000, features = 100;
  int classes = 10;
  double feature_scales = 1.0, correlation = 0.0;  ///< synthetic: the harder generator
  index_t train = 20000, validation = 5000, test = 10000;
  double corruption = 0.5, reg = 3e-3;
  index_t iterations = -1;  ///< -1: from --epochs or the default run length
  double epochs = 0;        ///< > 0: the run length in epochs
  index_t inner_steps = 5, batch = 512;
  RunOptions run = float_run_options();
  index_t eval_every = -1;  ///< -1: a sixth of the run
  std::vector<double> inner_step, outer_step, neumann_eta;  ///< empty: the defaults
  index_t neumann_terms = 10, cg_iterations = 10;
  index_t baseline_steps = 1500;
  bool baselines = true;
  std::string data_precision = "same";
  std::string data_residence = "auto";
  std::string distributed = "auto";
  /// --grid NAME=v1,v2,...: the instances are the Cartesian product of these settings.
  std::vector<std::string> grid;
  /// One description per instance ("outer-step 1000, inner-step 0.1"), set by expand_grid.
  std::vector<std::string> instance_settings;
};

/// Turns --grid specifications into B instances (the Cartesian product, the first grid varying
/// slowest) with per-instance step lists; names each instance's settings.
void expand_grid(HypercleanArgs& a);

/// "1.23 GB" / "45.6 MB" / "789 kB".
std::string human_bytes(double bytes);

struct MemoryDecision {
  std::string line;  ///< the header's memory line
  DataResidence residence = DataResidence::device;
};

/// Before anything is allocated: what the run will hold against what the executor has, and
/// where the training features go (--data-residence auto: on the executor when everything
/// fits, else in host memory when the rest fits); when nothing fits, an error that says both
/// in words and which options would fit.
/// `a` holds this rank's split sizes; `ranks` share the run (a --train that fits is said for the
/// whole run: ranks x the per-rank count).
template <typename T>
MemoryDecision plan_memory(Executor& exec, const HypercleanArgs& a, index_t features, int classes,
                           index_t ranks);

}  // namespace bilevel::cli
