// Meta-learning presets (solvers/meta_learning.hpp): each is an estimator preset of the
// scheduler on the meta-learning problem; only the problem's configuration differs.
#include <bilevel/solvers/meta_learning.hpp>

#include <sstream>

namespace bilevel {

std::vector<AlgorithmInfo> meta_algorithm_presets() {
  return {
      {"maml", "reverse mode through D adaptation steps from the meta-parameters (ITD)",
       "Finn, Abbeel, Levine 2017, arXiv 1703.03400; Ji et al. 2022 (MAML/ANIL analysis)",
       "HVP of the task loss"},
      {"fomaml", "first-order MAML: the query gradient at the adapted parameters (FOM)",
       "Finn et al. 2017, section 5.2; Nichol et al. 2018", "gradients only"},
      {"anil", "MAML with only the head (last layer) adapted; the body learned by the outer loop",
       "Raghu et al. 2020, arXiv 1909.09157", "HVP of the task loss"},
      {"imaml", "implicit MAML: D steps on the proximal task loss, (I + H / lambda)^-1 by CG",
       "Rajeswaran et al. 2019, arXiv 1909.04630", "HVP of the task loss"},
      {"pretrain", "baseline: one network trained on the mean query loss (no inner loop)",
       "the MAML paper's 'pretrained' baseline", "gradients only"},
  };
}

namespace {
void check_name(const std::string& name) {
  for (const AlgorithmInfo& a : meta_algorithm_presets())
    if (a.name == name) return;
  std::ostringstream os;
  os << "unknown meta-learning algorithm '" << name << "' (known:";
  for (const AlgorithmInfo& a : meta_algorithm_presets()) os << ' ' << a.name;
  os << ')';
  throw InvalidArgument(os.str());
}
}  // namespace

void apply_meta_preset(const MetaAlgorithmOptions& options, MetaMlpSpec& spec) {
  check_name(options.name);
  spec.adapt_head_only = options.name == "anil";
  spec.proximal = options.name == "imaml" ? options.proximal : 0.0;
  spec.damping = options.name == "imaml" ? options.damping : 0.0;
}

template <typename T>
std::unique_ptr<Solver<T>> make_meta_solver(MetaMlpProblem<T>& problem,
                                            const MetaAlgorithmOptions& options) {
  MetaMlpSpec expected = problem.spec();
  apply_meta_preset(options, expected);
  BILEVEL_EXPECTS(expected.adapt_head_only == problem.spec().adapt_head_only &&
                      expected.proximal == problem.spec().proximal &&
                      expected.damping == problem.spec().damping,
                  "meta-learning: the problem was not configured for "
                      << options.name << " (apply_meta_preset sets which parameters adapt and "
                                         "the proximal weight)");
  BILEVEL_EXPECTS(options.inner_steps >= 0, "meta-learning: inner steps must be >= 0");
  BILEVEL_EXPECTS(options.inner_step > 0, "meta-learning: the inner step alpha must be > 0");
  BILEVEL_EXPECTS(options.name != "imaml" || options.proximal > 0,
                  "imaml: the proximal weight lambda must be > 0, got " << options.proximal);
  AlgorithmOptions o;
  o.loop = options.loop;
  o.loop.inner_steps = options.name == "pretrain" ? 0 : options.inner_steps;
  o.loop.inner_step = {options.inner_step};
  o.loop.lower_batch = o.loop.upper_batch = 0;  // a task's support and query sets, whole
  o.loop.independent_batches = false;
  o.loop.init_steps = 0;
  o.loop.inner_period = 1;
  if (options.name == "maml" || options.name == "anil") {
    o.name = "itd-bio";
  } else if (options.name == "fomaml" || options.name == "pretrain") {
    o.name = "fom";
  } else {  // imaml: the solver's D inner steps from y = 0, then CG from v = 0
    o.name = "aid-cg";
    o.cg = CgOptions{options.cg_iterations, false};
  }
  return make_solver(static_cast<Problem<T>&>(problem), o);
}

template std::unique_ptr<Solver<float>> make_meta_solver(MetaMlpProblem<float>&,
                                                         const MetaAlgorithmOptions&);
template std::unique_ptr<Solver<double>> make_meta_solver(MetaMlpProblem<double>&,
                                                          const MetaAlgorithmOptions&);

}  // namespace bilevel
