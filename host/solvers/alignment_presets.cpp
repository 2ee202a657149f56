// Policy-alignment presets (solvers/alignment.hpp): AID-CG on the bandit, with or without the
// score-function term.
#include <bilevel/solvers/alignment.hpp>

#include <bilevel/error.hpp>

#include <cmath>
#include <sstream>

namespace bilevel {

std::vector<AlgorithmInfo> alignment_algorithm_presets() {
  return {
      {"a-parl",
       "D lower-level steps (bandit: policy gradient; gridworld: soft value iteration), "
       "implicit hypergradient (bandit: CG; gridworld: Neumann series), upper gradient with "
       "the score-function term of the policy-dependent feedback",
       "Chakraborty et al. 2023, arXiv 2308.02585",
       "HVP; the score term (upper_data_depend_on_y)"},
      {"reward-learning",
       "the same without the score-function term (feedback treated as fixed data)",
       "the baseline PARL improves on", "HVP"},
  };
}

AlignmentOptions alignment_options(const AlignmentRun& run) {
  // 0 asks for the preset's step; anything else must be a step (NaN, a negative or an
  // infinite value would otherwise fall back to the default without a word)
  BILEVEL_EXPECTS(std::isfinite(run.outer_step) && run.outer_step >= 0,
                  "alignment: outer_step must be a finite number > 0 (or 0: the preset's), got "
                      << run.outer_step);
  BILEVEL_EXPECTS(std::isfinite(run.outer_decay) && run.outer_decay >= 0 && run.outer_decay <= 1,
                  "alignment: outer_decay must be in [0, 1], got " << run.outer_decay);
  BILEVEL_EXPECTS(run.iterations >= 1 && run.inner_steps >= 0 && run.eval_every >= 0 &&
                      run.instances >= 1 && run.feedback >= 0 && run.series_terms >= 0,
                  "alignment: iterations and instances must be >= 1, inner_steps, eval_every, "
                  "feedback and series_terms >= 0");
  AlignmentOptions o;
  o.name = run.algorithm;
  o.inner_steps = run.inner_steps;
  o.series_terms = run.series_terms;
  o.loop.iterations = run.iterations;
  o.loop.eval_every = run.eval_every;
  o.loop.seed = run.seed;
  o.loop.capture = run.capture;
  o.loop.upper_batch = run.feedback;
  o.loop.independent_batches = run.feedback > 0 && run.instances > 1;
  if (run.outer_step > 0) o.loop.outer_step = {run.outer_step};
  o.loop.outer_decay = run.outer_decay;
  return o;
}

namespace {
bool uses_score_term(const AlignmentOptions& options) {
  if (options.name == "a-parl") return true;
  if (options.name != "reward-learning") {
    std::ostringstream os;
    os << "unknown alignment algorithm '" << options.name << "' (known:";
    for (const AlgorithmInfo& a : alignment_algorithm_presets()) os << ' ' << a.name;
    os << ')';
    throw InvalidArgument(os.str());
  }
  return false;
}
}  // namespace

void apply_alignment_preset(const AlignmentOptions& options, BanditAlignmentSpec& spec) {
  spec.score_function_term = uses_score_term(options);
}

void apply_alignment_preset(const AlignmentOptions& options, GridworldAlignmentSpec& spec) {
  spec.score_function_term = uses_score_term(options);
}

GridworldAlignmentSpec gridworld_spec(const GridworldRun& run, const AlignmentOptions& options) {
  BILEVEL_EXPECTS(run.feedback_type == "preference" || run.feedback_type == "utility",
                  "gridworld: the feedback type must be 'preference' or 'utility', got '"
                      << run.feedback_type << "'");
  BILEVEL_EXPECTS(run.reward_model == "state" || run.reward_model == "row-column",
                  "gridworld: the reward model must be 'state' or 'row-column', got '"
                      << run.reward_model << "'");
  BILEVEL_EXPECTS(std::isfinite(run.gamma) && run.gamma > 0 && run.gamma < 1,
                  "gridworld: gamma must be in (0, 1), got " << run.gamma);
  BILEVEL_EXPECTS(std::isfinite(run.slip) && run.slip >= 0 && run.slip <= 1,
                  "gridworld: slip must be in [0, 1], got " << run.slip);
  BILEVEL_EXPECTS(std::isfinite(run.tau) && run.tau > 0, "gridworld: tau must be > 0, got " << run.tau);
  BILEVEL_EXPECTS(std::isfinite(run.beta) && run.beta > 0, "gridworld: beta must be > 0, got " << run.beta);
  GridworldAlignmentSpec spec;
  spec.side = run.side;
  spec.horizon = run.horizon;
  spec.gamma = run.gamma;
  spec.slip = run.slip;
  spec.tau = run.tau;
  spec.beta = run.beta;
  spec.utility_feedback = run.feedback_type == "utility";
  spec.row_column_reward = run.reward_model == "row-column";
  spec.instances = run.instances;
  spec.seed = run.seed;
  apply_alignment_preset(options, spec);
  return spec;
}

template <typename T>
std::unique_ptr<Solver<T>> make_alignment_solver(BanditAlignmentProblem<T>& problem,
                                                 const AlignmentOptions& options) {
  BanditAlignmentSpec expected = problem.spec();
  apply_alignment_preset(options, expected);
  BILEVEL_EXPECTS(expected.score_function_term == problem.spec().score_function_term,
                  "policy alignment: the problem was not configured for "
                      << options.name << " (apply_alignment_preset sets the score term)");
  const double tau = problem.spec().tau;
  AlgorithmOptions o;
  o.name = "aid-cg";
  o.loop = options.loop;
  o.loop.inner_steps = options.inner_steps;
  o.loop.inner_step = {options.inner_step > 0 ? options.inner_step : 1.0 / tau};
  if (o.loop.outer_step.size() == 1 && o.loop.outer_step[0] <= 0) o.loop.outer_step = {tau};
  o.loop.lower_batch = 0;  // the policy gradient of the bandit is exact
  o.cg = CgOptions{options.cg_iterations > 0 ? options.cg_iterations : problem.dim_y(), true};
  return make_solver(static_cast<Problem<T>&>(problem), o);
}

template <typename T>
std::unique_ptr<Solver<T>> make_alignment_solver(GridworldAlignmentProblem<T>& problem,
                                                 const AlignmentOptions& options) {
  BILEVEL_EXPECTS(uses_score_term(options) == problem.spec().score_function_term,
                  "policy alignment: the gridworld problem was not configured for "
                      << options.name << " (apply_alignment_preset sets the score term)");
  AlgorithmOptions o;
  o.name = "stocbio";
  o.loop = options.loop;
  o.loop.inner_steps = options.inner_steps;
  // y <- y - 1 (Q - T_nu Q) = T_nu Q: soft value iteration
  o.loop.inner_step = {options.inner_step > 0 ? options.inner_step : 1.0};
  if (o.loop.outer_step.size() == 1 && o.loop.outer_step[0] <= 0) o.loop.outer_step = {0.1};
  o.loop.lower_batch = 0;  // the Bellman operator is exact
  // v = sum_k (I - H')^k fy: the error after Q terms is gamma^(Q+1) ||(I - H')^-1 fy||
  // (reward learning: fy = 0, so v = 0 without any product)
  const index_t terms =
      !problem.spec().score_function_term ? 0
      : options.series_terms > 0
          ? options.series_terms
          : static_cast<index_t>(std::ceil(std::log(1e-3) / std::log(problem.spec().gamma)));
  o.neumann = NeumannOptions{terms, {1.0}};
  return make_solver(static_cast<Problem<T>&>(problem), o);
}

template std::unique_ptr<Solver<float>> make_alignment_solver(BanditAlignmentProblem<float>&,
                                                              const AlignmentOptions&);
template std::unique_ptr<Solver<double>> make_alignment_solver(BanditAlignmentProblem<double>&,
                                                               const AlignmentOptions&);
template std::unique_ptr<Solver<float>> make_alignment_solver(GridworldAlignmentProblem<float>&,
                                                              const AlignmentOptions&);
template std::unique_ptr<Solver<double>> make_alignment_solver(GridworldAlignmentProblem<double>&,
                                                               const AlignmentOptions&);

}  // namespace bilevel
