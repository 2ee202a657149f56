// Hyperparameter optimisation of ridge regression with one L2 weight per feature, a data-driven
// problem of your own, checked against its closed form (docs/your-own-problem.md):
//
//   lower  g(x, y) = 1/(2s) ||A_S y - b_S||^2 + 1/2 sum_j exp(x_j) y_j^2   (training loss on the
//                                                                          batch S; y: weights)
//   upper  f(x, y) = 1/(2m) ||V y - c||^2                                  (validation loss)
//
// On the full data: H = A'A/n + diag(e^x), y*(x) = H^{-1} A'b/n, and
//   grad F(x) = -J' H^{-1} grad_y f = -e^x .* y* .* v   with   v = H^{-1} V'(V y* - c)/m,
// because J = grad2_xy g = diag(e^x .* y). main() computes these on the host with a Cholesky
// solve, then checks the library against them: check_oracles, hypergradient at y*(x), AID-CG
// against exact projected gradient descent on F, and SOBA on minibatches against the validation
// loss exact gradient descent reaches.
#include <bilevel/bilevel.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>
#include <vector>

namespace {

using bilevel::ConstMatrixView;
using bilevel::MatrixView;
using bilevel::index_t;

// The data: n training samples (A, b) and m validation samples (V, c), d features.
struct RidgeData {
  index_t n = 0, m = 0, d = 0;
  std::vector<double> a, b, v, c;  // column-major: a is n x d, v is m x d
};

// Targets from a sparse true weight vector plus noise: the features without signal should get
// large L2 weights.
RidgeData make_data(index_t n, index_t m, index_t d, unsigned seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal;
  std::vector<double> w(d);
  for (index_t j = 0; j < d; ++j) w[j] = j % 3 == 0 ? normal(rng) : 0.0;
  auto draw = [&](index_t rows, std::vector<double>& x, std::vector<double>& t) {
    x.resize(rows * d);
    t.assign(rows, 0.0);
    for (double& e : x) e = normal(rng);
    for (index_t i = 0; i < rows; ++i) {
      for (index_t j = 0; j < d; ++j) t[i] += x[i + j * rows] * w[j];
      t[i] += 0.5 * normal(rng);
    }
  };
  RidgeData data{n, m, d, {}, {}, {}, {}};
  draw(n, data.a, data.b);
  draw(m, data.v, data.c);
  return data;
}

template <typename T>
class RidgeProblem final : public bilevel::Problem<T> {
 public:
  RidgeProblem(std::shared_ptr<bilevel::Executor> exec, const RidgeData& data)
      : exec_(exec),
        a_(exec, data.n, data.d, data.a), b_(exec, data.n, 1, data.b),
        v_(exec, data.m, data.d, data.v), c_(exec, data.m, 1, data.c) {}

  std::string name() const override { return "ridge-hpo"; }
  std::shared_ptr<bilevel::Executor> executor() const override { return exec_; }
  index_t dim_x() const override { return a_.cols(); }
  index_t dim_y() const override { return a_.cols(); }
  index_t lower_samples() const override { return a_.rows(); }  // g: a mean over the n rows
  index_t upper_samples() const override { return 0; }          // f: always the whole set
  bool upper_depends_on_x() const override { return false; }    // f does not read x

  // The L2 weights e^x stay in [e^-4, e^2]: g's curvature, and with it the largest stable step
  // on y, then stays bounded (L_g <= max eig(A'A/n) + e^2) while x moves.
  static constexpr double x_min = -4.0, x_max = 2.0;
  void project_x(MatrixView<T> x) override { ops().clamp(x, T(x_min), T(x_max)); }

  // Workspaces for B instances and batches of up to max_batch rows, sized before a run.
  void reserve(index_t instances, index_t max_batch) override {
    const index_t rows = std::max({max_batch, a_.rows(), v_.rows()});
    if (resid_.rows() >= rows && resid_.cols() >= instances && rows_.rows() >= max_batch) return;
    rows_ = bilevel::Array<T>(exec_, std::max<index_t>(max_batch, 1), a_.cols());
    targets_ = bilevel::Array<T>(exec_, std::max<index_t>(max_batch, 1), 1);
    resid_ = bilevel::Array<T>(exec_, rows, instances);
    ones_ = bilevel::Array<T>(exec_, 1, instances, std::vector<T>(instances, T(1)));
    ex_ = bilevel::Array<T>(exec_, a_.cols(), instances);
    tmp_ = bilevel::Array<T>(exec_, a_.cols(), instances);
    sums_ = bilevel::Array<T>(exec_, instances, 1);
  }

