// The hyper-cleaning problem: every oracle against finite differences of the one below it
// (double), minibatch and full batch, B = 2; CUDA parity of the fused softmax kernels.
#include "test_support.hpp"

namespace bilevel::test {
namespace {

HypercleanData small_data(index_t train = 60, index_t features = 6, int classes = 4) {
  const Dataset pool = make_synthetic(train + 40 + 30, features, classes, 5, 2.0);
  return prepare_hyperclean(pool, std::nullopt, SplitSizes{train, 40, 30}, 0.3, 9);
}

struct Fixture {
  std::shared_ptr<Executor> exec = cpu();
  HypercleanData data = small_data();
  HypercleanProblem<double> p{exec, data, 1e-3};
  index_t nb = 2, dx = p.dim_x(), dy = p.dim_y();
  std::vector<double> x = random_vector<double>(dx * nb, 1, -2, 2);
  std::vector<double> w = random_vector<double>(dy * nb, 2, -0.5, 0.5);
  std::vector<double> v = random_vector<double>(dy * nb, 3);
  Fixture() { p.reserve(nb, 16); }

  std::vector<double> gy(const Batch& b, const std::vector<double>& xh, const std::vector<double>& wh) {
    Array<double> xa(exec, dx, nb, xh), wa(exec, dy, nb, wh), out(exec, dy, nb);
    p.grad_y_g(b, xa.view(), wa.view(), out.view());
    return out.to_host();
  }
  std::vector<double> values(bool upper, const std::vector<double>& xh, const std::vector<double>& wh) {
    Array<double> xa(exec, dx, nb, xh), wa(exec, dy, nb, wh), out(exec, nb, 1);
    const Batch full{nullptr, 0};
    p.values(full, full, xa.view(), wa.view(), upper ? out.data() : nullptr, upper ? nullptr : out.data());
    return out.to_host();
  }
};

double dot_column(const std::vector<double>& a, const std::vector<double>& b, index_t rows, index_t col) {
  double s = 0;
  for (index_t i = 0; i < rows; ++i) s += a[i + col * rows] * b[i + col * rows];
  return s;
}

TEST(HypercleanProblem, GradientsMatchFiniteDifferencesOfTheValues) {
  Fixture f;
  const double eps = 1e-6;
  std::vector<double> wp = f.w, wm = f.w;
  for (std::size_t i = 0; i < wp.size(); ++i) wp[i] += eps * f.v[i], wm[i] -= eps * f.v[i];
  // <gy, v> = d/de g(W + e v)
  const std::vector<double> gy = f.gy(Batch{nullptr, 0}, f.x, f.w);
  const auto gp = f.values(false, f.x, wp), gm = f.values(false, f.x, wm);
  // <fy, v> = d/de f(W + e v)
  Array<double> xa(f.exec, f.dx, f.nb, f.x), wa(f.exec, f.dy, f.nb, f.w), fx(f.exec, f.dx, f.nb),
      fy(f.exec, f.dy, f.nb);
  f.p.grad_f(Batch{nullptr, 0}, xa.view(), wa.view(), fx.view(), fy.view());
  const auto fp = f.values(true, f.x, wp), fm = f.values(true, f.x, wm);
  for (index_t b = 0; b < f.nb; ++b) {
    const double want_g = (gp[b] - gm[b]) / (2 * eps), want_f = (fp[b] - fm[b]) / (2 * eps);
    EXPECT_NEAR(dot_column(gy, f.v, f.dy, b), want_g, 1e-6 * (1 + std::abs(want_g)));
    EXPECT_NEAR(dot_column(fy.to_host(), f.v, f.dy, b), want_f, 1e-6 * (1 + std::abs(want_f)));
  }
  for (double v : fx.to_host()) EXPECT_EQ(v, 0.0);
}

// benchopt's datacleaning objective (benchmark_bilevel datasets/mnist.py: loss_sample,
// weighted_loss, f_inner with reg 0.2, f_outer), written out here from its formulas:
//   g(x, W) = mean_i sigmoid(x_i) (logsumexp(a_i W) - (a_i W)_{y_i}) + reg sum W^2  (train)
//   f(W)    = mean_j (logsumexp(a_j W) - (a_j W)_{y_j})                               (validation)
// with W features x classes and no bias. The problem built from benchopt-protocol data must
// give these values, and gradients that are their derivatives.
TEST(HypercleanProblem, BenchoptProtocolObjectiveIsBenchoptsFormula) {
  const index_t d = 5, n = 50, nv = 30;
  const int C = 3;
  const Dataset pool = make_synthetic(n + nv + 20, d, C, 4, 2.0);
  const HypercleanData data = prepare_hyperclean(pool, std::nullopt, SplitSizes{n, nv, 20}, 0.5,
                                                 3, HypercleanProtocol::benchopt);
  auto exec = cpu();
  const double reg = 0.2;
  HypercleanProblem<double> p(exec, data, reg);
  ASSERT_EQ(p.dim_y(), d * C);  // no bias row
  ASSERT_EQ(p.features(), d);
  ASSERT_FALSE(p.has_bias());
  const index_t nb = 2;
  p.reserve(nb, 8);
  std::vector<double> x = random_vector<double>(n * nb, 1, -3, 1);
  const std::vector<double> w = random_vector<double>(d * C * nb, 2, -0.5, 0.5);
  const auto ce = [&](const Dataset& s, index_t i, const double* W) {
    std::vector<double> z(C, 0.0);
    for (int c = 0; c < C; ++c)
      for (index_t j = 0; j < d; ++j) z[c] += double(s.x[i * d + j]) * W[j + c * d];
    double m = z[0];
    for (int c = 1; c < C; ++c) m = std::max(m, z[c]);
    double sum = 0;
    for (int c = 0; c < C; ++c) sum += std::exp(z[c] - m);
    return m + std::log(sum) - z[s.labels[i]];
  };
  Array<double> xa(exec, n, nb, x), wa(exec, d * C, nb, w), f_out(exec, nb, 1), g_out(exec, nb, 1);
  const Batch full{nullptr, 0};
  p.values(full, full, xa.view(), wa.view(), f_out.data(), g_out.data());
  const std::vector<double> f_got = f_out.to_host(), g_got = g_out.to_host();
  for (index_t b = 0; b < nb; ++b) {
    const double* W = w.data() + b * d * C;
    double g = 0, f = 0, sq = 0;
    for (index_t i = 0; i < n; ++i)
      g += 1.0 / (1.0 + std::exp(-x[i + b * n])) * ce(data.train, i, W) / double(n);
    for (index_t k = 0; k < d * C; ++k) sq += W[k] * W[k];
    g += reg * sq;
    for (index_t j = 0; j < nv; ++j) f += ce(data.validation, j, W) / double(nv);
    EXPECT_NEAR(g_got[b], g, 1e-12 * (1 + std::abs(g))) << "instance " << b;
    EXPECT_NEAR(f_got[b], f, 1e-12 * (1 + std::abs(f))) << "instance " << b;
  }
  // grad_y g is the derivative of that g: <gy, v> against central differences along v
  const std::vector<double> v = random_vector<double>(d * C * nb, 3);
  Array<double> gy(exec, d * C, nb);
  p.grad_y_g(full, xa.view(), wa.view(), gy.view());
  const double eps = 1e-6;
  std::vector<double> wp = w, wm = w;
  for (std::size_t k = 0; k < w.size(); ++k) wp[k] += eps * v[k], wm[k] -= eps * v[k];
  Array<double> wpa(exec, d * C, nb, wp), wma(exec, d * C, nb, wm), gp(exec, nb, 1), gm(exec, nb, 1);
  p.values(full, full, xa.view(), wpa.view(), nullptr, gp.data());
  p.values(full, full, xa.view(), wma.view(), nullptr, gm.data());
  const std::vector<double> gyh = gy.to_host(), gph = gp.to_host(), gmh = gm.to_host();
  for (index_t b = 0; b < nb; ++b) {
    double dot = 0;
    for (index_t k = 0; k < d * C; ++k) dot += gyh[k + b * d * C] * v[k + b * d * C];
    const double want = (gph[b] - gmh[b]) / (2 * eps);
    EXPECT_NEAR(dot, want, 1e-6 * (1 + std::abs(want)));
  }
}

class HypercleanSecondOrder : public ::testing::TestWithParam<bool> {};

/// H v against central differences of gy along v; J v against differences of <gy, v> along
/// each x_k. On a minibatch (drawn with replacement) and on the full batch.
TEST_P(HypercleanSecondOrder, HvAndJvMatchFiniteDifferencesOfGy) {
  const bool minibatch = GetParam();
  Fixture f;
  MinibatchSampler<double> sampler(f.exec, 3, f.dx, minibatch ? 16 : 0);
  const Batch b = sampler.draw(SampleStream::second_order, 0, 0);
  Array<double> xa(f.exec, f.dx, f.nb, f.x), wa(f.exec, f.dy, f.nb, f.w), va(f.exec, f.dy, f.nb, f.v),
      hv(f.exec, f.dy, f.nb), jv(f.exec, f.dx, f.nb);
  f.p.hvp_jvp(b, xa.view(), wa.view(), va.view(), hv.view(), jv.view());
  const std::vector<double> hv_h = hv.to_host(), jv_h = jv.to_host();

  const double eps = 1e-6;
  std::vector<double> wp = f.w, wm = f.w;
  for (std::size_t i = 0; i < wp.size(); ++i) wp[i] += eps * f.v[i], wm[i] -= eps * f.v[i];
  const std::vector<double> gp = f.gy(b, f.x, wp), gm = f.gy(b, f.x, wm);
  std::vector<double> fd(gp.size());
  for (std::size_t i = 0; i < fd.size(); ++i) fd[i] = (gp[i] - gm[i]) / (2 * eps);
  EXPECT_LT(relative_error(hv_h, fd), 1e-7);

  int nonzero = 0;
  for (index_t k = 0; k < f.dx; ++k) {
    std::vector<double> xp = f.x, xm = f.x;
    for (index_t inst = 0; inst < f.nb; ++inst) xp[k + inst * f.dx] += eps, xm[k + inst * f.dx] -= eps;
    const std::vector<double> gxp = f.gy(b, xp, f.w), gxm = f.gy(b, xm, f.w);
    for (index_t inst = 0; inst < f.nb; ++inst) {
      const double want = (dot_column(gxp, f.v, f.dy, inst) - dot_column(gxm, f.v, f.dy, inst)) / (2 * eps);
      EXPECT_NEAR(jv_h[k + inst * f.dx], want, 1e-7 * (1 + std::abs(want))) << "k = " << k;
      nonzero += want != 0.0;
    }
  }
  if (minibatch) {
    EXPECT_LT(nonzero, f.dx * f.nb) << "a minibatch touches only its own samples";
  }
  EXPECT_GT(nonzero, 0);
}

/// One GEMM for the logits of W and V (A' [W V]) gives what two GEMMs give, on a minibatch and
/// on the full data.
TEST_P(HypercleanSecondOrder, FusedLogitsGemmMatchesTwoGemms) {
  Fixture f;
  MinibatchSampler<double> sampler(f.exec, 3, f.dx, GetParam() ? 16 : 0);
  const Batch b = sampler.draw(SampleStream::second_order, 0, 0);
  const auto run = [&](bool fused) {
    f.p.set_oracle_path(OraclePath::composed);  // the logits GEMMs are the composed path's
    f.p.set_fused_logits_gemm(fused);
    f.p.reserve(f.nb, 16);
    Array<double> xa(f.exec, f.dx, f.nb, f.x), wa(f.exec, f.dy, f.nb, f.w),
        va(f.exec, f.dy, f.nb, f.v), hv(f.exec, f.dy, f.nb), jv(f.exec, f.dx, f.nb);
    f.p.hvp_jvp(b, xa.view(), wa.view(), va.view(), hv.view(), jv.view());
    return std::make_pair(hv.to_host(), jv.to_host());
  };
  const auto two = run(false), one = run(true);
  EXPECT_LT(relative_error(one.first, two.first), 1e-13);
  EXPECT_LT(relative_error(one.second, two.second), 1e-13);
  EXPECT_GT(norm(two.first), 0.0);
}

/// The fused logits GEMM on CUDA against two GEMMs on the CPU.
TEST(HypercleanParity, FusedLogitsGemmOnCudaMatchesCpu) {
  BILEVEL_REQUIRE_CUDA(gpu);
  const HypercleanData data = small_data();
  const auto run = [&](std::shared_ptr<Executor> exec, bool fused) {
    HypercleanProblem<double> p(exec, data, 1e-3);
    p.set_oracle_path(OraclePath::composed);
    p.set_fused_logits_gemm(fused);
    p.reserve(2, 16);
    const index_t dx = p.dim_x(), dy = p.dim_y();
    Array<double> x(exec, dx, 2, random_vector<double>(dx * 2, 1)), w(exec, dy, 2, random_vector<double>(dy * 2, 2)),
        v(exec, dy, 2, random_vector<double>(dy * 2, 3)), hv(exec, dy, 2), jv(exec, dx, 2);
    p.hvp_jvp(Batch{nullptr, dx, dx}, x.view(), w.view(), v.view(), hv.view(), jv.view());
    return hv.to_host();
  };
  EXPECT_LT(relative_error(run(gpu, true), run(cpu(), false)), 1e-11);
}

/// grad_x g against differences of g along each x_k (minibatch: through the values of the
/// same batch, weighted train loss), and f's HVP against differences of fy.
TEST_P(HypercleanSecondOrder, GradXAndFHessianMatchFiniteDifferences) {
  const bool minibatch = GetParam();
  Fixture f;
  MinibatchSampler<double> sampler(f.exec, 5, f.p.lower_samples(), minibatch ? 16 : 0);
  MinibatchSampler<double> upper(f.exec, 6, f.p.upper_samples(), minibatch ? 16 : 0);
  const Batch b = sampler.draw(SampleStream::lower_step, 0, 0);
  const Batch ub = upper.draw(SampleStream::upper, 0, 0);
  Array<double> xa(f.exec, f.dx, f.nb, f.x), wa(f.exec, f.dy, f.nb, f.w), va(f.exec, f.dy, f.nb, f.v),
      gx(f.exec, f.dx, f.nb), hv(f.exec, f.dy, f.nb), jv(f.exec, f.dx, f.nb),
      fx(f.exec, f.dx, f.nb), fy(f.exec, f.dy, f.nb);
  f.p.grad_x_g(b, xa.view(), wa.view(), gx.view());
  const std::vector<double> gx_h = gx.to_host();
  const double eps = 1e-6;
  for (index_t k = 0; k < f.dx; k += 7) {
    std::vector<double> xp = f.x, xm = f.x;
    for (index_t inst = 0; inst < f.nb; ++inst) xp[k + inst * f.dx] += eps, xm[k + inst * f.dx] -= eps;
    Array<double> ap(f.exec, f.dx, f.nb, xp), am(f.exec, f.dx, f.nb, xm), gp(f.exec, f.nb, 1), gm(f.exec, f.nb, 1);
    f.p.values(b, ub, ap.view(), wa.view(), nullptr, gp.data());
    f.p.values(b, ub, am.view(), wa.view(), nullptr, gm.data());
    for (index_t inst = 0; inst < f.nb; ++inst) {
      const double want = (gp.to_host()[inst] - gm.to_host()[inst]) / (2 * eps);
      EXPECT_NEAR(gx_h[k + inst * f.dx], want, 1e-7 * (1 + std::abs(want))) << "k = " << k;
    }
  }
  // H_f v = d/de fy(W + e v); J_f = 0
  f.p.hvp_jvp_f(ub, xa.view(), wa.view(), va.view(), hv.view(), jv.view());
  std::vector<double> wp = f.w, wm = f.w;
  for (std::size_t i = 0; i < wp.size(); ++i) wp[i] += eps * f.v[i], wm[i] -= eps * f.v[i];
  Array<double> wpa(f.exec, f.dy, f.nb, wp), wma(f.exec, f.dy, f.nb, wm), fyp(f.exec, f.dy, f.nb),
      fym(f.exec, f.dy, f.nb);
  f.p.grad_f(ub, xa.view(), wpa.view(), fx.view(), fyp.view());
  f.p.grad_f(ub, xa.view(), wma.view(), fx.view(), fym.view());
  std::vector<double> fd(static_cast<std::size_t>(f.dy * f.nb));
  for (std::size_t i = 0; i < fd.size(); ++i) fd[i] = (fyp.to_host()[i] - fym.to_host()[i]) / (2 * eps);
  EXPECT_LT(relative_error(hv.to_host(), fd), 1e-7);
  for (double v : jv.to_host()) EXPECT_EQ(v, 0.0);
}

INSTANTIATE_TEST_SUITE_P(Batches, HypercleanSecondOrder, ::testing::Values(false, true));

TEST(HypercleanProblem, RejectsABatchFromALargerPopulation) {
  Fixture f;
  MinibatchSampler<double> train_sampler(f.exec, 1, f.p.lower_samples(), 8);
  const Batch b = train_sampler.draw(SampleStream::upper, 0, 0);  // 60 train samples
  Array<double> xa(f.exec, f.dx, f.nb, f.x), wa(f.exec, f.dy, f.nb, f.w), fx(f.exec, f.dx, f.nb),
      fy(f.exec, f.dy, f.nb);
  try {
    f.p.grad_f(b, xa.view(), wa.view(), fx.view(), fy.view());  // validation has 40
    FAIL() << "a train batch was accepted on the validation split";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("a batch drawn from 60 samples used on a split of 40"),
              std::string::npos)
        << e.what();
  }
}

TEST(HypercleanProblem, AccuracyAndLossOfAPerfectAndAZeroModel) {
  Fixture f;
  Array<double> zero(f.exec, f.dy, f.nb);
  f.exec->ops<double>().fill(zero.view(), 0.0);
  // W = 0: every class equally likely, loss log C, argmax picks class 0
  const std::vector<double> loss = f.p.mean_loss(DataSplit::test, zero.view());
  for (double l : loss) EXPECT_NEAR(l, std::log(4.0), 1e-12);
  const std::vector<double> acc = f.p.accuracy(DataSplit::test, zero.view());
  double share0 = 0;
  for (auto l : f.data.test.labels) share0 += (l == 0) / double(f.data.test.samples);
  for (double a : acc) EXPECT_NEAR(a, share0, 1e-12);
}

/// The fused softmax kernels on the device against the CPU twins, through the problem's
/// oracles (minibatch, B = 3, more samples than a warp, C = 7).
template <typename T>
class HypercleanParity : public ::testing::Test {};
using Precisions = ::testing::Types<float, double>;
TYPED_TEST_SUITE(HypercleanParity, Precisions);

TYPED_TEST(HypercleanParity, OraclesMatchOnBothBackends) {
  using T = TypeParam;
  BILEVEL_REQUIRE_CUDA(gpu);
  const Dataset pool = make_synthetic(900, 33, 7, 8);
  const HypercleanData data = prepare_hyperclean(pool, std::nullopt, SplitSizes{500, 200, 200}, 0.4, 2);
  const index_t nb = 3;
  const auto run = [&](std::shared_ptr<Executor> exec) {
    HypercleanProblem<T> p(exec, data, 1e-3);
    p.reserve(nb, 100);
    const index_t dx = p.dim_x(), dy = p.dim_y();
    Array<T> x(exec, dx, nb, random_vector<T>(dx * nb, 1, -2, 2)),
        w(exec, dy, nb, random_vector<T>(dy * nb, 2, -0.3, 0.3)), v(exec, dy, nb, random_vector<T>(dy * nb, 3)),
        gy(exec, dy, nb), hv(exec, dy, nb), jv(exec, dx, nb), fx(exec, dx, nb), fy(exec, dy, nb),
        vals(exec, nb, 2);
    MinibatchSampler<T> sampler(exec, 4, dx, 100);
    const Batch b = sampler.draw(SampleStream::second_order, 0, 0);
    p.grad_y_g(b, x.view(), w.view(), gy.view());
    p.hvp_jvp(b, x.view(), w.view(), v.view(), hv.view(), jv.view());
    p.grad_f(Batch{nullptr, 0}, x.view(), w.view(), fx.view(), fy.view());
    p.values(Batch{nullptr, 0}, Batch{nullptr, 0}, x.view(), w.view(), vals.data(), vals.data() + nb);
    std::vector<std::vector<T>> out{gy.to_host(), hv.to_host(), jv.to_host(), fy.to_host(), vals.to_host()};
    // grad_x g on the minibatch; f's HVP on the full validation set
    p.grad_x_g(b, x.view(), w.view(), jv.view());
    out.push_back(jv.to_host());
    p.hvp_jvp_f(Batch{nullptr, 0}, x.view(), w.view(), v.view(), hv.view(), MatrixView<T>());
    out.push_back(hv.to_host());
    const auto acc = p.accuracy(DataSplit::test, w.view());
    out.push_back(std::vector<T>(acc.begin(), acc.end()));
    return out;
  };
  const auto want = run(cpu());
  const auto got = run(gpu);
  const char* names[] = {"gy", "hv", "jv", "fy", "values", "gx", "hv_f", "accuracy"};
  for (std::size_t k = 0; k < want.size(); ++k) {
    SCOPED_TRACE(names[k]);
    EXPECT_LT(relative_error(got[k], want[k]), 10 * parity_tolerance<T>());
  }
}

}  // namespace
}  // namespace bilevel::test

