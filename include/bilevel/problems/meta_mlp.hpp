// Meta-learning as a bilevel problem (MAML, first-order MAML, ANIL, iMAML;
// Finn et al. 2017, Raghu et al. 2020, Rajeswaran et al. 2019, Ji's thesis): the B instances
// are the B tasks of a meta-batch. Each task has a
// multi-layer perceptron whose parameters are phi = x + E y:
//
//   x  the meta-parameters (the initialisation every task adapts from), shared by all tasks
//   y  the task's adaptation offset: all parameters (E = I: MAML) or only the last layer, the
//      head (E embeds the head: ANIL, whose body is then adapted by nobody)
//   g(x, y) = L_support(x + E y),   f(x, y) = L_query(x + E y)
//
// Written with an offset y that starts at 0 in every iteration, the ITD estimator's reverse
// pass through D steps y <- y - alpha grad_y g is exactly MAML's meta-gradient
// prod_t (I - alpha H_t) grad L_query(phi_D), and FOM's is first-order MAML.
//
// iMAML (proximal > 0) uses the absolute form instead: y = phi, starting at x, and
//   g(x, y) = L_support(y) + (lambda / 2) ||y - x||^2,   f(x, y) = L_query(y)
// so that fx = 0, J = -lambda I and AID's fx - J v = lambda (H_L + lambda I)^{-1} grad L_query
// is iMAML's (I + H_L / lambda)^{-1} grad L_query computed as the iMAML paper does: a CG
// solution, scaled. (The offset form gives the same value at the exact solution, but its
// fx - H_L v amplifies the error of a few CG steps by the large Hessian eigenvalues of a
// network: sinusoid runs diverged with it.)
//
// The solver averages the tasks' hypergradients (shared_upper()) and starts each iteration
// from new tasks and y at its start (begin_iteration()).
//
// Tasks: sinusoid regression (the MAML paper's toy: y = A sin(t - p), A in [0.1, 5],
// p in [0, pi], t in [-5, 5]; K support and Q query points), N-way K-shot classification
// episodes from a labelled data set (Fashion-MNIST; one-hot targets, cross-entropy), both
// drawn on the executor from Philox keyed by (seed, split, iteration, task), or tasks given by
// the caller (set_tasks).
#pragma once

