// check_oracles and hypergradient: right oracles pass, each kind of wrong one is caught by
// name; the hypergradient at y*(x) is the closed-form grad F(x) of the quadratic; steps from
// the problem (set_steps_from_smoothness) are 0.9 / L_g of its closed-form spectrum.
#include "test_files.hpp"
#include "test_support.hpp"

namespace bilevel::test {
namespace {

/// A problem that delegates to another and breaks one oracle on purpose.
class Broken final : public Problem<double> {
 public:
  enum class Fault { none, hv_scaled, jv_sign, gy_missing_term, no_x_dependence };
  Broken(Problem<double>& inner, Fault fault) : p_(inner), fault_(fault) {}
  std::string name() const override { return "broken " + p_.name(); }
  std::shared_ptr<Executor> executor() const override { return p_.executor(); }
  index_t dim_x() const override { return p_.dim_x(); }
  index_t dim_y() const override { return p_.dim_y(); }
  index_t lower_samples() const override { return p_.lower_samples(); }
  index_t upper_samples() const override { return p_.upper_samples(); }
  void reserve(index_t b, index_t m) override { p_.reserve(b, m); }
  void grad_y_g(const Batch& batch, ConstMatrixView<double> x, ConstMatrixView<double> y,
                MatrixView<double> out) override {
    p_.grad_y_g(batch, x, y, out);
    // gy + 0.5 y: the gradient of a g without its 0.25 ||y||^2 term
    if (fault_ == Fault::gy_missing_term) ops().axpby(0.5, y, 1.0, out);
  }
  void grad_f(const Batch& batch, ConstMatrixView<double> x, ConstMatrixView<double> y,
              MatrixView<double> fx, MatrixView<double> fy) override {
    p_.grad_f(batch, x, y, fx, fy);
    if (fault_ == Fault::no_x_dependence && !fx.empty()) ops().fill(fx, 0.0);
  }
  void hvp_jvp(const Batch& batch, ConstMatrixView<double> x, ConstMatrixView<double> y,
               ConstMatrixView<double> v, MatrixView<double> hv, MatrixView<double> jv) override {
    p_.hvp_jvp(batch, x, y, v, hv, jv);
    if (fault_ == Fault::hv_scaled && !hv.empty()) ops().axpby(0.0, hv, 1.02, hv);
    if (fault_ == Fault::jv_sign && !jv.empty()) ops().axpby(0.0, jv, -1.0, jv);
    if (fault_ == Fault::no_x_dependence && !jv.empty()) ops().fill(jv, 0.0);
  }
  void values(const Batch& lower, const Batch& upper, ConstMatrixView<double> x,
              ConstMatrixView<double> y, double* f_out, double* g_out) override {
    p_.values(lower, upper, x, y, f_out, g_out);
  }

