// Policy-alignment presets (solvers/alignment.hpp): AID-CG on the bandit, with or without the
// score-function term.
#include <bilevel/solvers/alignment.hpp>

#include <sstream>

namespace bilevel {

std::vector<AlgorithmInfo> alignment_algorithm_presets() {
  return {
      {"a-parl",
       "D policy-gradient steps, implicit hypergradient (CG), upper gradient with the "
       "score-function term of the policy-dependent feedback",
       "Chakraborty et al. 2023, arXiv 2308.02585 (as summarised in ALGORITHMS.md)",
       "HVP; the score term (upper_data_depend_on_y)"},
      {"reward-learning",
       "the same without the score-function term (feedback treated as fixed data)",
       "the baseline PARL improves on", "HVP"},
  };
}

void apply_alignment_preset(const AlignmentOptions& options, BanditAlignmentSpec& spec) {
  if (options.name == "a-parl") {
    spec.score_function_term = true;
  } else if (options.name == "reward-learning") {
    spec.score_function_term = false;
  } else {
    std::ostringstream os;
    os << "unknown alignment algorithm '" << options.name << "' (known:";
    for (const AlgorithmInfo& a : alignment_algorithm_presets()) os << ' ' << a.name;
    os << ')';
    throw InvalidArgument(os.str());
  }
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

template std::unique_ptr<Solver<float>> make_alignment_solver(BanditAlignmentProblem<float>&,
                                                              const AlignmentOptions&);
template std::unique_ptr<Solver<double>> make_alignment_solver(BanditAlignmentProblem<double>&,
                                                               const AlignmentOptions&);

}  // namespace bilevel