namespace bilevel::test {
namespace {

/// Outcome of a stocBiO hyper-cleaning run on the CPU.
struct CleaningRun {
  DetectionScores scores;
  double accuracy = 0;
  double l_g = 0;
};

/// 600 stocBiO iterations (batch 256, D = 5, Q = 10, steps 0.9 / L_g, x step 1000), then the
/// detection scores against `corrupted` and the test accuracy.
CleaningRun run_cleaning(HypercleanProblem<float>& p, const std::vector<std::uint8_t>& corrupted) {
  auto exec = p.executor();
  const index_t n = p.dim_x(), dy = p.dim_y();
  p.reserve(1, 256);
  Array<float> x0(exec, n, 1), y0(exec, dy, 1);
  exec->ops<float>().fill(x0.view(), 0.0f);
  exec->ops<float>().fill(y0.view(), 0.0f);
  CleaningRun out;
  out.l_g = estimate_lower_smoothness(p, x0.cview(), y0.cview(), 1024)[0];
  AlgorithmOptions o;
  o.loop.iterations = 600;
  o.loop.inner_steps = 5;
  o.loop.inner_step = {0.9 / out.l_g};
  o.loop.outer_step = {1000.0};
  o.loop.lower_batch = o.loop.upper_batch = 256;
  o.neumann = NeumannOptions{10, {0.9 / out.l_g}};
  const SolveResult<float> r = make_solver(p, o)->run(std::vector<float>(n, 0.0f),
                                                      std::vector<float>(dy, 0.0f));
  std::vector<std::uint8_t> flagged(static_cast<std::size_t>(n));
  for (index_t i = 0; i < n; ++i) flagged[i] = r.x[i] < 0.0f;
  out.scores = detection_scores(flagged, corrupted);
  Array<float> w(exec, dy, 1, r.y);
  out.accuracy = p.accuracy(DataSplit::test, w.cview())[0];
  return out;
}

/// A small synthetic hyper-cleaning run (3000 train samples, half of the labels corrupted):
/// stocBiO flags the corrupted samples with F1 >= 0.9 and beats training on all samples.
TEST(HypercleanRun, SyntheticFlagsCorruptedSamples) {
  auto exec = cpu();
  const Dataset pool = make_synthetic(3000 + 1000 + 1000, 20, 5, 11, 4.0);
  const HypercleanData data = prepare_hyperclean(pool, std::nullopt, SplitSizes{3000, 1000, 1000}, 0.5, 3);
  HypercleanProblem<float> p(exec, data, 3e-3);
  const CleaningRun run = run_cleaning(p, data.corrupted);
  ASSERT_GT(run.l_g, 0.0);

  // plain baseline: all weights 1
  const index_t n = p.dim_x(), dy = p.dim_y();
  Array<float> ones(exec, n, 1, std::vector<float>(n, 40.0f)), w_plain(exec, dy, 1);
  exec->ops<float>().fill(w_plain.view(), 0.0f);
  train_lower_level(p, ones.cview(), w_plain.view(), LowerLevelOptions{600, {0.45 / run.l_g}, 256, 1});
  const double plain = p.accuracy(DataSplit::test, w_plain.cview())[0];
  RecordProperty("f1", std::to_string(run.scores.f1));
  RecordProperty("accuracy", std::to_string(run.accuracy));
  RecordProperty("plain", std::to_string(plain));
  EXPECT_GE(run.scores.f1, 0.9) << "precision " << run.scores.precision << ", recall " << run.scores.recall;
  EXPECT_GT(run.accuracy, plain) << "hyper-cleaning must beat training on the corrupted labels";
}

/// The metrics computed on the device at every evaluation (test accuracy, flagged samples, true
/// positives) agree with accuracy() and with the scores computed from x on the host, and they
/// reach the solver's history without a read-back of x.
TEST(HypercleanRun, EvaluationMetricsAreComputedOnTheDevice) {
  auto exec = cpu();
  HypercleanTruth truth;
  HypercleanProblem<double> p(exec, SyntheticHypercleanSpec{600, 200, 300, 10, 4, 0.4, 8, 3.0},
                              1e-3, &truth);
  EXPECT_EQ(p.evaluation_metric_names(), std::vector<std::string>{"test_accuracy"});
  p.set_detection_truth(truth.corrupted);
  EXPECT_EQ(p.evaluation_metric_names(),
            (std::vector<std::string>{"test_accuracy", "flagged", "true_positives"}));
  AlgorithmOptions o = default_options("soba");
  o.loop.iterations = 60;
  o.loop.eval_every = 30;
  o.loop.inner_step = {0.1};
  o.loop.outer_step = {50.0, 100.0};
  o.loop.lower_batch = o.loop.upper_batch = 64;
  o.fixed_point.nu = {0.1};
  const SolveResult<double> r =
      make_solver(p, o)->run(std::vector<double>(1200, 0.0), std::vector<double>(2 * 44, 0.0));
  ASSERT_EQ(r.history.size(), 2u);
  const IterationMetrics& last = r.history.back();
  ASSERT_EQ(last.problem_metrics.size(), 3u);
  Array<double> y(exec, 44, 2, r.y);
  const std::vector<double> acc = p.accuracy(DataSplit::test, y.cview());
  for (index_t b = 0; b < 2; ++b) {
    SCOPED_TRACE("instance " + std::to_string(b));
    EXPECT_NEAR(last.problem_metrics[0][b], acc[b], 1e-12);
    std::vector<std::uint8_t> flagged(600);
    for (index_t i = 0; i < 600; ++i) flagged[i] = r.x[i + b * 600] < 0.0;
    const DetectionScores s = detection_scores(flagged, truth.corrupted);
    EXPECT_EQ(last.problem_metrics[1][b], static_cast<double>(s.flagged));
    EXPECT_EQ(last.problem_metrics[2][b], static_cast<double>(s.true_positives));
    EXPECT_GT(s.flagged, 0) << "the run must flag something for the check to mean anything";
  }
  EXPECT_THROW(p.set_detection_truth(std::vector<std::uint8_t>(5, 0)), InvalidArgument);
}

/// Data generated on the executor: the truth has the asked corruption, and stocBiO flags it.
TEST(HypercleanRun, DeviceGeneratedSyntheticFlagsCorruptedSamples) {
  auto exec = cpu();
  HypercleanTruth truth;
  HypercleanProblem<float> p(exec, SyntheticHypercleanSpec{3000, 1000, 1000, 20, 5, 0.4, 17, 4.0},
                             3e-3, &truth);
  ASSERT_EQ(truth.corrupted.size(), 3000u);
  EXPECT_EQ(std::count(truth.corrupted.begin(), truth.corrupted.end(), 1), 1200);
  EXPECT_EQ(p.dim_y(), 21 * 5);
  const CleaningRun run = run_cleaning(p, truth.corrupted);
  EXPECT_GE(run.scores.f1, 0.9) << "precision " << run.scores.precision << ", recall " << run.scores.recall;
}

/// The same spec generates the same data on both backends (Philox normals): the losses of a
/// fixed model agree.
TEST(HypercleanParity, DeviceGeneratedDataMatchesCpu) {
  BILEVEL_REQUIRE_CUDA(gpu);
  const SyntheticHypercleanSpec spec{2000, 500, 700, 37, 6, 0.5, 5, 3.0};
  const auto losses = [&](std::shared_ptr<Executor> exec) {
    HypercleanTruth truth;
    HypercleanProblem<double> p(exec, spec, 1e-3, &truth);
    p.reserve(2, 64);
    Array<double> w(exec, p.dim_y(), 2, random_vector<double>(p.dim_y() * 2, 4, -0.2, 0.2));
    std::vector<double> out = p.mean_loss(DataSplit::train, w.cview());
    for (double v : p.mean_loss(DataSplit::test, w.cview())) out.push_back(v);
    return out;
  };
  EXPECT_LT(relative_error(losses(gpu), losses(cpu())), 1e-10);
}

}  // namespace
}  // namespace bilevel::test