 private:
  Ops<double>& ops() { return p_.executor()->ops<double>(); }
  Problem<double>& p_;
  Fault fault_;
};

std::vector<std::string> failing(const OracleCheckReport& r) {
  std::vector<std::string> out;
  for (const OracleCheck& c : r.checks)
    if (!c.passed && std::find(out.begin(), out.end(), c.oracle) == out.end()) out.push_back(c.oracle);
  return out;
}

TEST(CheckOracles, RightOraclesPassAndEachWrongOneIsNamed) {
  const QuadraticData q = QuadraticData::random(4, 7, 50, 3);
  QuadraticProblem<double> p(cpu(), q);
  const index_t nb = 2;
  Array<double> x(p.executor(), 4, nb, random_vector<double>(4 * nb, 1));
  Array<double> y(p.executor(), 7, nb, random_vector<double>(7 * nb, 2));
  const OracleCheckReport right = check_oracles<double>(p, x.cview(), y.cview());
  EXPECT_TRUE(right.passed()) << right.text();
  // every oracle checked for both instances: grad_y g, grad_y f, grad_x f, H v, J v (and
  // grad_x g where the quadratic gives it)
  EXPECT_GE(right.checks.size(), 10u) << right.text();
  for (const char* oracle : {"grad_y g", "grad_y f", "grad_x f", "H v", "J v"})
    EXPECT_EQ(std::count_if(right.checks.begin(), right.checks.end(),
                            [&](const OracleCheck& c) { return c.oracle == oracle; }),
              nb)
        << oracle;
  using F = Broken::Fault;
  const std::pair<F, std::vector<std::string>> cases[] = {
      {F::hv_scaled, {"H v"}},
      {F::jv_sign, {"J v"}},
      // a wrong gradient: its check fails, and so do the checks of H v and J v, whose
      // differences are taken of it
      {F::gy_missing_term, {"grad_y g", "H v"}}};
  for (const auto& [fault, names] : cases) {
    Broken broken(p, fault);
    const OracleCheckReport r = check_oracles<double>(broken, x.cview(), y.cview());
    EXPECT_FALSE(r.passed()) << r.text();
    EXPECT_EQ(failing(r), names) << r.text();
    EXPECT_NE(r.text().find("WRONG"), std::string::npos);
  }
  Array<double> short_y(p.executor(), 6, nb);
  expect_message([&] { check_oracles<double>(p, x.cview(), short_y.cview()); },
                 {"check_oracles: x must be 4 x B and y 7 x B, got 4 x 2 and 6 x 2"});
}

// A problem whose hypergradient is identically zero (no grad_x f, no J v): the run says that x
// never moved, for that instance; a healthy run says nothing.
TEST(ProblemSteps, StepsAreAFractionOfTheEstimatedLowerSmoothness) {
  const QuadraticData q = QuadraticData::random(4, 7, 50, 3);
  QuadraticProblem<double> p(cpu(), q);
  const double l_g = q.lower_hessian_spectrum().second;
  AlgorithmOptions o = default_options("stocbio");
  Array<double> x(cpu(), 4, 2, std::vector<double>(8, 0.5)), y(cpu(), 7, 2, std::vector<double>(14, 0.0));
  const std::vector<double> est = set_steps_from_smoothness<double>(p, o, x.cview(), y.cview());
  ASSERT_EQ(est.size(), 2u);
  for (std::size_t b = 0; b < 2; ++b) {
    EXPECT_NEAR(est[b], l_g, 1e-6 * l_g);  // the quadratic's H is constant: its top eigenvalue
    EXPECT_DOUBLE_EQ(o.loop.inner_step[b], 0.9 / est[b]);
    EXPECT_DOUBLE_EQ(o.neumann.eta[b], 0.9 / est[b]);
    EXPECT_DOUBLE_EQ(o.fixed_point.nu[b], 0.9 / est[b]);
  }
  // the preset's own default step (0.05) against 0.9 / L_g here: stocBiO reaches x* with the
  // derived steps in 150 iterations
  o.loop.iterations = 150;
  o.loop.outer_step = {0.5};
  o.neumann.terms = 30;
  o.loop.reference_x = q.solution_x();
  const SolveResult<double> r = make_solver(p, o)->run(x.to_host(), y.to_host());
  for (double dist : r.history.back().distance_to_solution) EXPECT_LT(dist, 1e-6);
  EXPECT_THROW(set_steps_from_smoothness<double>(p, o, x.cview(), y.cview(), 0, 2.0), InvalidArgument);
}

TEST(SolveWarnings, AnXThatNeverMovesIsReported) {
  const QuadraticData q = QuadraticData::random(4, 7, 50, 3);
  QuadraticProblem<double> p(cpu(), q);
  AlgorithmOptions o = default_options("stocbio");
  o.loop.iterations = 20;
  o.loop.eval_every = 10;
  o.loop.inner_step = {0.1};
  o.loop.outer_step = {0.1};
  o.neumann.eta = {0.1};
  const std::vector<double> x0(4 * 2, 0.5), y0(7 * 2, 0.0);
  const SolveResult<double> healthy = make_solver(p, o)->run(x0, y0);
  EXPECT_TRUE(healthy.warnings.empty()) << healthy.warnings.front();
  Broken flat(p, Broken::Fault::no_x_dependence);
  const SolveResult<double> r = make_solver(flat, o)->run(x0, y0);
  ASSERT_EQ(r.warnings.size(), 2u);
  EXPECT_EQ(r.warnings[0].rfind("instance 0: x did not move in 20 iterations: every "
                                "hypergradient estimate (grad_x f - J v) or every x step was zero", 0),
            0u)
      << r.warnings[0];
  EXPECT_NE(r.warnings[1].find("instance 1"), std::string::npos);
}

TEST(CheckOracles, HypercleaningPassesAndSaysWhatItCannotCheck) {
  const Dataset pool = make_synthetic(120, 5, 3, 4, 2.0);
  const HypercleanData data = prepare_hyperclean(pool, std::nullopt, SplitSizes{60, 30, 30}, 0.3, 2);
  HypercleanProblem<double> p(cpu(), data, 1e-2);
  const index_t nb = 2;
  Array<double> x(p.executor(), p.dim_x(), nb, random_vector<double>(p.dim_x() * nb, 1, -2, 2));
  Array<double> y(p.executor(), p.dim_y(), nb, random_vector<double>(p.dim_y() * nb, 2, -0.5, 0.5));
  const OracleCheckReport r = check_oracles<double>(p, x.cview(), y.cview());
  EXPECT_TRUE(r.passed()) << r.text();
  const std::string text = r.text();
  EXPECT_NE(text.find("not checked: grad_x f: upper_depends_on_x() is false"), std::string::npos) << text;
}

TEST(Hypergradient, AtTheLowerSolutionItIsTheClosedFormGradient) {
  const QuadraticData q = QuadraticData::random(4, 7, 50, 3);
  QuadraticProblem<double> p(cpu(), q);
  const std::vector<double> x = random_vector<double>(4, 5);
  const std::vector<double> y = q.solution_y(x);
  const std::vector<double> want = q.hypergradient(x);
  Array<double> xa(p.executor(), 4, 1, x), ya(p.executor(), 7, 1, y), h(p.executor(), 4, 1);
  hypergradient<double>(p, xa.cview(), ya.cview(), h.view());  // CG, dim_y iterations
  EXPECT_LT(relative_error(h.to_host(), want), 1e-8);
  const auto [mu, l] = q.lower_hessian_spectrum();
  (void)mu;
  hypergradient<double>(p, xa.cview(), ya.cview(), h.view(),
                        HypergradientOptions{"neumann", 2000, 1.0 / l});
  EXPECT_LT(relative_error(h.to_host(), want), 1e-6);
  // away from y*(x) it is not grad F (the estimate is at the given y)
  Array<double> y0(p.executor(), 7, 1, std::vector<double>(7, 0.0));
  hypergradient<double>(p, xa.cview(), y0.cview(), h.view());
  EXPECT_GT(relative_error(h.to_host(), want), 1e-3);
  expect_message([&] { hypergradient<double>(p, xa.cview(), ya.cview(), h.view(), {"exact"}); },
                 {"hypergradient: method must be cg or neumann, got 'exact'"});
  expect_message([&] { hypergradient<double>(p, xa.cview(), ya.cview(), h.view(), {"neumann"}); },
                 {"method neumann needs neumann_eta > 0"});
}

}  // namespace
}  // namespace bilevel::test