  // grad_y g = A_S'(A_S y - b_S)/s + e^x .* y
  void grad_y_g(const bilevel::Batch& batch, ConstMatrixView<T> x, ConstMatrixView<T> y,
                MatrixView<T> out) override {
    const auto [a, b] = training_rows(batch);
    const MatrixView<T> r = residual(a, b, y);
    ops().gemm(bilevel::Op::transpose, bilevel::Op::none, T(1) / T(a.rows), a, r, T(0), out);
    ops().exp(x, ex(x.cols));
    ops().hadamard(T(1), ex(x.cols), y, T(1), out);
  }
  // grad_x g = 1/2 e^x .* y .* y (for the first-order presets: F2BA, V-PBGD, BOME)
  void grad_x_g(const bilevel::Batch&, ConstMatrixView<T> x, ConstMatrixView<T> y,
                MatrixView<T> out) override {
    ops().exp(x, ex(x.cols));
    ops().hadamard(T(0.5), ex(x.cols), y, T(0), tmp(x.cols));
    ops().hadamard(T(1), tmp(x.cols), y, T(0), out);
  }
  // fx = 0 (asked for only when upper_depends_on_x(); may be empty); fy = V'(V y - c)/m
  void grad_f(const bilevel::Batch&, ConstMatrixView<T>, ConstMatrixView<T> y, MatrixView<T> fx,
              MatrixView<T> fy) override {
    if (!fx.empty()) ops().fill(fx, T(0));
    const MatrixView<T> r = residual(v_.cview(), c_.cview(), y);
    ops().gemm(bilevel::Op::transpose, bilevel::Op::none, T(1) / T(v_.rows()), v_.cview(), r, T(0), fy);
  }
  // H v = A_S'A_S v/s + e^x .* v;  J v = e^x .* y .* v  (either output may be empty)
  void hvp_jvp(const bilevel::Batch& batch, ConstMatrixView<T> x, ConstMatrixView<T> y,
               ConstMatrixView<T> v, MatrixView<T> hv, MatrixView<T> jv) override {
    ops().exp(x, ex(x.cols));
    if (!hv.empty()) {
      const auto [a, b] = training_rows(batch);
      const MatrixView<T> av(resid_.data(), a.rows, v.cols);
      ops().gemm(bilevel::Op::none, bilevel::Op::none, T(1), a, v, T(0), av);
      ops().gemm(bilevel::Op::transpose, bilevel::Op::none, T(1) / T(a.rows), a, av, T(0), hv);
      ops().hadamard(T(1), ex(x.cols), v, T(1), hv);
    }
    if (!jv.empty()) {
      ops().hadamard(T(1), ex(x.cols), y, T(0), tmp(x.cols));
      ops().hadamard(T(1), tmp(x.cols), v, T(0), jv);
    }
  }
  // g and f per instance: B = x.cols values each (the lower batch as given, f on all of V)
  void values(const bilevel::Batch& lower, const bilevel::Batch&, ConstMatrixView<T> x,
              ConstMatrixView<T> y, T* f_out, T* g_out) override {
    const index_t nb = x.cols;
    if (g_out) {
      const auto [a, b] = training_rows(lower);
      const MatrixView<T> r = residual(a, b, y);
      MatrixView<T> g(g_out, nb, 1);
      ops().batch_dot(r, r, g.data);  // ||A_S y - b_S||^2
      ops().exp(x, ex(nb));
      ops().hadamard(T(1), ex(nb), y, T(0), tmp(nb));
      ops().batch_dot(tmp(nb), y, sums_.data());  // sum_j e^x_j y_j^2
      ops().axpby(T(0.5), ConstMatrixView<T>(sums_.data(), nb, 1), T(0.5) / T(a.rows), g);
    }
    if (f_out) {
      const MatrixView<T> r = residual(v_.cview(), c_.cview(), y);
      MatrixView<T> f(f_out, nb, 1);
      ops().batch_dot(r, r, f.data);
      ops().axpby(T(0.5) / T(v_.rows()), f, T(0), f);
    }
  }

 private:
  bilevel::Ops<T>& ops() { return exec_->ops<T>(); }
  MatrixView<T> ex(index_t nb) { return {ex_.data(), ex_.rows(), nb}; }
  MatrixView<T> tmp(index_t nb) { return {tmp_.data(), tmp_.rows(), nb}; }