#include <bilevel/array.hpp>
#include <bilevel/data.hpp>
#include <bilevel/problem.hpp>
#include <bilevel/problems/mlp.hpp>

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace bilevel {

/// Which split tasks are drawn from (a Philox stream each): disjoint task sets.
enum class TaskSplit : std::uint32_t { meta_train = 1, meta_test = 2 };

struct MetaMlpSpec {
  MlpSpec mlp;
  bool adapt_head_only = false;  ///< ANIL: y is the last layer's offset only
  double proximal = 0.0;         ///< lambda of iMAML's (lambda / 2) ||y - x||^2 (0: none)
  /// iMAML: delta added to the diagonal of the linear system only, H v = (H_L + lambda +
  /// delta) v (J stays -lambda I): damping against the negative curvature of networks, as the
  /// iMAML authors' code does (lam_damping, regu_coef). 0: the exact implicit gradient.
  double damping = 0.0;
  index_t support = 10;          ///< K: support (inner) points per task
  index_t query = 10;            ///< query (outer) points per task
  std::uint64_t seed = 0;        ///< task draws
  TaskSplit split = TaskSplit::meta_train;
  /// Sinusoid ranges (the MAML paper's).
  double amplitude_min = 0.1, amplitude_max = 5.0, phase_min = 0.0, phase_max = 3.14159265358979,
         input_min = -5.0, input_max = 5.0;
};

/// N-way K-shot classification episodes: each task takes `ways` of the split's classes in a
/// random order (way j is label j) and `shots` support and `queries` query samples of each
/// (distinct within the task). The network must have data.features inputs, `ways` outputs and
/// the cross-entropy loss; support = ways shots and query = ways queries points per task.
struct EpisodeSpec {
  std::vector<int> classes;  ///< labels of the data set that form this split (>= ways)
  index_t ways = 5, shots = 1, queries = 15;
  double scale = 1.0 / 255.0;  ///< inputs = scale * features (pixels to [0, 1])
};

/// One task's data for set_tasks: support inputs (w_0 x K, column-major) and targets
/// (w_L x K), query likewise (w_0 x Q, w_L x Q).
struct MetaTask {
  std::vector<double> support_x, support_y, query_x, query_y;
};

template <typename T>
class MetaMlpProblem final : public Problem<T> {
 public:
  /// `tasks`: the meta-batch size (B); the problem holds the data of that many tasks.
  MetaMlpProblem(std::shared_ptr<Executor> exec, MetaMlpSpec spec, index_t tasks);
  /// Classification episodes drawn from `data` (copied to the executor once).
  MetaMlpProblem(std::shared_ptr<Executor> exec, MetaMlpSpec spec, index_t tasks,
                 const Dataset& data, EpisodeSpec episodes);
  ~MetaMlpProblem() override;

  std::string name() const override;
  std::shared_ptr<Executor> executor() const override { return exec_; }
  index_t dim_x() const override;
  index_t dim_y() const override;
  index_t tasks() const { return tasks_; }
  const MetaMlpSpec& spec() const { return spec_; }

  /// Draws the tasks of iteration `step` of the spec's split (instance b gets task (step, b)),
  /// on the executor; no further draws (begin_iteration keeps them) until sample_each_iteration.
  void sample_tasks(std::uint32_t step);
  /// Draws new tasks at every solver iteration from the iteration counter (the default).
  void sample_each_iteration();
  /// Uses these tasks (one per instance, shapes of the spec) and draws none.
  void set_tasks(const std::vector<MetaTask>& tasks);
  /// True while new tasks are drawn at every solver iteration.
  bool draws_each_iteration() const;
  /// The current tasks, copied back (synchronises): for tests and reports.
  std::vector<MetaTask> current_tasks() const;

  bool shared_upper() const override { return true; }
  bool upper_depends_on_x() const override { return !proximal(); }
  void begin_iteration(const std::uint32_t* counter, ConstMatrixView<T> x,
                       MatrixView<T> y) override;
  void reserve(index_t instances, index_t max_batch) override;
  std::vector<std::string> evaluation_metric_names() const override;
  void evaluation_metrics(ConstMatrixView<T> x, ConstMatrixView<T> y, T* out) override;

  void grad_y_g(const Batch& batch, ConstMatrixView<T> x, ConstMatrixView<T> y,
                MatrixView<T> out) override;
  void grad_f(const Batch& batch, ConstMatrixView<T> x, ConstMatrixView<T> y, MatrixView<T> fx,
              MatrixView<T> fy) override;
  void hvp_jvp(const Batch& batch, ConstMatrixView<T> x, ConstMatrixView<T> y,
               ConstMatrixView<T> v, MatrixView<T> hv, MatrixView<T> jv) override;
  void values(const Batch& lower, const Batch& upper, ConstMatrixView<T> x, ConstMatrixView<T> y,
              T* f_out, T* g_out) override;

  /// out (P x B) = grad of the squared loss at parameters phi (P x B) on the support (or
  /// query) sets: the plain network oracle, for tests.
  void loss_gradient(bool query, ConstMatrixView<T> phi, MatrixView<T> out);
  /// out (P x B) = Hessian of the support (or query) loss at phi times d (P x B).
  void loss_hvp(bool query, ConstMatrixView<T> phi, ConstMatrixView<T> d, MatrixView<T> out);
  /// out[b] = the loss of task b at phi (length B on the executor).
  void loss_values(bool query, ConstMatrixView<T> phi, T* out);
  /// out[b] = query accuracy of task b at (x, y) (classification episodes).
  void query_accuracy(ConstMatrixView<T> x, ConstMatrixView<T> y, T* out);
  bool classification() const { return spec_.mlp.loss == OutputLoss::cross_entropy; }

 private:
  struct State;
  bool proximal() const { return spec_.proximal > 0; }
  void check(const char* oracle, ConstMatrixView<T> x, ConstMatrixView<T> y) const;
  /// phi = x + E y into the workspace.
  ConstMatrixView<T> adapted(ConstMatrixView<T> x, ConstMatrixView<T> y);
  void check_spec() const;  ///< the rules every spec obeys (both constructors)
  void allocate();
  /// Forward pass at phi on the query (or support) inputs; returns their targets.
  const T* forward_on(bool query, ConstMatrixView<T> phi);
  /// Draws the tasks of step (+ *counter when given) on the executor.
  void draw(std::uint32_t step, const std::uint32_t* counter);

  std::shared_ptr<Executor> exec_;
  MetaMlpSpec spec_;
  index_t tasks_ = 0;
  std::unique_ptr<State> state_;
};

extern template class MetaMlpProblem<float>;
extern template class MetaMlpProblem<double>;

/// What the tasks of a meta-test split score after adaptation: D steps y <- y - alpha grad_y g
/// from the start of adaptation at the meta-parameters x (one column, shared), on `problem`'s
/// current tasks (drawn with sample_tasks or given with set_tasks).
struct MetaTestResult {
  std::vector<double> loss_before;  ///< query loss of each task at x (before adaptation)
  std::vector<double> loss_after;   ///< after the D steps
  double mean_before = 0, mean_after = 0;
  double interval_after = 0;  ///< half-width of the 95% interval of mean_after (1.96 sd / sqrt n)
  /// Classification episodes: query accuracy of each task after adaptation, mean, interval.
  std::vector<double> accuracy_after;
  double mean_accuracy = 0, interval_accuracy = 0;
};

/// Mean and half-width of the 95% interval (1.96 sd / sqrt n) of per-task values.
std::pair<double, double> mean_and_interval(const std::vector<double>& values);

/// The nearest-centroid baseline on the same inputs: each query sample gets the label of the
/// closest support-class mean (Euclidean); the accuracy of each task (one-hot targets, `ways`
/// classes, `inputs` features per sample).
std::vector<double> nearest_centroid_accuracy(const std::vector<MetaTask>& tasks, index_t inputs,
                                              index_t ways);
template <typename T>
MetaTestResult meta_test(MetaMlpProblem<T>& problem, const std::vector<T>& x, index_t steps,
                         double alpha);

}  // namespace bilevel
