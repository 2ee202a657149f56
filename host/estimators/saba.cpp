// SABA (Dagreou, Ablin, Vaiter, Moreau, NeurIPS 2022, arXiv 2201.13409, Algorithm 1): SOBA with
// SAGA variance reduction on each of its five directions, as benchopt's solvers/saba.py runs it
// (benchopt/benchmark_bilevel at 3ad65dc): the samples are split into fixed batches of the
// minibatch size (the last one shorter), one lower and one upper batch are picked per
// iteration, and every term is replaced by
//   d = q - M[j] + mean,  then  mean += w_j (q - M[j]),  M[j] = q
// with M[j] the term stored for batch j (zero at the start: benchopt's "zero" memory), w_j the
// batch's share of the samples, so that mean is the full-batch term of the stored iterates.
// With those directions, at (x_k, y_k, v_k):
//   y <- y - rho D[grad_y g];  v <- v - rho (D[H v] - D[grad_y f]);  h = D[grad_x f] - D[J v]
// (bilevel's v solves H v = fy: benchopt's is its negative). Constant steps, as in the paper.
// Batches are picked uniformly with replacement by the library's Philox draw (keyed by the seed,
// the lower or upper stream and the iteration, as the minibatch sampler's), or with
// loop.epoch_sampling walked in a new random order each epoch, as benchopt walks them.
#include <bilevel/estimators.hpp>

#include "../../kernels/common/philox.hpp"

#include <algorithm>
#include <cstdint>

namespace bilevel {
namespace {

/// The fixed batches of one level: batch j is samples [j size, min((j + 1) size, n)).
struct Partition {
  index_t samples = 0, size = 0, batches = 1;
  void set(index_t n, index_t batch) {
    samples = n;
    size = n <= 0 || batch <= 0 || batch >= n ? n : batch;  // 0 or >= n: one batch, all of them
    batches = n <= 0 ? 1 : (n + size - 1) / size;
  }
  index_t count(index_t j) const { return std::min(size, samples - j * size); }
  double weight(index_t j) const { return samples <= 0 ? 1.0 : double(count(j)) / double(samples); }
};

/// One SAGA-reduced term: the stored term per batch (rows x batches stacked in each instance's
/// column: column b is instance b, as checkpoints expect), their weighted mean, the fresh
/// term and its direction.
template <typename T>
struct Table {
  Array<T> stored, mean, fresh, direction;
  index_t rows = 0, batches = 1;
  void prepare(const std::shared_ptr<Executor>& exec, index_t r, index_t b, index_t instances) {
    rows = r;
    batches = b;
    stored = Array<T>(exec, r * b, instances);
    mean = Array<T>(exec, r, instances);
    fresh = Array<T>(exec, r, instances);
    direction = Array<T>(exec, r, instances);
    Ops<T>& ops = exec->template ops<T>();
    ops.fill(stored.view(), T(0));
    ops.fill(mean.view(), T(0));
  }
  MatrixView<T> slot(index_t j) {
    return MatrixView<T>(stored.data() + j * rows, rows, stored.cols(), rows * batches);
  }
  /// direction = fresh - M[j] + mean;  mean += w (fresh - M[j]);  M[j] = fresh
  void reduce(Ops<T>& ops, index_t j, double w) {
    const MatrixView<T> m = slot(j);
    // direction = fresh - M[j]
    ops.copy(fresh.view(), direction.view());
    ops.axpby(T(-1), m, T(1), direction.view());
    // mean += w (fresh - M[j])
    ops.axpby(static_cast<T>(w), direction.view(), T(1), mean.view());
    // direction = (fresh - M[j]) + old mean = new mean + (1 - w) (fresh - M[j])
    ops.axpby(T(1), mean.view(), static_cast<T>(1.0 - w), direction.view());
    // M[j] = fresh
    ops.copy(fresh.view(), m);
  }
};

template <typename T>
class SabaEstimator final : public HypergradientEstimator<T> {
 public:
  explicit SabaEstimator(SabaOptions o) : options_(std::move(o)) {
    for (double r : options_.rho) BILEVEL_EXPECTS(r > 0.0, "saba: the step rho must be > 0, got " << r);
    BILEVEL_EXPECTS(options_.lower_batch >= 0 && options_.upper_batch >= 0,
                    "saba: batch sizes must be >= 0 (0: the whole data as one batch)");
  }
  std::string name() const override { return "saba"; }
  bool runs_lower_level() const override { return true; }
  // the batch ids are picked on the host from the iteration: each iteration's work differs
  bool capturable() const override { return false; }

