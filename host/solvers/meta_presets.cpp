// Meta-learning presets (solvers/meta_learning.hpp): each is an estimator preset of the
// scheduler on the meta-learning problem; only the problem's configuration differs.
#include <bilevel/solvers/meta_learning.hpp>

#include <bilevel/error.hpp>

#include <cmath>
#include <sstream>

namespace bilevel {

MetaSetup meta_setup(const MetaRun& run, const Dataset* pool, const std::string& pool_name,
                     const std::string& train_option, const std::string& test_option) {
  // 0 asks for the default meta step; NaN, negative or infinite values are refused, not
  // replaced by defaults
  BILEVEL_EXPECTS(std::isfinite(run.outer_step) && run.outer_step >= 0,
                  "meta-learning: outer_step must be a finite number > 0 (or 0: the default), got "
                      << run.outer_step);
  BILEVEL_EXPECTS(std::isfinite(run.inner_step) && run.inner_step > 0,
                  "meta-learning: inner_step must be a finite number > 0, got " << run.inner_step);
  BILEVEL_EXPECTS(std::isfinite(run.lambda) && run.lambda > 0,
                  "meta-learning: lambda must be a finite number > 0, got " << run.lambda);
  BILEVEL_EXPECTS(std::isfinite(run.damping) && run.damping >= 0,
                  "meta-learning: damping must be a finite number >= 0, got " << run.damping);
  MetaSetup m;
  MetaAlgorithmOptions& o = m.options;
  o.name = run.algorithm;
  o.inner_steps = run.inner_steps;
  o.inner_step = run.inner_step;
  o.proximal = run.lambda;
  o.damping = run.damping;
  o.cg_iterations = run.cg_iterations;
  o.loop.iterations = run.iterations;
  o.loop.eval_every = run.eval_every;
  o.loop.seed = run.seed;
  o.loop.capture = run.capture;
  o.loop.upper = run.update;
  // meta step: the MAML paper's Adam step is 1e-3; plain SGD on the averaged gradient needs a
  // larger one, normalized momentum a fixed length
  const double default_step = run.update == UpperUpdate::normalized_momentum ? 0.01 : 0.05;
  o.loop.outer_step = {run.outer_step > 0 ? run.outer_step : default_step};
  o.loop.average = 0.1;
  // classification episodes: by default the even classes for meta-training (training images),
  // the odd ones for meta-testing (test images): disjoint classes and images
  const bool episodes = pool != nullptr;
  if (episodes) {
    m.train_episodes.classes = run.train_classes;
    m.test_episodes.classes = run.test_classes;
    if (m.train_episodes.classes.empty())
      for (int c = 0; c < pool->classes; c += 2) m.train_episodes.classes.push_back(c);
    if (m.test_episodes.classes.empty())
      for (int c = 1; c < pool->classes; c += 2) m.test_episodes.classes.push_back(c);
    for (EpisodeSpec* e : {&m.train_episodes, &m.test_episodes}) {
      const std::string& option = e == &m.train_episodes ? train_option : test_option;
      BILEVEL_EXPECTS(static_cast<index_t>(e->classes.size()) >= run.ways,
                      option << ": " << run.ways << "-way episodes need at least " << run.ways
                             << " classes, " << e->classes.size() << " given");
      for (std::size_t i = 0; i < e->classes.size(); ++i) {
        BILEVEL_EXPECTS(e->classes[i] >= 0 && e->classes[i] < pool->classes,
                        option << ": class " << e->classes[i] << " is not a label of "
                               << pool_name << " (0.." << pool->classes - 1 << ")");
        for (std::size_t k = 0; k < i; ++k)
          BILEVEL_EXPECTS(e->classes[k] != e->classes[i],
                          option << ": class " << e->classes[i] << " is listed twice");
      }
      e->ways = run.ways, e->shots = run.shots, e->queries = run.query;
    }
  }
  MetaMlpSpec& spec = m.spec;
  spec.mlp.widths = {episodes ? pool->features : 1};
  spec.mlp.widths.insert(spec.mlp.widths.end(), run.hidden.begin(), run.hidden.end());
  spec.mlp.widths.push_back(episodes ? run.ways : 1);
  spec.mlp.activation = run.activation;
  spec.mlp.loss = episodes ? OutputLoss::cross_entropy : OutputLoss::squared;
  spec.support = run.shots;
  spec.query = run.query;
  spec.seed = run.seed;
  apply_meta_preset(o, spec);
  return m;
}

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
