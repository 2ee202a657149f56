// The Hessian-free presets on a problem that provides gradients only: the quadratic with a known
// answer behind a wrapper whose second-order oracles throw. BOME reproduces benchopt's iteration
// on it, F2SA approaches x*; a preset that needs H v refuses it with NotSupported.
#include "preset_quadratic.hpp"

#include <algorithm>

namespace bilevel::test {
namespace {

using presets::base_options;
using presets::problem;

/// A problem with g and f's gradients and values and nothing else: QuadraticProblem's first-order
/// oracles, no H v, no J v (hvp_jvp throws, as a user's gradient-only problem would).
template <typename T>
class GradientOnlyQuadratic final : public Problem<T> {
 public:
  GradientOnlyQuadratic(std::shared_ptr<Executor> exec, const QuadraticData& q) : q_(exec, q) {}
  std::string name() const override { return "gradient-only quadratic"; }
  std::shared_ptr<Executor> executor() const override { return q_.executor(); }
  index_t dim_x() const override { return q_.dim_x(); }
  index_t dim_y() const override { return q_.dim_y(); }
  index_t lower_samples() const override { return q_.lower_samples(); }
  index_t upper_samples() const override { return q_.upper_samples(); }
  void reserve(index_t instances, index_t max_batch) override { q_.reserve(instances, max_batch); }
  void grad_y_g(const Batch& b, ConstMatrixView<T> x, ConstMatrixView<T> y,
                MatrixView<T> out) override {
    q_.grad_y_g(b, x, y, out);
  }
  void grad_x_g(const Batch& b, ConstMatrixView<T> x, ConstMatrixView<T> y,
                MatrixView<T> out) override {
    q_.grad_x_g(b, x, y, out);
  }
  void grad_f(const Batch& b, ConstMatrixView<T> x, ConstMatrixView<T> y, MatrixView<T> fx,
              MatrixView<T> fy) override {
    q_.grad_f(b, x, y, fx, fy);
  }
  void hvp_jvp(const Batch&, ConstMatrixView<T>, ConstMatrixView<T>, ConstMatrixView<T>,
               MatrixView<T>, MatrixView<T>) override {
    throw NotSupported(name() + " has no second derivatives");
  }
  void values(const Batch& lower, const Batch& upper, ConstMatrixView<T> x, ConstMatrixView<T> y,
              T* f_out, T* g_out) override {
    q_.values(lower, upper, x, y, f_out, g_out);
  }