  void prepare(Problem<T>& problem, index_t instances) override {
    auto exec = problem.executor();
    rho_ = per_instance_array<T>(exec, options_.rho, instances, "saba rho");
    lower_.set(problem.lower_samples(), options_.lower_batch);
    upper_.set(problem.upper_samples(), options_.upper_batch);
    const auto iota = [&](index_t n) {
      std::vector<sample_index_t> all(static_cast<std::size_t>(std::max<index_t>(n, 0)));
      for (index_t i = 0; i < n; ++i) all[static_cast<std::size_t>(i)] = static_cast<sample_index_t>(i);
      return Array<sample_index_t>(exec, static_cast<index_t>(all.size()), 1, all);
    };
    lower_samples_ = iota(lower_.samples);
    upper_samples_ = iota(upper_.samples);
    const index_t dx = problem.dim_x(), dy = problem.dim_y();
    with_fx_ = problem.upper_depends_on_x();
    gy_.prepare(exec, dy, lower_.batches, instances);
    hv_.prepare(exec, dy, lower_.batches, instances);
    jv_.prepare(exec, dx, lower_.batches, instances);
    fy_.prepare(exec, dy, upper_.batches, instances);
    if (with_fx_) fx_.prepare(exec, dx, upper_.batches, instances);
    v_ = Array<T>(exec, dy, instances);
    exec->template ops<T>().fill(v_.view(), T(0));
  }

  void estimate(const EstimateContext<T>& ctx, ConstMatrixView<T> x, MatrixView<T> y,
                MatrixView<T> h) override {
    Problem<T>& p = ctx.problem;
    Ops<T>& ops = p.executor()->template ops<T>();
    const index_t i = pick(SampleStream::lower_step, ctx.iteration, lower_),
                  j = pick(SampleStream::upper, ctx.iteration, upper_);
    const Batch lower = batch(lower_, lower_samples_, i), upper = batch(upper_, upper_samples_, j);
    // at (x_k, y_k, v_k): fx, fy on upper batch j; gy, H v, J v on lower batch i
    p.single_point_oracles(lower, upper, x, y, v_.view(), gy_.fresh.view(), hv_.fresh.view(),
                           jv_.fresh.view(), with_fx_ ? fx_.fresh.view() : MatrixView<T>(),
                           fy_.fresh.view());
    // D[q] = q - M_q[batch] + mean_q, and the tables updated, for each of the five terms
    gy_.reduce(ops, i, lower_.weight(i));
    hv_.reduce(ops, i, lower_.weight(i));
    jv_.reduce(ops, i, lower_.weight(i));
    fy_.reduce(ops, j, upper_.weight(j));
    if (with_fx_) fx_.reduce(ops, j, upper_.weight(j));
    // y <- y - rho D[gy]
    ops.batch_axpy(T(-1), rho_.data(), gy_.direction.view(), y);
    // v <- v - rho (D[H v] - D[fy])
    ops.batch_axpy(T(-1), rho_.data(), hv_.direction.view(), v_.view());
    ops.batch_axpy(T(1), rho_.data(), fy_.direction.view(), v_.view());
    // h = D[fx] - D[J v]
    if (with_fx_)
      ops.copy(fx_.direction.view(), h);
    else
      ops.fill(h, T(0));
    ops.axpby(T(-1), jv_.direction.view(), T(1), h);
    // y <- Proj_Y(y)
    p.project_y(y);
  }

  ConstMatrixView<T> linear_system_solution() const override { return v_.view(); }

  /// v, and every table and mean: a resumed run continues bit for bit.
  std::vector<MatrixView<T>> carried_state() override {
    std::vector<MatrixView<T>> out{v_.view()};
    for (Table<T>* t : {&gy_, &hv_, &jv_, &fy_, &fx_})
      if (t->stored.size() > 0) {
        out.push_back(t->stored.view());
        out.push_back(t->mean.view());
      }
    return out;
  }

 private:
  /// The batch of iteration k for one level: Philox (seed, stream, k), uniform over its batches,
  /// or position k of the epoch walk over them (every batch once per epoch, reshuffled).
  index_t pick(SampleStream stream, index_t k, const Partition& part) const {
    if (part.batches <= 1) return 0;
    return kernels::common::draw_index(options_.seed, static_cast<std::uint32_t>(stream),
                                       static_cast<std::uint32_t>(k), 0, 0, 1, part.batches,
                                       options_.epochs);
  }
  static Batch batch(const Partition& part, Array<sample_index_t>& samples, index_t j) {
    Batch b;
    if (part.batches <= 1) return b;  // the whole data: a full batch
    b.indices = samples.data() + j * part.size;
    b.size = part.count(j);
    b.population = part.samples;
    return b;
  }

  SabaOptions options_;
  Partition lower_, upper_;
  bool with_fx_ = true;
  Array<T> rho_, v_;
  Array<sample_index_t> lower_samples_, upper_samples_;
  Table<T> gy_, hv_, jv_, fy_, fx_;
};

}  // namespace

template <typename T>
std::unique_ptr<HypergradientEstimator<T>> make_saba_estimator(SabaOptions options) {
  return std::make_unique<SabaEstimator<T>>(std::move(options));
}

template std::unique_ptr<HypergradientEstimator<float>> make_saba_estimator(SabaOptions);
template std::unique_ptr<HypergradientEstimator<double>> make_saba_estimator(SabaOptions);

}  // namespace bilevel