namespace bilevel::test {
namespace {

/// Within-class statistics of a split's features (features x samples, bias row dropped; each
/// sample minus the mean of its class): the spread of the features' standard deviations and
/// the mean absolute correlation between distinct features.
struct FeatureStats {
  double spread = 0;          // largest / smallest standard deviation
  double mean_abs_corr = 0;   // over pairs of distinct features
};
FeatureStats feature_stats(const std::vector<double>& x, const std::vector<std::int32_t>& label,
                           index_t rows, index_t n, int classes) {
  const index_t d = rows - 1;
  std::vector<double> mean(static_cast<std::size_t>(d * classes), 0.0), count(classes, 0.0);
  for (index_t i = 0; i < n; ++i) {
    count[label[i]] += 1;
    for (index_t j = 0; j < d; ++j) mean[label[i] * d + j] += x[i * rows + j];
  }
  for (int c = 0; c < classes; ++c)
    for (index_t j = 0; j < d; ++j) mean[c * d + j] /= std::max(count[c], 1.0);
  const auto r = [&](index_t i, index_t j) { return x[i * rows + j] - mean[label[i] * d + j]; };
  std::vector<double> sd(d, 0.0);
  for (index_t i = 0; i < n; ++i)
    for (index_t j = 0; j < d; ++j) sd[j] += r(i, j) * r(i, j) / n;
  for (auto& v : sd) v = std::sqrt(v);
  FeatureStats s;
  s.spread = *std::max_element(sd.begin(), sd.end()) / *std::min_element(sd.begin(), sd.end());
  double sum = 0;
  for (index_t a = 0; a < d; ++a)
    for (index_t b = a + 1; b < d; ++b) {
      double c = 0;
      for (index_t i = 0; i < n; ++i) c += r(i, a) * r(i, b);
      sum += std::abs(c / n / (sd[a] * sd[b]));
    }
  s.mean_abs_corr = sum / (d * (d - 1) / 2.0);
  return s;
}

/// The harder generator: features of spread scales, correlated through latent factors; the
/// default generator has neither; both are reproducible from the seed.
TEST(SyntheticGenerator, ScalesAndCorrelationsAreThereWhenAskedFor) {
  auto exec = cpu();
  const auto stats = [&](double spread, double correlation) {
    SyntheticHypercleanSpec spec{4000, 200, 200, 12, 4, 0.3, 5};
    spec.feature_scale_spread = spread;
    spec.correlation = correlation;
    HypercleanTruth truth;
    HypercleanProblem<double> p(exec, spec, 1e-3, &truth);
    const std::vector<double> x = p.features_of(DataSplit::train);
    HypercleanProblem<double> again(exec, spec, 1e-3, nullptr);
    EXPECT_EQ(x, again.features_of(DataSplit::train)) << "reproducible from the seed";
    return feature_stats(x, truth.clean_train_labels, 13, 4000, 4);
  };
  const FeatureStats plain = stats(1.0, 0.0), scaled = stats(10.0, 0.0), correlated = stats(1.0, 4.0);
  EXPECT_LT(plain.spread, 1.5);
  EXPECT_GT(scaled.spread, 5.0);
  EXPECT_LT(plain.mean_abs_corr, 0.05);
  EXPECT_GT(correlated.mean_abs_corr, 3 * plain.mean_abs_corr);
  EXPECT_GT(correlated.mean_abs_corr, 0.1);
}

}  // namespace
}  // namespace bilevel::test
