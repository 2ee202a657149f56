// The arguments of `bilevel hyperclean` (internal to the CLI): what the command line sets, the
// --grid expansion into per-instance settings, and the memory plan made before anything is
// allocated (where the training features live, or an error naming the options that would fit).
#pragma once

#include "commands.hpp"

#include <bilevel/bilevel.hpp>

#include <string>
#include <vector>

namespace bilevel::cli {

/// The hyper-cleaning defaults: float (twice the GEMM speed; the targets are met) and SOBA (the
/// one preset that reached the quality line at every scale of docs/scaling.md; stocBiO's
/// 10-term Neumann series at step 0.9/L_g falls short where L_g grows with the features).
inline RunOptions hyperclean_run_options() {
  RunOptions r;
  r.precision = "float";
  r.algo = "soba";
  return r;
}

struct HypercleanArgs {
  std::string data = "fashion-mnist";
  index_t samples = 20000, features = 100;
  int classes = 10;
  double feature_scales = 1.0, correlation = 0.0;  ///< synthetic: the harder generator
  index_t train = 20000, validation = 5000, test = 10000;
  double corruption = 0.5, reg = 3e-3;
  /// --protocol: bilevel (ours) or benchopt (benchmark_bilevel's datacleaning: uniform label
  /// draws, no bias, reg 0.2 unless --reg is given, x starting at -2).
  std::string protocol = "bilevel";
  bool reg_given = false;  ///< --reg on the command line
  index_t iterations = -1;  ///< -1: from --epochs or the default run length
  double epochs = 0;        ///< > 0: the run length in epochs
  index_t inner_steps = 5, batch = 512;
  RunOptions run = hyperclean_run_options();
  bool algo_given = false;  ///< --algo on the command line (else the header says why SOBA)
  index_t eval_every = -1;  ///< -1: a sixth of the run
  std::vector<double> inner_step, outer_step, neumann_eta;  ///< empty: the defaults
  index_t neumann_terms = 10, cg_iterations = 10;
  index_t baseline_steps = -1;  ///< -1: as many as the run's iterations, at least 1500
  bool baselines = true;
  std::string data_precision = "same";
  std::string data_residence = "auto";
  std::string distributed = "auto";
  /// --search: a --grid of x steps around the default (x 1/4, 1, 4), the best kept.
  bool search = false;
  /// --grid NAME=v1,v2,...: the instances are the Cartesian product of these settings.
  std::vector<std::string> grid;
  /// One description per instance ("outer-step 1000, inner-step 0.1"), set by expand_grid.
  std::vector<std::string> instance_settings;
  /// Splits as given (another program's draws, e.g. benchopt's): --data is the training split,
  /// these the other two, all LIBSVM files; the training labels are used as they are (nothing
  /// corrupted here, and which of them are wrong is unknown: no F1, no oracle baseline).
  std::string validation_data, test_data;
  bool standardize = true;  ///< --no-standardize: the given features as they are
  /// What the command line set itself (given splits refuse the options that size or corrupt
  /// a split of one file).
  bool sizes_given = false, corruption_given = false;

  bool given_splits() const { return !validation_data.empty() || !test_data.empty(); }
};

/// Given splits: both files, a data file (not synthetic), and none of the options that split or
/// corrupt one file (--train, --validation, --test, --corruption); --no-standardize only with
/// them. Errors name the options.
void check_given_splits(const HypercleanArgs& a);

/// The default step on the weight logits x: each x_i moves the same per touch at any n and
/// batch. A gradient step moves it by step / batch (a sample's share of the mean), so 1000 x
/// batch / 512; a normalized step (BO-REP) moves the batch's x_i together by the step in norm,
/// each by about step / sqrt(batch), so 2 x sqrt(batch / 512). `why`: the rule in words.
double default_outer_step(const std::string& algo, index_t batch, std::string* why = nullptr);

/// --protocol benchopt: refuses synthetic data (it has its own generator) and takes
/// benchopt's reg 0.2 unless --reg was given.
void apply_protocol(HypercleanArgs& a);

/// The header's words for the corrupted labels: "50% corrupted", with the benchopt protocol
/// (random draws) the share that came out wrong, or "labels as given".
std::string corruption_words(const HypercleanArgs& a, index_t wrong);

/// The search factors of --search around the default x step.
inline constexpr double kSearchFactors[] = {0.25, 1.0, 4.0};

/// --search: adds the grid outer-step = default x {1/4, 1, 4} (refused beside --outer-step,
/// a --grid of outer-step or --instances, naming the clash).
void add_step_search(HypercleanArgs& a);

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