  // The batch's rows of A and b: the arrays themselves for a full batch, else gathered.
  std::pair<ConstMatrixView<T>, ConstMatrixView<T>> training_rows(const bilevel::Batch& batch) {
    if (batch.full()) return {a_.cview(), b_.cview()};
    const MatrixView<T> rows(rows_.data(), batch.size, a_.cols(), rows_.rows());
    const MatrixView<T> targets(targets_.data(), batch.size, 1, targets_.rows());
    ops().gather_rows(a_.cview(), batch.indices, rows);
    ops().gather_rows(b_.cview(), batch.indices, targets);
    return {rows, targets};
  }
  // r = a y - t 1' (one column per instance)
  MatrixView<T> residual(ConstMatrixView<T> a, ConstMatrixView<T> t, ConstMatrixView<T> y) {
    const MatrixView<T> r(resid_.data(), a.rows, y.cols);
    ops().gemm(bilevel::Op::none, bilevel::Op::none, T(1), a, y, T(0), r);
    ops().gemm(bilevel::Op::none, bilevel::Op::none, T(-1), t,
               ConstMatrixView<T>(ones_.data(), 1, y.cols), T(1), r);
    return r;
  }

  std::shared_ptr<bilevel::Executor> exec_;
  bilevel::Array<T> a_, b_, v_, c_;
  bilevel::Array<T> rows_, targets_, resid_, ones_, ex_, tmp_, sums_;
};

// ---- the closed form, on the host --------------------------------------------------------------

// Solves S z = r for a symmetric positive definite d x d matrix S (Cholesky).
std::vector<double> spd_solve(std::vector<double> s, std::vector<double> r, index_t d) {
  for (index_t j = 0; j < d; ++j) {
    for (index_t k = 0; k < j; ++k) s[j + j * d] -= s[j + k * d] * s[j + k * d];
    s[j + j * d] = std::sqrt(s[j + j * d]);
    for (index_t i = j + 1; i < d; ++i) {
      for (index_t k = 0; k < j; ++k) s[i + j * d] -= s[i + k * d] * s[j + k * d];
      s[i + j * d] /= s[j + j * d];
    }
  }
  for (index_t i = 0; i < d; ++i) {  // L z = r
    for (index_t k = 0; k < i; ++k) r[i] -= s[i + k * d] * r[k];
    r[i] /= s[i + i * d];
  }
  for (index_t i = d - 1; i >= 0; --i) {  // L' z = z
    for (index_t k = i + 1; k < d; ++k) r[i] -= s[k + i * d] * r[k];
    r[i] /= s[i + i * d];
  }
  return r;
}

// M'(M y - t)/rows for a column-major rows x d matrix M (y empty: -M't/rows).
std::vector<double> normal_residual(const std::vector<double>& mat, const std::vector<double>& t,
                                    const std::vector<double>& y, index_t rows, index_t d) {
  std::vector<double> r(t.size()), out(d, 0.0);
  for (index_t i = 0; i < rows; ++i) {
    r[i] = -t[i];
    for (index_t j = 0; j < d && !y.empty(); ++j) r[i] += mat[i + j * rows] * y[j];
  }
  for (index_t j = 0; j < d; ++j)
    for (index_t i = 0; i < rows; ++i) out[j] += mat[i + j * rows] * r[i] / double(rows);
  return out;
}

struct ClosedForm {
  std::vector<double> y_star, grad_F;
  double F = 0.0;
};

ClosedForm closed_form(const RidgeData& data, const std::vector<double>& x) {
  const index_t n = data.n, d = data.d;
  std::vector<double> h(d * d, 0.0);
  for (index_t j = 0; j < d; ++j)
    for (index_t k = 0; k < d; ++k)
      for (index_t i = 0; i < n; ++i) h[j + k * d] += data.a[i + j * n] * data.a[i + k * n] / n;
  for (index_t j = 0; j < d; ++j) h[j + j * d] += std::exp(x[j]);
  std::vector<double> rhs = normal_residual(data.a, data.b, {}, n, d);
  for (double& e : rhs) e = -e;  // A'b/n
  ClosedForm out;
  out.y_star = spd_solve(h, rhs, d);
  const std::vector<double> fy = normal_residual(data.v, data.c, out.y_star, data.m, d);
  const std::vector<double> v = spd_solve(h, fy, d);
  out.grad_F.resize(d);
  for (index_t j = 0; j < d; ++j) out.grad_F[j] = -std::exp(x[j]) * out.y_star[j] * v[j];
  for (index_t i = 0; i < data.m; ++i) {
    double r = -data.c[i];
    for (index_t j = 0; j < d; ++j) r += data.v[i + j * data.m] * out.y_star[j];
    out.F += 0.5 * r * r / data.m;
  }
  return out;
}

double max_abs_diff(const std::vector<double>& a, const std::vector<double>& b) {
  double worst = 0.0;
  for (std::size_t i = 0; i < a.size(); ++i) worst = std::max(worst, std::abs(a[i] - b[i]));
  return worst;
}

}  // namespace