 private:
  QuadraticProblem<T> q_;
};

double run_gradient_only(const AlgorithmOptions& o, const QuadraticData& q) {
  GradientOnlyQuadratic<double> p(cpu(), q);
  const SolveResult<double> r =
      make_solver(p, o)->run(std::vector<double>(5, 0.0), std::vector<double>(10, 0.0));
  return distance(r.x, q.solution_x());
}

/// BOME's iteration transcribed from benchopt's solvers/bome.py on the quadratic's closed forms
/// (A = M'M / n + mu I, grad_y g = A y - B' x, grad_x g = -B y, grad_y f = A y, grad_x f =
/// d (x - xh)), in double on the host: the known answer of K iterations from (0, 0).
std::vector<double> bome_reference(const QuadraticData& q, index_t iterations, index_t steps,
                                   double alpha, double beta, double eta) {
  const index_t dx = q.dx, dy = q.dy;
  std::vector<double> a(static_cast<std::size_t>(dy * dy), 0.0);
  for (index_t r = 0; r < dy; ++r)
    for (index_t c = 0; c < dy; ++c) {
      double s = 0;
      for (index_t i = 0; i < q.n; ++i) s += q.m[i + r * q.n] * q.m[i + c * q.n];
      a[r + c * dy] = s / static_cast<double>(q.n) + (r == c ? q.mu : 0.0);
    }
  const auto ay = [&](const std::vector<double>& y) {  // A y
    std::vector<double> out(static_cast<std::size_t>(dy), 0.0);
    for (index_t c = 0; c < dy; ++c)
      for (index_t r = 0; r < dy; ++r) out[r] += a[r + c * dy] * y[c];
    return out;
  };
  const auto bty = [&](const std::vector<double>& x) {  // B' x
    std::vector<double> out(static_cast<std::size_t>(dy), 0.0);
    for (index_t c = 0; c < dy; ++c)
      for (index_t r = 0; r < dx; ++r) out[c] += q.b[r + c * dx] * x[r];
    return out;
  };
  const auto by = [&](const std::vector<double>& y) {  // B y
    std::vector<double> out(static_cast<std::size_t>(dx), 0.0);
    for (index_t c = 0; c < dy; ++c)
      for (index_t r = 0; r < dx; ++r) out[r] += q.b[r + c * dx] * y[c];
    return out;
  };
  std::vector<double> x(static_cast<std::size_t>(dx), 0.0), y(static_cast<std::size_t>(dy), 0.0);
  for (index_t k = 0; k < iterations; ++k) {
    std::vector<double> yt = y;
    for (index_t t = 0; t < steps; ++t) {
      const std::vector<double> g = ay(yt), bx = bty(x);
      for (index_t j = 0; j < dy; ++j) yt[j] -= alpha * (g[j] - bx[j]);
    }
    const std::vector<double> fy = ay(y), bx = bty(x), byv = by(y), byt = by(yt);
    std::vector<double> fx(static_cast<std::size_t>(dx)), qx(static_cast<std::size_t>(dx)),
        qy(static_cast<std::size_t>(dy));
    for (index_t i = 0; i < dx; ++i) {
      fx[i] = q.d * (x[i] - q.xh[i]);
      qx[i] = -byv[i] + byt[i];
    }
    for (index_t j = 0; j < dy; ++j) qy[j] = fy[j] - bx[j];
    double nq = 0, dot = 0;
    for (index_t i = 0; i < dx; ++i) nq += qx[i] * qx[i], dot += fx[i] * qx[i];
    for (index_t j = 0; j < dy; ++j) nq += qy[j] * qy[j], dot += fy[j] * qy[j];
    const double lambda = nq > 0 ? std::max(eta * nq - dot, 0.0) / nq : 0.0;
    for (index_t j = 0; j < dy; ++j) y[j] -= alpha * (fy[j] + lambda * qy[j]);
    for (index_t i = 0; i < dx; ++i) x[i] -= beta * (fx[i] + lambda * qx[i]);
  }
  return x;
}

/// BOME on gradients only reproduces its reference iteration (above) to rounding, after 300
/// iterations with T = 10. Its limit is not x* on this problem: f shares g's y'Ay, so at the
/// bilevel solution grad_y f != 0 and the barrier's fixed point stays off it (measured ~27% of
/// ||x*||, the same with T = 40; the NumPy transcription of benchopt's loop behaves alike), which
/// the test records rather than hides.
TEST(BomePreset, ReproducesBenchoptsIterationWithGradientsOnly) {
  const QuadraticData q = problem();
  AlgorithmOptions o = base_options(q, "bome", 300);
  o.loop.outer_step = {0.1};
  GradientOnlyQuadratic<double> p(cpu(), q);
  const SolveResult<double> r =
      make_solver(p, o)->run(std::vector<double>(5, 0.0), std::vector<double>(10, 0.0));
  const std::vector<double> want =
      bome_reference(q, 300, o.loop.inner_steps, o.loop.inner_step[0], 0.1, o.bome_eta);
  EXPECT_LT(relative_error(r.x, want), 1e-10);
  RecordProperty("distance_to_x_star", std::to_string(distance(r.x, q.solution_x())));
  // (and it moved: far from the start, closer to x* than the start is)
  EXPECT_LT(distance(r.x, q.solution_x()), 0.5 * norm(q.solution_x()));
}

/// F2SA (first order too) on the same gradient-only problem, and a preset that needs H v
/// refused with the problem's reason.
TEST(FirstOrderPresets, RunWithGradientsOnlyWhereHvpPresetsAreRefused) {
  const QuadraticData q = problem();
  AlgorithmOptions o = base_options(q, "f2sa", 400);
  o.f2sa.lambda0 = 1.0;
  o.f2sa.growth = 0.05;
  EXPECT_LT(run_gradient_only(o, q), 0.2 * norm(q.solution_x()));
  AlgorithmOptions soba = base_options(q, "soba", 10);
  EXPECT_THROW(run_gradient_only(soba, q), NotSupported);
}

}  // namespace
}  // namespace bilevel::test
