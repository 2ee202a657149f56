// A user-defined bilevel problem, written against the public oracle interface only:
//
//   lower level  g(x, y) = 0.5 ||y||^2 - x'y        => y*(x) = x, H = I, J = -I
//   upper level  f(x, y) = 0.5 ||y - t||^2          => F(x) = 0.5 ||x - t||^2, x* = t
//
// The oracles are written with the executor's kernel set, so the same code runs on the CPU and
// on CUDA. Two instances with different step sizes are solved at once by stocBiO; then
// check_oracles tests every oracle against differences of the values, and hypergradient gives
// grad F at y*(x) (both from <bilevel/diagnostics.hpp>).
#include <bilevel/bilevel.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <vector>

namespace {

template <typename T>
class TargetProblem final : public bilevel::Problem<T> {
 public:
  TargetProblem(std::shared_ptr<bilevel::Executor> exec, const std::vector<T>& target)
      : exec_(exec), target_(exec, static_cast<bilevel::index_t>(target.size()), 1, target) {}

  std::string name() const override { return "target"; }
  std::shared_ptr<bilevel::Executor> executor() const override { return exec_; }
  bilevel::index_t dim_x() const override { return target_.rows(); }
  bilevel::index_t dim_y() const override { return target_.rows(); }

  void grad_y_g(const bilevel::Batch&, bilevel::ConstMatrixView<T> x,
                bilevel::ConstMatrixView<T> y, bilevel::MatrixView<T> out) override {
    // out = y - x
    ops().copy(y, out);
    ops().axpby(T(-1), x, T(1), out);
  }
  void grad_f(const bilevel::Batch&, bilevel::ConstMatrixView<T> x, bilevel::ConstMatrixView<T> y,
              bilevel::MatrixView<T> fx, bilevel::MatrixView<T> fy) override {
    // fx = 0; fy = y - t (t broadcast over instances)
    ops().fill(fx, T(0));
    ops().copy(y, fy);
    for (bilevel::index_t b = 0; b < x.cols; ++b)
      ops().axpby(T(-1), target_.view(), T(1), fy.col(b));
  }
  void hvp_jvp(const bilevel::Batch&, bilevel::ConstMatrixView<T>, bilevel::ConstMatrixView<T>,
               bilevel::ConstMatrixView<T> v, bilevel::MatrixView<T> hv,
               bilevel::MatrixView<T> jv) override {
    // H v = v; J v = -v
    if (!hv.empty()) ops().copy(v, hv);
    if (!jv.empty()) ops().axpby(T(-1), v, T(0), jv);
  }
  // Workspaces for up to `instances` instances, sized before a run (or a check) so that no
  // oracle allocates inside it.
  void reserve(bilevel::index_t instances, bilevel::index_t) override {
    if (diff_.cols() >= instances) return;
    diff_ = bilevel::Array<T>(exec_, target_.rows(), instances);
    dots_ = bilevel::Array<T>(exec_, instances, 1);
  }
  void values(const bilevel::Batch&, const bilevel::Batch&, bilevel::ConstMatrixView<T> x,
              bilevel::ConstMatrixView<T> y, T* f_out, T* g_out) override {
    // One value per instance, x.cols of them (f_out and g_out hold B values on the executor -
    // never a fixed count). check_oracles differentiates these, so they must be the real ones.
    const bilevel::index_t nb = x.cols;
    if (g_out) {
      // g = 0.5 <y, y> - <x, y>
      bilevel::MatrixView<T> g(g_out, nb, 1);
      ops().batch_dot(y, y, g.data);
      ops().batch_dot(x, y, dots_.data());
      ops().axpby(T(-1), bilevel::ConstMatrixView<T>(dots_.data(), nb, 1), T(0.5), g);
    }
    if (f_out) {
      // f = 0.5 ||y - t||^2
      const bilevel::MatrixView<T> diff(diff_.data(), target_.rows(), nb);
      ops().copy(y, diff);
      for (bilevel::index_t b = 0; b < nb; ++b)
        ops().axpby(T(-1), target_.view(), T(1), diff.col(b));
      bilevel::MatrixView<T> f(f_out, nb, 1);
      ops().batch_dot(diff, diff, f.data);
      ops().axpby(T(0.5), f, T(0), f);
    }
  }

 private:
  bilevel::Ops<T>& ops() { return exec_->ops<T>(); }
  std::shared_ptr<bilevel::Executor> exec_;
  bilevel::Array<T> target_, diff_, dots_;
};

}  // namespace

int main() {
  auto exec = bilevel::make_executor(bilevel::Backend::automatic);
  std::printf("bilevel %s on %s (%s)\n", bilevel::version,
              bilevel::to_string(exec->backend()).c_str(), exec->device_name().c_str());
  const std::vector<double> target{1.0, -2.0, 0.5, 3.0};
  TargetProblem<double> problem(exec, target);

  bilevel::AlgorithmOptions options;
  options.name = "stocbio";
  options.loop.iterations = 200;
  options.loop.inner_steps = 5;
  options.loop.inner_step = {0.5};
  options.loop.outer_step = {0.2, 0.4};  // two instances, two step sizes
  options.neumann = bilevel::NeumannOptions{30, {0.5}};
  options.loop.reference_x = target;
  auto solver = bilevel::make_solver(problem, options);
  const auto result = solver->run(std::vector<double>(8, 0.0), std::vector<double>(8, 0.0));

  int status = 0;
  for (int b = 0; b < 2; ++b) {
    const double dist = result.history.back().distance_to_solution[b];
    std::printf("instance %d: ||x - x*|| = %.3e\n", b, dist);
    if (!(dist < 1e-6)) status = 1;
  }
  // the same problem with one instance (values() writes one value per instance)
  options.loop.outer_step = {0.4};
  const auto single = bilevel::make_solver(problem, options)
                          ->run(std::vector<double>(4, 0.0), std::vector<double>(4, 0.0));
  const double dist = single.history.back().distance_to_solution[0];
  std::printf("one instance: ||x - x*|| = %.3e\n", dist);
  if (!(dist < 1e-6)) status = 1;
  // your own problem, checked: every oracle against differences of the values, and the
  // hypergradient at y*(x) = x against the closed form grad F(x) = x - t
  bilevel::Array<double> x(exec, 4, 2, {0.3, -0.1, 0.7, 1.2, -1.0, 0.4, 0.0, 2.0});
  bilevel::Array<double> y(exec, 4, 2, {0.5, 0.2, -0.3, 0.1, 1.0, -1.0, 0.25, 0.0});
  const bilevel::OracleCheckReport report = bilevel::check_oracles<double>(problem, x.cview(), y.cview());
  std::printf("%s", report.text().c_str());
  if (!report.passed()) status = 1;
  bilevel::Array<double> h(exec, 4, 2);
  bilevel::hypergradient<double>(problem, x.cview(), x.cview(), h.view());
  const std::vector<double> hh = h.to_host(), xh = x.to_host();
  double worst = 0;
  for (int i = 0; i < 8; ++i) worst = std::max(worst, std::abs(hh[i] - (xh[i] - target[i % 4])));
  std::printf("hypergradient at y*(x): max |h - (x - t)| = %.1e\n", worst);
  if (!(worst < 1e-12)) status = 1;
  std::printf(status == 0 ? "consumer: OK\n" : "consumer: FAILED\n");
  return status;
}