int run() {
  auto exec = bilevel::make_executor(bilevel::Backend::automatic);
  std::printf("bilevel %s on %s (%s)\n", bilevel::version,
              bilevel::to_string(exec->backend()).c_str(), exec->device_name().c_str());
  const RidgeData data = make_data(400, 200, 12, 7);
  const index_t d = data.d;
  RidgeProblem<double> problem(exec, data);
  int status = 0;
  auto expect = [&status](bool ok, const char* what) {
    if (!ok) std::printf("FAILED: %s\n", what), status = 1;
  };

  // 1. every oracle against central differences of the values, two instances at once
  std::vector<double> x0(d, 0.0), xy(2 * d);
  for (index_t j = 0; j < 2 * d; ++j) xy[j] = 0.3 * std::sin(1.0 + j);
  bilevel::Array<double> xs(exec, d, 2, xy), ys(exec, d, 2, std::vector<double>(xy.rbegin(), xy.rend()));
  const bilevel::OracleCheckReport report = bilevel::check_oracles<double>(problem, xs.cview(), ys.cview());
  std::printf("%s", report.text().c_str());
  expect(report.passed(), "check_oracles");

  // 2. the library's hypergradient at y*(x) against the closed form
  const ClosedForm at_x0 = closed_form(data, x0);
  bilevel::Array<double> x(exec, d, 1, x0), y(exec, d, 1, at_x0.y_star), h(exec, d, 1);
  bilevel::hypergradient<double>(problem, x.cview(), y.cview(), h.view());
  const double hyper_error = max_abs_diff(h.to_host(), at_x0.grad_F);
  std::printf("hypergradient at y*(x0): max |h - grad F| = %.1e\n", hyper_error);
  expect(hyper_error < 1e-10, "hypergradient against the closed form");

  // 3. AID-CG on full batches against exact projected gradient descent on F, same step and
  //    iterations
  const double beta = 20.0;
  const index_t iterations = 150;
  auto gradient_descent = [&](index_t steps) {
    std::vector<double> xk = x0;
    for (index_t k = 0; k < steps; ++k) {
      const std::vector<double> g = closed_form(data, xk).grad_F;
      for (index_t j = 0; j < d; ++j)
        xk[j] = std::clamp(xk[j] - beta * g[j], RidgeProblem<double>::x_min,
                           RidgeProblem<double>::x_max);
    }
    return xk;
  };
  const std::vector<double> x_exact = gradient_descent(iterations);
  const ClosedForm at_exact = closed_form(data, x_exact);
  bilevel::AlgorithmOptions options = bilevel::default_options("aid-cg");
  options.loop.iterations = iterations;
  options.loop.inner_steps = 200;  // y within ~1e-7 of y*(x) at every x
  options.loop.inner_step = {0.1};  // 0.9 / L_g, L_g <= 1.4 + e^2 on this data and box
  options.loop.outer_step = {beta};
  options.cg.iterations = d;  // CG is exact after d iterations
  auto aid = bilevel::make_solver(problem, options)->run(x0, std::vector<double>(d, 0.0));
  const double aid_error = max_abs_diff(aid.x, x_exact);
  std::printf("AID-CG, %ld iterations: max |x - x_GD| = %.1e, validation loss %.6f (GD %.6f, "
              "x0 %.6f)\n", long(iterations), aid_error, aid.history.back().upper_value[0],
              at_exact.F, at_x0.F);
  expect(aid_error < 1e-6, "AID-CG against exact gradient descent");

  // 4. SOBA on minibatches of 32 rows, two instances with two step sizes: within 1% of the
  //    validation loss where exact gradient descent stops (2000 steps: converged)
  const double F_min = closed_form(data, gradient_descent(2000)).F;
  bilevel::AlgorithmOptions soba = bilevel::default_options("soba");
  soba.loop.iterations = 3000;
  soba.loop.lower_batch = 32;
  soba.loop.inner_step = {0.1};
  soba.fixed_point.nu = {0.1};
  soba.loop.outer_step = {5.0, 2.0};
  const auto sgd = bilevel::make_solver(problem, soba)
                       ->run(std::vector<double>(2 * d, 0.0), std::vector<double>(2 * d, 0.0));
  for (int b = 0; b < 2; ++b) {
    const std::vector<double> xb(sgd.x.begin() + b * d, sgd.x.begin() + (b + 1) * d);
    const double loss = closed_form(data, xb).F;
    std::printf("SOBA, batch 32, instance %d: F(x) = %.6f (min F %.6f)\n", b, loss, F_min);
    expect(loss < 1.01 * F_min, "SOBA's validation loss");
  }
  std::printf(status == 0 ? "ridge-hpo: OK\n" : "ridge-hpo: FAILED\n");
  return status;
}

int main() {
  try {
    return run();
  } catch (const std::exception& e) {  // a bilevel::Error names what went wrong
    std::fflush(stdout);
    std::fprintf(stderr, "ridge-hpo: %s\n", e.what());
    return 1;
  }
}
