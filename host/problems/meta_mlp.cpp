// Meta-learning as a bilevel problem (problems/meta_mlp.hpp): phi = x + E y per task, the
// network's passes from problems/batched_mlp.hpp, tasks drawn on the executor.
#include <bilevel/problems/meta_mlp.hpp>

#include "../../kernels/meta_kernels.hpp"
#include "batched_mlp.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <tuple>

namespace bilevel {

template <typename T>
struct MetaMlpProblem<T>::State {
  State(std::shared_ptr<Executor> exec, const MlpSpec& spec) : mlp(exec, spec) {
    kernels = kernels::make_meta_kernels<T>(*exec);
  }
  BatchedMlp<T> mlp;
  std::unique_ptr<kernels::MetaKernels<T>> kernels;
  Array<T> support_x, support_y, query_x, query_y;  // per task: w_0 K, w_L K, w_0 Q, w_L Q
  Array<T> phi;        // P x B: x + E y
  Array<T> full;       // P x B: gradients and products of all parameters
  Array<T> direction;  // P x B: E v (ANIL: the body rows stay 0)
  Array<T> scalar;     // B
  bool each_iteration = true;
  // classification episodes: the data set and its split's classes on the executor
  bool episodes = false;
  EpisodeSpec episode;
  Array<float> features;  // d x N
  Array<std::int32_t> class_start, class_count, members, support_index, query_index;
};

template <typename T>
MetaMlpProblem<T>::MetaMlpProblem(std::shared_ptr<Executor> exec, MetaMlpSpec spec, index_t tasks)
    : exec_(std::move(exec)), spec_(std::move(spec)), tasks_(tasks) {
  check_spec();
  BILEVEL_EXPECTS(spec_.support >= 1 && spec_.query >= 1,
                  "meta-learning: support and query sets need >= 1 point each, got "
                      << spec_.support << " and " << spec_.query);
  BILEVEL_EXPECTS(spec_.amplitude_min <= spec_.amplitude_max && spec_.phase_min <= spec_.phase_max &&
                      spec_.input_min <= spec_.input_max,
                  "meta-learning: sinusoid ranges must have min <= max");
  state_ = std::make_unique<State>(exec_, spec_.mlp);
  allocate();
  const index_t in = spec_.mlp.widths.front(), out = spec_.mlp.widths.back();
  State& s = *state_;
  if (in == 1 && out == 1 && spec_.mlp.loss == OutputLoss::squared) {
    sample_tasks(0);  // defined data from the start
    s.each_iteration = true;
  } else {
    exec_->template ops<T>().fill(s.support_x.view(), T(0));
    exec_->template ops<T>().fill(s.support_y.view(), T(0));
    exec_->template ops<T>().fill(s.query_x.view(), T(0));
    exec_->template ops<T>().fill(s.query_y.view(), T(0));
    s.each_iteration = false;  // only set_tasks can give this network data
  }
}

template <typename T>
MetaMlpProblem<T>::MetaMlpProblem(std::shared_ptr<Executor> exec, MetaMlpSpec spec,
                                  index_t tasks, const Dataset& data, EpisodeSpec episodes)
    : exec_(std::move(exec)), spec_(std::move(spec)), tasks_(tasks) {
  check_spec();
  data.validate();
  const EpisodeSpec& e = episodes;
  BILEVEL_EXPECTS(e.ways >= 2 && e.ways <= 64 && e.shots >= 1 && e.queries >= 1 &&
                      e.shots + e.queries <= 128,
                  "episodes: need 2 <= ways <= 64, shots >= 1, queries >= 1 and shots + queries "
                  "<= 128, got "
                      << e.ways << ", " << e.shots << ", " << e.queries);
  BILEVEL_EXPECTS(static_cast<index_t>(e.classes.size()) >= e.ways && e.classes.size() <= 64,
                  "episodes: " << e.ways << "-way tasks need at least " << e.ways
                               << " classes in the split (at most 64), it has "
                               << e.classes.size());
  BILEVEL_EXPECTS(spec_.mlp.widths.front() == data.features && spec_.mlp.widths.back() == e.ways &&
                      spec_.mlp.loss == OutputLoss::cross_entropy,
                  "episodes: the network needs " << data.features << " inputs, " << e.ways
                                                 << " outputs and the cross-entropy loss");
  spec_.support = e.ways * e.shots;
  spec_.query = e.ways * e.queries;
  state_ = std::make_unique<State>(exec_, spec_.mlp);
  allocate();
  State& s = *state_;
  s.episodes = true;
  s.episode = e;
  // the split's samples grouped by class
  std::vector<std::int32_t> start, count, members;
  for (std::size_t c = 0; c < e.classes.size(); ++c) {
    const int label = e.classes[c];
    BILEVEL_EXPECTS(label >= 0 && label < data.classes,
                    "episodes: class " << label << " is not a label of " << data.source);
    for (std::size_t k = 0; k < c; ++k)
      BILEVEL_EXPECTS(e.classes[k] != label, "episodes: class " << label << " is listed twice");
    start.push_back(static_cast<std::int32_t>(members.size()));
    for (index_t i = 0; i < data.samples; ++i)
      if (data.labels[static_cast<std::size_t>(i)] == label)
        members.push_back(static_cast<std::int32_t>(i));
    count.push_back(static_cast<std::int32_t>(members.size()) - start.back());
    BILEVEL_EXPECTS(count.back() >= 1,
                    "episodes: class " << label << " has no sample in " << data.source);
  }
  const index_t k = static_cast<index_t>(e.classes.size());
  s.class_start = Array<std::int32_t>(exec_, k, 1, start);
  s.class_count = Array<std::int32_t>(exec_, k, 1, count);
  s.members = Array<std::int32_t>(exec_, static_cast<index_t>(members.size()), 1, members);
  s.features = Array<float>(exec_, data.features, data.samples, data.x);
  s.support_index = Array<std::int32_t>(exec_, spec_.support, tasks_);
  s.query_index = Array<std::int32_t>(exec_, spec_.query, tasks_);
  draw(0, nullptr);
  s.each_iteration = true;
}

template <typename T>
void MetaMlpProblem<T>::check_spec() const {
  BILEVEL_EXPECTS(exec_ != nullptr, "MetaMlpProblem needs an executor");
  spec_.mlp.validate();
  BILEVEL_EXPECTS(tasks_ >= 1, "meta-learning: the meta-batch must hold >= 1 task, got " << tasks_);
  BILEVEL_EXPECTS(std::isfinite(spec_.proximal) && spec_.proximal >= 0,
                  "meta-learning: the proximal weight lambda must be >= 0, got " << spec_.proximal);
  BILEVEL_EXPECTS(std::isfinite(spec_.damping) && spec_.damping >= 0 &&
                      (spec_.damping == 0 || spec_.proximal > 0),
                  "meta-learning: damping must be >= 0 and needs the proximal (iMAML) form, got "
                      << spec_.damping);
  BILEVEL_EXPECTS(!(spec_.adapt_head_only && spec_.proximal > 0),
                  "meta-learning: the proximal (iMAML) form adapts all parameters, not the head only");
}

template <typename T>
const T* MetaMlpProblem<T>::forward_on(bool query, ConstMatrixView<T> phi) {
  State& s = *state_;
  s.mlp.forward(phi, query ? s.query_x.data() : s.support_x.data(),
                query ? spec_.query : spec_.support);
  return query ? s.query_y.data() : s.support_y.data();
}

template <typename T>
void MetaMlpProblem<T>::allocate() {
  const index_t in = spec_.mlp.widths.front(), out = spec_.mlp.widths.back();
  State& s = *state_;
  s.support_x = Array<T>(exec_, in * spec_.support, tasks_);
  s.support_y = Array<T>(exec_, out * spec_.support, tasks_);
  s.query_x = Array<T>(exec_, in * spec_.query, tasks_);
  s.query_y = Array<T>(exec_, out * spec_.query, tasks_);
  s.phi = Array<T>(exec_, spec_.mlp.parameters(), tasks_);
  s.full = Array<T>(exec_, spec_.mlp.parameters(), tasks_);
  s.direction = Array<T>(exec_, spec_.mlp.parameters(), tasks_);
  s.scalar = Array<T>(exec_, tasks_, 1);
  exec_->template ops<T>().fill(s.direction.view(), T(0));
  s.mlp.reserve(tasks_, std::max(spec_.support, spec_.query));
}

template <typename T>
MetaMlpProblem<T>::~MetaMlpProblem() = default;

template <typename T>
std::string MetaMlpProblem<T>::name() const {
  return std::string("meta-learning mlp (") + (spec_.adapt_head_only ? "head" : "all") +
         " adapted" + (spec_.proximal > 0 ? ", proximal" : "") + ")";
}

template <typename T>
index_t MetaMlpProblem<T>::dim_x() const {
  return spec_.mlp.parameters();
}

template <typename T>
bool MetaMlpProblem<T>::draws_each_iteration() const {
  return state_->each_iteration;
}

template <typename T>
index_t MetaMlpProblem<T>::dim_y() const {
  return spec_.adapt_head_only ? spec_.mlp.head_size() : spec_.mlp.parameters();
}

namespace {
template <typename T>
kernels::SinusoidDraw<T> sinusoid_draw(const MetaMlpSpec& s, index_t tasks) {
  kernels::SinusoidDraw<T> d;
  d.seed = s.seed;
  d.stream = static_cast<std::uint32_t>(s.split);
  d.tasks = tasks;
  d.support = s.support;
  d.query = s.query;
  d.amplitude_min = s.amplitude_min, d.amplitude_max = s.amplitude_max;
  d.phase_min = s.phase_min, d.phase_max = s.phase_max;
  d.input_min = s.input_min, d.input_max = s.input_max;
  return d;
}
}  // namespace

template <typename T>
void MetaMlpProblem<T>::draw(std::uint32_t step, const std::uint32_t* counter) {
  State& s = *state_;
  if (s.episodes) {
    // episode indices and one-hot targets, then the inputs gathered from the data set
    kernels::EpisodeDraw<T> d;
    d.seed = spec_.seed;
    d.stream = static_cast<std::uint32_t>(spec_.split);
    d.step = step;
    d.step_on_device = counter;
    d.tasks = tasks_;
    d.ways = s.episode.ways, d.shots = s.episode.shots, d.queries = s.episode.queries;
    d.split_classes = static_cast<int>(s.episode.classes.size());
    d.class_start = s.class_start.data(), d.class_count = s.class_count.data();
    d.members = s.members.data();
    d.support_index = s.support_index.data(), d.query_index = s.query_index.data();
    d.support_y = s.support_y.data(), d.query_y = s.query_y.data();
    s.kernels->sample_episodes(d);
    const index_t in = spec_.mlp.widths.front();
    const T scale = static_cast<T>(s.episode.scale);
    s.kernels->gather_columns(in, spec_.support * tasks_, s.features.data(),
                              s.support_index.data(), scale, s.support_x.data());
    s.kernels->gather_columns(in, spec_.query * tasks_, s.features.data(), s.query_index.data(),
                              scale, s.query_x.data());
    return;
  }
  BILEVEL_EXPECTS(spec_.mlp.widths.front() == 1 && spec_.mlp.widths.back() == 1 &&
                      spec_.mlp.loss == OutputLoss::squared,
                  "meta-learning: sinusoid tasks need a network with 1 input, 1 output and the "
                  "squared loss, this one has "
                      << spec_.mlp.widths.front() << " and " << spec_.mlp.widths.back());
  kernels::SinusoidDraw<T> d = sinusoid_draw<T>(spec_, tasks_);
  d.step = step;
  d.step_on_device = counter;
  d.support_x = s.support_x.data(), d.support_y = s.support_y.data();
  d.query_x = s.query_x.data(), d.query_y = s.query_y.data();
  s.kernels->sample_sinusoid(d);
}

template <typename T>
void MetaMlpProblem<T>::sample_tasks(std::uint32_t step) {
  draw(step, nullptr);
  state_->each_iteration = false;
}

template <typename T>
void MetaMlpProblem<T>::sample_each_iteration() {
  draw(0, nullptr);  // checks that this network can be given drawn tasks
  state_->each_iteration = true;
}

template <typename T>
void MetaMlpProblem<T>::set_tasks(const std::vector<MetaTask>& tasks) {
  BILEVEL_EXPECTS(static_cast<index_t>(tasks.size()) == tasks_,
                  "meta-learning: " << tasks.size() << " tasks given for a meta-batch of " << tasks_);
  const index_t in = spec_.mlp.widths.front(), out = spec_.mlp.widths.back();
  const index_t k = spec_.support, q = spec_.query;
  std::vector<T> sx, sy, qx, qy;
  for (std::size_t b = 0; b < tasks.size(); ++b) {
    const MetaTask& t = tasks[b];
    const auto take = [&](const std::vector<double>& from, index_t expected, const char* what,
                          std::vector<T>& to) {
      BILEVEL_EXPECTS(static_cast<index_t>(from.size()) == expected,
                      "meta-learning: task " << b << "'s " << what << " has " << from.size()
                                             << " values, expected " << expected);
      for (double v : from) {
        BILEVEL_EXPECTS(std::isfinite(v), "meta-learning: task " << b << "'s " << what
                                                                 << " holds a non-finite value");
        to.push_back(static_cast<T>(v));
      }
    };
    take(t.support_x, in * k, "support inputs", sx);
    take(t.support_y, out * k, "support targets", sy);
    take(t.query_x, in * q, "query inputs", qx);
    take(t.query_y, out * q, "query targets", qy);
  }
  State& s = *state_;
  s.support_x.upload(sx), s.support_y.upload(sy), s.query_x.upload(qx), s.query_y.upload(qy);
  s.each_iteration = false;
}

template <typename T>
std::vector<MetaTask> MetaMlpProblem<T>::current_tasks() const {
  const State& s = *state_;
  const std::vector<T> sx = s.support_x.to_host(), sy = s.support_y.to_host(),
                       qx = s.query_x.to_host(), qy = s.query_y.to_host();
  const index_t in = spec_.mlp.widths.front(), out = spec_.mlp.widths.back();
  const index_t k = spec_.support, q = spec_.query;
  std::vector<MetaTask> tasks(static_cast<std::size_t>(tasks_));
  for (index_t b = 0; b < tasks_; ++b) {
    MetaTask& t = tasks[static_cast<std::size_t>(b)];
    t.support_x.assign(sx.begin() + b * in * k, sx.begin() + (b + 1) * in * k);
    t.support_y.assign(sy.begin() + b * out * k, sy.begin() + (b + 1) * out * k);
    t.query_x.assign(qx.begin() + b * in * q, qx.begin() + (b + 1) * in * q);
    t.query_y.assign(qy.begin() + b * out * q, qy.begin() + (b + 1) * out * q);
  }
  return tasks;
}

template <typename T>
void MetaMlpProblem<T>::begin_iteration(const std::uint32_t* counter, ConstMatrixView<T> x,
                                        MatrixView<T> y) {
  State& s = *state_;
  if (s.each_iteration) {
    BILEVEL_EXPECTS(counter != nullptr,
                    "meta-learning: tasks drawn at every iteration need the iteration counter");
    // new tasks: those of iteration k = *counter
    draw(0, counter);
  }
  // adaptation starts at the meta-parameters: y = 0 (offset), y = x (proximal form)
  if (proximal())
    exec_->template ops<T>().copy(x, y);
  else
    exec_->template ops<T>().fill(y, T(0));
}

template <typename T>
void MetaMlpProblem<T>::reserve(index_t instances, index_t max_batch) {
  (void)max_batch;
  BILEVEL_EXPECTS(instances == tasks_, "meta-learning: " << instances << " instances for a meta-batch of "
                                                         << tasks_ << " tasks (one instance per task)");
}

template <typename T>
std::vector<std::string> MetaMlpProblem<T>::evaluation_metric_names() const {
  if (classification()) return {"query_loss_before_adaptation", "query_accuracy_after_adaptation"};
  return {"query_loss_before_adaptation"};
}

template <typename T>
void MetaMlpProblem<T>::evaluation_metrics(ConstMatrixView<T> x, ConstMatrixView<T> y, T* out) {
  check("evaluation_metrics", x, y);
  loss_values(true, x, out);
  if (classification()) query_accuracy(x, y, out + tasks_);
}

template <typename T>
void MetaMlpProblem<T>::query_accuracy(ConstMatrixView<T> x, ConstMatrixView<T> y, T* out) {
  check("query_accuracy", x, y);
  State& s = *state_;
  const ConstMatrixView<T> phi = adapted(x, y);
  s.mlp.forward(phi, s.query_x.data(), spec_.query);
  s.mlp.accuracy(s.query_y.data(), out);
}

template <typename T>
void MetaMlpProblem<T>::check(const char* oracle, ConstMatrixView<T> x, ConstMatrixView<T> y) const {
  BILEVEL_EXPECTS(x.rows == dim_x() && x.cols == tasks_ && y.rows == dim_y() && y.cols == tasks_,
                  "meta-learning " << oracle << ": x is " << x.rows << " x " << x.cols << " and y "
                                   << y.rows << " x " << y.cols << ", expected " << dim_x()
                                   << " x " << tasks_ << " and " << dim_y() << " x " << tasks_);
}

template <typename T>
ConstMatrixView<T> MetaMlpProblem<T>::adapted(ConstMatrixView<T> x, ConstMatrixView<T> y) {
  if (proximal()) return y;  // phi = y
  Ops<T>& ops = exec_->template ops<T>();
  MatrixView<T> phi = state_->phi.view();
  // phi = x + E y
  ops.copy(x, phi);
  const index_t offset = spec_.adapt_head_only ? spec_.mlp.head_offset() : 0;
  ops.axpby(T(1), y, T(1), MatrixView<T>(phi.data + offset, y.rows, y.cols, phi.ld));
  return phi;
}

template <typename T>
void MetaMlpProblem<T>::grad_y_g(const Batch& batch, ConstMatrixView<T> x, ConstMatrixView<T> y,
                                 MatrixView<T> out) {
  (void)batch;
  check("grad_y_g", x, y);
  State& s = *state_;
  Ops<T>& ops = exec_->template ops<T>();
  const ConstMatrixView<T> phi = adapted(x, y);
  s.mlp.forward(phi, s.support_x.data(), spec_.support);
  if (spec_.adapt_head_only) {
    // E' grad L_support: back-propagation stops at the head
    const index_t head = spec_.mlp.layers();
    s.mlp.gradient(phi, s.support_y.data(), s.full.view(), head);
    ops.copy(ConstMatrixView<T>(s.full.data() + spec_.mlp.head_offset(), dim_y(), tasks_,
                                s.full.rows()),
             out);
  } else {
    // grad L_support(phi)
    s.mlp.gradient(phi, s.support_y.data(), out);
  }
  if (proximal()) {
    // + lambda (y - x)
    ops.axpby(static_cast<T>(spec_.proximal), y, T(1), out);
    ops.axpby(static_cast<T>(-spec_.proximal), x, T(1), out);
  }
}

template <typename T>
void MetaMlpProblem<T>::grad_f(const Batch& batch, ConstMatrixView<T> x, ConstMatrixView<T> y,
                               MatrixView<T> fx, MatrixView<T> fy) {
  (void)batch;
  check("grad_f", x, y);
  State& s = *state_;
  Ops<T>& ops = exec_->template ops<T>();
  const ConstMatrixView<T> phi = adapted(x, y);
  s.mlp.forward(phi, s.query_x.data(), spec_.query);
  if (proximal()) {
    // fx = 0; fy = grad L_query(y)
    if (!fx.empty()) ops.fill(fx, T(0));
    if (!fy.empty()) s.mlp.gradient(phi, s.query_y.data(), fy);
    return;
  }
  // fx = grad L_query(phi); fy = E' fx
  const MatrixView<T> all = fx.empty() ? s.full.view() : fx;
  s.mlp.gradient(phi, s.query_y.data(), all);
  if (!fy.empty()) {
    const index_t offset = spec_.adapt_head_only ? spec_.mlp.head_offset() : 0;
    ops.copy(ConstMatrixView<T>(all.data + offset, dim_y(), tasks_, all.ld), fy);
  }
}

template <typename T>
void MetaMlpProblem<T>::hvp_jvp(const Batch& batch, ConstMatrixView<T> x, ConstMatrixView<T> y,
                                ConstMatrixView<T> v, MatrixView<T> hv, MatrixView<T> jv) {
  (void)batch;
  check("hvp_jvp", x, y);
  BILEVEL_EXPECTS(v.rows == dim_y() && v.cols == tasks_,
                  "meta-learning hvp_jvp: v is " << v.rows << " x " << v.cols);
  if (hv.empty() && jv.empty()) return;
  State& s = *state_;
  Ops<T>& ops = exec_->template ops<T>();
  const ConstMatrixView<T> phi = adapted(x, y);
  s.mlp.forward(phi, s.support_x.data(), spec_.support);
  if (proximal()) {
    // hv = H_L v + (lambda + delta) v; jv = -lambda v
    if (!hv.empty()) {
      s.mlp.hvp(phi, s.support_y.data(), v, hv);
      ops.axpby(static_cast<T>(spec_.proximal + spec_.damping), v, T(1), hv);
    }
    if (!jv.empty()) ops.axpby(static_cast<T>(-spec_.proximal), v, T(0), jv);
    return;
  }
  const index_t offset = spec_.adapt_head_only ? spec_.mlp.head_offset() : 0;
  ConstMatrixView<T> direction = v;
  index_t first_layer = 1;
  if (spec_.adapt_head_only) {
    // E v: v in the head rows, zeros in the body rows
    ops.copy(v, MatrixView<T>(s.direction.data() + offset, dim_y(), tasks_, s.direction.rows()));
    direction = s.direction.view();
    first_layer = spec_.mlp.layers();
  }
  // jv = H_L E v (all parameters); hv = E' H_L E v
  const MatrixView<T> all = !jv.empty() ? jv : (spec_.adapt_head_only ? s.full.view() : hv);
  s.mlp.hvp(phi, s.support_y.data(), direction, all, first_layer);
  if (!hv.empty() && all.data != hv.data)
    ops.copy(ConstMatrixView<T>(all.data + offset, dim_y(), tasks_, all.ld), hv);
}

template <typename T>
void MetaMlpProblem<T>::values(const Batch& lower, const Batch& upper, ConstMatrixView<T> x,
                               ConstMatrixView<T> y, T* f_out, T* g_out) {
  (void)lower, (void)upper;
  check("values", x, y);
  State& s = *state_;
  Ops<T>& ops = exec_->template ops<T>();
  const ConstMatrixView<T> phi = adapted(x, y);
  if (f_out != nullptr) {
    // f_b = L_query(phi_b)
    s.mlp.forward(phi, s.query_x.data(), spec_.query);
    s.mlp.loss(s.query_y.data(), f_out);
  }
  if (g_out != nullptr) {
    // g_b = L_support(phi_b) (+ (lambda / 2) ||y_b - x_b||^2)
    s.mlp.forward(phi, s.support_x.data(), spec_.support);
    s.mlp.loss(s.support_y.data(), g_out);
    if (proximal()) {
      MatrixView<T> d = s.full.view();
      ops.copy(y, d);
      ops.axpby(T(-1), x, T(1), d);
      ops.batch_dot(d, d, s.scalar.data());
      ops.axpby(static_cast<T>(spec_.proximal / 2), ConstMatrixView<T>(s.scalar.data(), 1, tasks_),
                T(1), MatrixView<T>(g_out, 1, tasks_));
    }
  }
}

template <typename T>
void MetaMlpProblem<T>::loss_gradient(bool query, ConstMatrixView<T> phi, MatrixView<T> out) {
  const T* targets = forward_on(query, phi);
  state_->mlp.gradient(phi, targets, out);
}

template <typename T>
void MetaMlpProblem<T>::loss_hvp(bool query, ConstMatrixView<T> phi, ConstMatrixView<T> d,
                                 MatrixView<T> out) {
  const T* targets = forward_on(query, phi);
  state_->mlp.hvp(phi, targets, d, out);
}

template <typename T>
void MetaMlpProblem<T>::loss_values(bool query, ConstMatrixView<T> phi, T* out) {
  const T* targets = forward_on(query, phi);
  state_->mlp.loss(targets, out);
}

template <typename T>
MetaTestResult meta_test(MetaMlpProblem<T>& problem, const std::vector<T>& x, index_t steps,
                         double alpha) {
  const index_t dx = problem.dim_x(), dy = problem.dim_y(), nb = problem.tasks();
  BILEVEL_EXPECTS(static_cast<index_t>(x.size()) == dx,
                  "meta_test: x must hold the " << dx << " meta-parameters, has " << x.size());
  BILEVEL_EXPECTS(steps >= 0 && std::isfinite(alpha) && alpha > 0,
                  "meta_test: steps must be >= 0 and alpha > 0");
  auto exec = problem.executor();
  Ops<T>& ops = exec->template ops<T>();
  std::vector<T> columns;
  columns.reserve(static_cast<std::size_t>(dx * nb));
  for (index_t b = 0; b < nb; ++b) columns.insert(columns.end(), x.begin(), x.end());
  Array<T> xs(exec, dx, nb, columns), y(exec, dy, nb), gy(exec, dy, nb), before(exec, nb, 1),
      after(exec, nb, 1);
  // y at the start of adaptation (0, or x in the proximal form); the tasks stay
  BILEVEL_EXPECTS(!problem.draws_each_iteration(),
                  "meta_test: draw the test tasks first (sample_tasks or set_tasks)");
  problem.begin_iteration(nullptr, xs.view(), y.view());
  const Batch full{};
  // loss at x
  problem.values(full, full, xs.view(), y.view(), before.data(), nullptr);
  for (index_t t = 0; t < steps; ++t) {
    // y <- y - alpha grad_y g(x, y)
    problem.grad_y_g(full, xs.view(), y.view(), gy.view());
    ops.axpby(static_cast<T>(-alpha), gy.view(), T(1), y.view());
  }
  problem.values(full, full, xs.view(), y.view(), after.data(), nullptr);
  Array<T> accuracy;
  if (problem.classification()) {
    accuracy = Array<T>(exec, nb, 1);
    problem.query_accuracy(xs.view(), y.view(), accuracy.data());
  }
  const std::vector<T> b0 = before.to_host(), b1 = after.to_host();
  MetaTestResult r;
  r.loss_before.assign(b0.begin(), b0.end());
  r.loss_after.assign(b1.begin(), b1.end());
  r.mean_before = mean_and_interval(r.loss_before).first;
  std::tie(r.mean_after, r.interval_after) = mean_and_interval(r.loss_after);
  if (accuracy.size() > 0) {
    const std::vector<T> a = accuracy.to_host();
    r.accuracy_after.assign(a.begin(), a.end());
    std::tie(r.mean_accuracy, r.interval_accuracy) = mean_and_interval(r.accuracy_after);
  }
  return r;
}

std::pair<double, double> mean_and_interval(const std::vector<double>& v) {
  if (v.empty()) return {std::nan(""), std::nan("")};
  const double n = static_cast<double>(v.size());
  const double mean = std::accumulate(v.begin(), v.end(), 0.0) / n;
  double ss = 0;
  for (double x : v) ss += (x - mean) * (x - mean);
  return {mean, n > 1 ? 1.96 * std::sqrt(ss / (n - 1)) / std::sqrt(n) : 0.0};
}

std::vector<double> nearest_centroid_accuracy(const std::vector<MetaTask>& tasks, index_t inputs,
                                              index_t ways) {
  std::vector<double> out;
  for (const MetaTask& t : tasks) {
    const auto label_of = [&](const std::vector<double>& y, std::size_t i) {
      return static_cast<index_t>(std::max_element(y.begin() + i * ways, y.begin() + (i + 1) * ways) -
                                  (y.begin() + i * ways));
    };
    // class means of the support set
    std::vector<double> centroid(static_cast<std::size_t>(inputs * ways), 0.0);
    std::vector<double> count(static_cast<std::size_t>(ways), 0.0);
    const std::size_t support = t.support_y.size() / static_cast<std::size_t>(ways);
    for (std::size_t i = 0; i < support; ++i) {
      const index_t c = label_of(t.support_y, i);
      for (index_t f = 0; f < inputs; ++f)
        centroid[f + c * inputs] += t.support_x[i * inputs + f];
      count[c] += 1;
    }
    for (index_t c = 0; c < ways; ++c)
      for (index_t f = 0; f < inputs; ++f) centroid[f + c * inputs] /= std::max(count[c], 1.0);
    // each query sample: the label of the nearest mean
    const std::size_t query = t.query_y.size() / static_cast<std::size_t>(ways);
    double correct = 0;
    for (std::size_t i = 0; i < query; ++i) {
      index_t best = 0;
      double best_d = 1e300;
      for (index_t c = 0; c < ways; ++c) {
        double d = 0;
        for (index_t f = 0; f < inputs; ++f) {
          const double diff = t.query_x[i * inputs + f] - centroid[f + c * inputs];
          d += diff * diff;
        }
        if (d < best_d) best_d = d, best = c;
      }
      correct += best == label_of(t.query_y, i) ? 1 : 0;
    }
    out.push_back(correct / static_cast<double>(query));
  }
  return out;
}

template class MetaMlpProblem<float>;
template class MetaMlpProblem<double>;
template MetaTestResult meta_test(MetaMlpProblem<float>&, const std::vector<float>&, index_t,
                                  double);
template MetaTestResult meta_test(MetaMlpProblem<double>&, const std::vector<double>&, index_t,
                                  double);

}  // namespace bilevel
