// Policy-alignment algorithms as presets of the existing parts, on
// problems/policy_alignment.hpp:
//   a-parl           D policy-gradient steps on the lower level, the implicit hypergradient by
//                    CG, the upper gradient with the score-function term of the data's
//                    dependence on the policy (Chakraborty et al. 2023, arXiv 2308.02585, from a
//                    summary of A-PARL; not checked line by line against the paper)
//   reward-learning  the same without the score-function term: reward learning that treats
//                    the feedback as if its distribution did not depend on the policy
// On the gridworlds the lower level is soft value iteration (inner step 1 on the Bellman
// residual) and the implicit hypergradient a Neumann series (the lower level's Jacobian is not
// symmetric, so CG does not apply); the series converges at rate gamma.
#pragma once

#include <bilevel/problems/gridworld_alignment.hpp>
#include <bilevel/problems/policy_alignment.hpp>
#include <bilevel/solvers/solver.hpp>

#include <memory>
#include <string>
#include <vector>

namespace bilevel {

struct AlignmentOptions {
  std::string name = "a-parl";
  index_t inner_steps = 10;      ///< policy-gradient steps per iteration (D)
  double inner_step = 0.0;       ///< alpha; 0: 1 / tau
  index_t cg_iterations = 0;     ///< 0: A - 1 (exact for the bandit's lower level)
  /// Gridworlds: Neumann terms of the implicit hypergradient (0: enough for gamma^terms < 1e-3).
  index_t series_terms = 0;
  /// Iterations, outer step (0 there: tau), upper update, feedback batch (0: exact
  /// expectations), seed, evaluations.
  ScheduleOptions loop = [] {
    ScheduleOptions l;
    l.outer_step = {0.0};
    return l;
  }();
};

/// The schedule of one run as `bilevel align` and the Python package take it (both
/// environments), turned into AlignmentOptions by alignment_options(): one place for what the
/// command line and Python set, so the two cannot drift.
struct AlignmentRun {
  std::string algorithm = "a-parl";
  index_t iterations = 500, inner_steps = 10, eval_every = 50, instances = 1;
  index_t feedback = 0;      ///< upper batch per iteration (0: exact expectations, bandit only)
  double outer_step = 0.0;   ///< 0: the preset's
  double outer_decay = 0.0;  ///< the step at iteration k: outer_step (k + 1)^-outer_decay
  index_t series_terms = 0;  ///< gridworlds' Neumann terms (0: from gamma)
  std::uint64_t seed = 0;
  bool capture = true;
};
/// Independent feedback per instance when there are several and the feedback is sampled.
AlignmentOptions alignment_options(const AlignmentRun& run);

/// The gridworld environment of a run as `bilevel align --env gridworld` and the Python
/// package take it (GridworldAlignmentSpec's defaults), with the feedback and the reward model
/// by name.
struct GridworldRun {
  index_t side = 5, horizon = 15, instances = 1;
  double gamma = 0.9, slip = 0.1, tau = 0.1, beta = 1.0;
  std::string feedback_type = "preference";  ///< or "utility"
  std::string reward_model = "state";        ///< or "row-column"
  std::uint64_t seed = 0;
};
/// The spec of `run` with the preset of `options` applied. Throws InvalidArgument naming a
/// feedback type or reward model that does not exist.
GridworldAlignmentSpec gridworld_spec(const GridworldRun& run, const AlignmentOptions& options);

std::vector<AlgorithmInfo> alignment_algorithm_presets();

/// The problem side of a preset: whether the score-function term is used. Throws
/// InvalidArgument for an unknown name.
void apply_alignment_preset(const AlignmentOptions& options, BanditAlignmentSpec& spec);
void apply_alignment_preset(const AlignmentOptions& options, GridworldAlignmentSpec& spec);

template <typename T>
std::unique_ptr<Solver<T>> make_alignment_solver(BanditAlignmentProblem<T>& problem,
                                                 const AlignmentOptions& options);
/// Gridworlds: `inner_steps` soft value-iteration sweeps per iteration (inner_step 0: 1), the
/// Neumann hypergradient (eta 1, `series_terms`), SGD on nu (outer step 0: 0.1).
template <typename T>
std::unique_ptr<Solver<T>> make_alignment_solver(GridworldAlignmentProblem<T>& problem,
                                                 const AlignmentOptions& options);

}  // namespace bilevel
