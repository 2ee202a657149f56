// Meta-learning algorithms as presets of the existing parts (MAML, Finn et al. 2017; ANIL,
// Raghu et al. 2020), on
// problems/meta_mlp.hpp, whose instances are the tasks of a meta-batch:
//   maml      ITD through D inner steps from y = 0 (Finn et al. 2017; Ji's thesis)
//   fomaml    FOM: the query gradient at the adapted parameters (first-order MAML)
//   anil      ITD with the head only adapted (Raghu et al. 2020)
//   imaml     D inner steps on the proximal task loss, AID-CG without warm start
//             (Rajeswaran et al. 2019)
//   pretrain  the baseline: FOM with D = 0, i.e. SGD on the mean query loss at x (joint
//             training of one network on all tasks), adapted at test time like the others
#pragma once

#include <bilevel/data.hpp>
#include <bilevel/problems/meta_mlp.hpp>
#include <bilevel/solvers/solver.hpp>

#include <memory>
#include <string>
#include <vector>

namespace bilevel {

struct MetaAlgorithmOptions {
  std::string name = "maml";
  index_t inner_steps = 1;   ///< D (adaptation steps per task)
  double inner_step = 0.01;  ///< alpha (the MAML paper's sinusoid value)
  double proximal = 1.0;     ///< lambda of iMAML
  double damping = 0.0;      ///< delta of iMAML's linear system (MetaMlpSpec::damping)
  index_t cg_iterations = 5; ///< iMAML's CG iterations per meta-gradient
  /// Meta-iterations, meta step size and update, evaluations, seed (inner_steps and
  /// inner_step here are set from the fields above).
  ScheduleOptions loop;
};

/// One meta-learning run as `bilevel meta` and the Python package take it, turned into the
/// preset's options, the network spec and the episode splits by meta_setup(): one place for
/// what the command line and Python set, so that the same seed gives the same run.
struct MetaRun {
  std::string algorithm = "maml";
  index_t ways = 5, shots = 10, query = 10, inner_steps = 1;
  double inner_step = 0.01;
  double outer_step = 0.0;  ///< 0: 0.05 (0.01 with normalized momentum)
  UpperUpdate update = UpperUpdate::moving_average;
  index_t iterations = 10000, eval_every = 500;
  std::vector<index_t> hidden{40, 40};
  Activation activation = Activation::relu;
  /// Episodes: the labels of the meta-train and meta-test splits (empty: the even and the odd
  /// ones); each needs at least `ways` distinct labels of the data set.
  std::vector<int> train_classes, test_classes;
  double lambda = 1.0, damping = 0.0;  ///< iMAML
  index_t cg_iterations = 5;           ///< iMAML
  std::uint64_t seed = 0;
  bool capture = true;
};

struct MetaSetup {
  MetaAlgorithmOptions options;
  MetaMlpSpec spec;
  EpisodeSpec train_episodes, test_episodes;  ///< episodes only
};

/// Sinusoid regression (pool null) or N-way K-shot episodes of `pool` (its features are the
/// network's inputs); the preset applied to the spec. Throws InvalidArgument naming the option
/// (`train_option`, `test_option`) for classes that are too few, repeated or not labels of the
/// data (`pool_name` in the message).
MetaSetup meta_setup(const MetaRun& run, const Dataset* pool, const std::string& pool_name = "",
                     const std::string& train_option = "--train-classes",
                     const std::string& test_option = "--test-classes");

std::vector<AlgorithmInfo> meta_algorithm_presets();

/// The problem side of a preset: anil adapts the head only, imaml adds (lambda / 2) ||y||^2,
/// the others neither. Throws InvalidArgument for an unknown name.
void apply_meta_preset(const MetaAlgorithmOptions& options, MetaMlpSpec& spec);

/// The solver of preset options.name on `problem`, whose spec must be the one
/// apply_meta_preset gives (checked).
template <typename T>
std::unique_ptr<Solver<T>> make_meta_solver(MetaMlpProblem<T>& problem,
                                            const MetaAlgorithmOptions& options);

}  // namespace bilevel
