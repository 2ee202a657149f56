// The kernel set: every CPU kernel against a naive loop, and every CUDA kernel against its CPU
// twin (float and double; sizes above a warp, odd sizes, a leading dimension above rows, a zero
// denominator). The CUDA half skips when no device exists.
#include "test_support.hpp"

#include <omp.h>

#include <algorithm>
#include <cstring>
#include <map>

namespace bilevel::test {
namespace {

using Outputs = std::map<std::string, std::vector<double>>;

struct Shape {
  index_t rows, cols;
};

template <typename T>
std::vector<double> to_double(const std::vector<T>& v) {
  return std::vector<double>(v.begin(), v.end());
}

/// Inputs of one kernel run, on the host.
template <typename T>
struct Inputs {
  Shape s;
  index_t ld;  // of the strided view
  std::vector<T> x, y, z, alpha, num, den;
  std::vector<T> a, b;  // gemm: a is m x k, b is k x n
  index_t m = 67, k = 45;

  explicit Inputs(Shape shape, std::uint64_t seed) : s(shape), ld(shape.rows + 3) {
    const std::size_t n = static_cast<std::size_t>(s.rows * s.cols);
    x = random_vector<T>(static_cast<std::size_t>(ld * s.cols), seed);
    y = random_vector<T>(n, seed + 1);
    z = random_vector<T>(n, seed + 2);
    alpha = random_vector<T>(s.cols, seed + 3, 0.1, 1.0);
    num = random_vector<T>(s.cols, seed + 4, 0.5, 2.0);
    den = random_vector<T>(s.cols, seed + 5, 0.5, 2.0);
    den[0] = T(0);  // a converged instance: ratio kernels must give 0, not NaN
    a = random_vector<T>(static_cast<std::size_t>(m * k), seed + 6);
    b = random_vector<T>(static_cast<std::size_t>(k * s.cols), seed + 7);
  }
};

template <typename T>
Outputs run_kernels(const std::shared_ptr<Executor>& exec, const Inputs<T>& in) {
  Ops<T>& ops = exec->ops<T>();
  const index_t r = in.s.rows, c = in.s.cols;
  Outputs out;
  Array<T> xs(exec, in.ld, c, in.x);  // strided: view rows r of ld
  const MatrixView<T> x(xs.data(), r, c, in.ld);
  Array<T> y(exec, r, c, in.y), z(exec, r, c, in.z), alpha(exec, c, 1, in.alpha),
      num(exec, c, 1, in.num), den(exec, c, 1, in.den), scal(exec, c, 1);
  Array<T> a(exec, in.m, in.k, in.a), b(exec, in.k, c, in.b), cm(exec, in.m, c);
  Array<T> ctn(exec, in.k, c), work(exec, r, c);

  const auto take = [&](const std::string& name, const Array<T>& arr) {
    out[name] = to_double(arr.to_host());
  };
  // C = A B
  ops.fill(cm.view(), T(0.5));
  ops.gemm(Op::none, Op::none, T(1.5), a.view(), b.view(), T(-2), cm.view());
  take("gemm_nn", cm);
  // C = A' (A B)
  ops.gemm(Op::transpose, Op::none, T(1), a.view(), cm.view(), T(0), ctn.view());
  take("gemm_tn", ctn);
  // per column j: ctn_j = 2 A_j' cm_j with A_j the m x (k / 3) block j % 3 of A... written as
  // three strided-batched products of A's column blocks with cm's columns (count 3 of c)
  if (c >= 3) {
    const index_t kb = in.k / 3;
    Array<T> sb(exec, kb, 3);
    ops.gemm_strided_batched(Op::transpose, Op::none, T(2),
                             ConstMatrixView<T>(a.data(), in.m, kb, in.m), in.m * kb,
                             ConstMatrixView<T>(cm.data(), in.m, 1, in.m), in.m, T(0),
                             MatrixView<T>(sb.data(), kb, 1, kb), kb, 3);
    take("gemm_strided_batched", sb);
  }
  ops.copy(x, work.view());
  take("copy", work);
  ops.fill(work.view(), T(0.25));
  take("fill", work);
  ops.copy(y.view(), work.view());
  ops.axpby(T(0.5), x, T(-1.5), work.view());
  take("axpby", work);
  ops.copy(y.view(), work.view());
  ops.batch_axpy(T(-1), alpha.data(), x, work.view());
  take("batch_axpy", work);
  ops.copy(y.view(), work.view());
  {
    // the same axpy, then the counter from 7 to 8
    Array<std::uint32_t> k(exec, 1, 1, std::vector<std::uint32_t>{7u});
    ops.batch_axpy_and_advance(T(-1), alpha.data(), x, work.view(), k.data());
    take("batch_axpy_and_advance", work);
    out["advanced_counter"] = {static_cast<double>(k.to_host()[0])};
  }
  ops.copy(y.view(), work.view());
  ops.batch_scale(T(2), alpha.data(), work.view());
  take("batch_scale", work);
  ops.batch_dot(x, y.view(), scal.data());
  take("batch_dot", scal);
  ops.batch_nrm2(x, scal.data());
  take("batch_nrm2", scal);
  // #{x_ij < 0.1} and the same weighted by the first r values of z (as a mask-like weight)
  ops.batch_count_below(x, T(0.1), nullptr, scal.data());
  take("count_below", scal);
  ops.batch_count_below(x, T(0.1), z.data(), scal.data());
  take("count_below_weighted", scal);
  ops.copy(y.view(), work.view());
  Array<T> v(exec, r, c, in.z);
  ops.neumann_step(alpha.data(), x, work.view(), v.view());
  take("neumann_r", work);
  take("neumann_v", v);
  ops.copy(y.view(), work.view());
  ops.batch_axpy_ratio(T(-1), num.data(), den.data(), x, work.view());
  take("axpy_ratio", work);
  ops.copy(y.view(), work.view());
  ops.batch_xpay_ratio(num.data(), den.data(), x, work.view());
  take("xpay_ratio", work);
  ops.copy(y.view(), work.view());
  ops.clamp(work.view(), T(-0.25), T(0.5));
  take("clamp", work);
  ops.copy(y.view(), work.view());
  ops.add_normal(99, 3, T(0.5), work.view());
  take("add_normal", work);
  Array<sample_index_t> idx(exec, 2 * r + 1, 1);
  ops.sample_indices(1234, 5, 6, 0, r, idx.size(), idx.data());
  const std::vector<sample_index_t> idx_host = idx.to_host();
  out["sample_indices"] = std::vector<double>(idx_host.begin(), idx_host.end());
  Array<T> gathered(exec, idx.size(), c);
  ops.gather_rows(y.view(), idx.data(), gathered.view());
  take("gather_rows", gathered);
  // a shard: rows [1, r - 1) of y standing for samples 2 .. r of a larger set; the others 0
  if (r > 2) {
    ops.gather_rows(ConstMatrixView<T>(y.data() + 1, r - 2, c, y.rows()), idx.data(),
                    gathered.view(), 2);
    take("gather_rows_shard", gathered);
  }
  // the same batch with its step read from a device-resident counter: 2 + (4 + 1 + 1 - 2)
  Array<std::uint32_t> counter(exec, 1, 1, std::vector<std::uint32_t>{2u});
  ops.advance_counter(counter.data());
  ops.advance_counter(counter.data());
  ops.sample_indices(1234, 5, 2, 0, r, idx.size(), idx.data(), counter.data());
  const std::vector<sample_index_t> idx_counted = idx.to_host();
  out["sample_indices_counted"] = std::vector<double>(idx_counted.begin(), idx_counted.end());
  out["counter"] = {static_cast<double>(counter.to_host()[0])};
  // two sets at once (independent batches): set b drawn with instance word b
  Array<sample_index_t> sets(exec, idx.size(), 2), one(exec, idx.size(), 1);
  ops.sample_indices(1234, 5, 6, 0, r, idx.size(), sets.data(), nullptr, 2);
  ops.sample_indices(1234, 5, 6, 1, r, idx.size(), one.data());
  const std::vector<sample_index_t> sets_host = sets.to_host(), one_host = one.to_host();
  out["sample_index_sets"] = std::vector<double>(sets_host.begin(), sets_host.end());
  out["sample_index_set1"] = std::vector<double>(one_host.begin(), one_host.end());
  // the epoch walk: a batch of 2 r + 1 at step 0 is two whole epochs and one more sample
  ops.sample_indices(1234, 5, 0, 0, r, idx.size(), idx.data(), nullptr, 1, true);
  const std::vector<sample_index_t> walk = idx.to_host();
  out["sample_indices_epochs"] = std::vector<double>(walk.begin(), walk.end());
  // alpha_j (k + 1)^-0.6 and alpha_j (2 + 0.5 k) at k = 4
  ops.schedule(alpha.data(), c, Schedule{1.0, 1.0, 0.6}, counter.data(), scal.data());
  take("schedule_decay", scal);
  ops.schedule(alpha.data(), c, Schedule{2.0, 0.5, -1.0}, counter.data(), scal.data());
  take("schedule_growth", scal);
  // m = 0.9 m + 0.1 x; y -= 0.5 alpha m / ||m||, instance 0 with m = x = 0 (no move)
  Array<T> m(exec, r, c, in.z), h(exec, r, c);
  ops.copy(x, h.view());
  ops.fill(MatrixView<T>(h.data(), r, 1, r), T(0));
  ops.fill(MatrixView<T>(m.data(), r, 1, r), T(0));
  ops.copy(y.view(), work.view());
  ops.normalized_momentum_step(T(0.9), h.view(), m.view(), T(-0.5), alpha.data(), work.view());
  take("momentum_m", m);
  take("momentum_x", work);
  // the same step from squared norms computed apart (sharded x): y - 0.5 alpha m / sqrt(m'm)
  ops.batch_dot(m.view(), m.view(), scal.data());
  ops.copy(y.view(), work.view());
  ops.normalized_axpy(T(-0.5), alpha.data(), scal.data(), m.view(), work.view());
  take("normalized_axpy", work);
  // work = 0.5 x .* y - 2 work (work = y on entry); z2 = exp(y / 4)
  ops.copy(y.view(), work.view());
  ops.hadamard(T(0.5), x, y.view(), T(-2), work.view());
  take("hadamard", work);
  ops.copy(y.view(), work.view());
  ops.axpby(T(0), y.view(), T(0.25), work.view());
  ops.exp(work.view(), work.view());
  take("exp", work);
  // single-point step: gy = x, fy = z, hv = y, fx = x; y, v, h start at y, z, y
  Array<T> sy(exec, r, c, in.y), sv(exec, r, c, in.z), sh(exec, r, c, in.y);
  ops.single_point_step(alpha.data(), num.data(), den.data(), x, z.view(), y.view(), x, sy.view(),
                        sv.view(), sh.view());
  take("single_point_y", sy);
  take("single_point_v", sv);
  take("single_point_h", sh);
  // without aggregation and without fx: h = -h
  Array<T> sy2(exec, r, c, in.y), sv2(exec, r, c, in.z), sh2(exec, r, c, in.y);
  ops.single_point_step(alpha.data(), num.data(), nullptr, x, z.view(), y.view(),
                        ConstMatrixView<T>(), sy2.view(), sv2.view(), sh2.view());
  take("single_point_y_plain", sy2);
  take("single_point_h_plain", sh2);
  return out;
}

/// The same computations as naive double loops on the host.
template <typename T>
Outputs reference(const Inputs<T>& in) {
  const index_t r = in.s.rows, c = in.s.cols, m = in.m, k = in.k;
  Outputs out;
  const auto X = [&](index_t i, index_t j) { return double(in.x[i + j * in.ld]); };
  const auto Y = [&](index_t i, index_t j) { return double(in.y[i + j * r]); };
  const auto Z = [&](index_t i, index_t j) { return double(in.z[i + j * r]); };
  const auto ratio = [&](index_t j) { return in.den[j] == T(0) ? 0.0 : double(in.num[j]) / double(in.den[j]); };
  std::vector<double> cm(static_cast<std::size_t>(m * c)), ctn(static_cast<std::size_t>(k * c));
  for (index_t j = 0; j < c; ++j)
    for (index_t i = 0; i < m; ++i) {
      double s = 0;
      for (index_t p = 0; p < k; ++p) s += double(in.a[i + p * m]) * double(in.b[p + j * k]);
      cm[i + j * m] = 1.5 * s - 2 * 0.5;
    }
  for (index_t j = 0; j < c; ++j)
    for (index_t i = 0; i < k; ++i) {
      double s = 0;
      for (index_t p = 0; p < m; ++p) s += double(in.a[p + i * m]) * cm[p + j * m];
      ctn[i + j * k] = s;
    }
  out["gemm_nn"] = cm;
  out["gemm_tn"] = ctn;
  if (c >= 3) {
    // block i: 2 A[:, i kb : (i + 1) kb]' cm[:, i]
    const index_t kb = k / 3;
    std::vector<double> sb(static_cast<std::size_t>(kb * 3));
    for (index_t i = 0; i < 3; ++i)
      for (index_t r = 0; r < kb; ++r) {
        double s = 0;
        for (index_t p = 0; p < m; ++p) s += double(in.a[p + (i * kb + r) * m]) * cm[p + i * m];
        sb[r + i * kb] = 2 * s;
      }
    out["gemm_strided_batched"] = sb;
  }
  const auto each = [&](auto f) {
    std::vector<double> v(static_cast<std::size_t>(r * c));
    for (index_t j = 0; j < c; ++j)
      for (index_t i = 0; i < r; ++i) v[i + j * r] = f(i, j);
    return v;
  };
  out["copy"] = each([&](index_t i, index_t j) { return X(i, j); });
  out["fill"] = each([&](index_t, index_t) { return 0.25; });
  out["axpby"] = each([&](index_t i, index_t j) { return 0.5 * X(i, j) - 1.5 * Y(i, j); });
  out["batch_axpy"] = each([&](index_t i, index_t j) { return Y(i, j) - double(in.alpha[j]) * X(i, j); });
  out["batch_scale"] = each([&](index_t i, index_t j) { return 2.0 * double(in.alpha[j]) * Y(i, j); });
  std::vector<double> dot(c), nrm(c);
  for (index_t j = 0; j < c; ++j) {
    for (index_t i = 0; i < r; ++i) {
      dot[j] += X(i, j) * Y(i, j);
      nrm[j] += X(i, j) * X(i, j);
    }
    nrm[j] = std::sqrt(nrm[j]);
  }
  out["batch_dot"] = dot;
  out["batch_nrm2"] = nrm;
  std::vector<double> below(c), below_w(c);
  for (index_t j = 0; j < c; ++j)
    for (index_t i = 0; i < r; ++i)
      if (X(i, j) < double(T(0.1))) below[j] += 1, below_w[j] += double(in.z[i]);
  out["count_below"] = below;
  out["count_below_weighted"] = below_w;
  out["neumann_r"] = each([&](index_t i, index_t j) { return Y(i, j) - double(in.alpha[j]) * X(i, j); });
  out["neumann_v"] = each([&](index_t i, index_t j) {
    return Z(i, j) + Y(i, j) - double(in.alpha[j]) * X(i, j);
  });
  out["axpy_ratio"] = each([&](index_t i, index_t j) { return Y(i, j) - ratio(j) * X(i, j); });
  out["clamp"] = each([&](index_t i, index_t j) { return std::min(std::max(Y(i, j), -0.25), 0.5); });
  out["xpay_ratio"] = each([&](index_t i, index_t j) { return X(i, j) + ratio(j) * Y(i, j); });
  out["counter"] = {4.0};
  std::vector<double> decay(c), growth(c);
  for (index_t j = 0; j < c; ++j) {
    decay[j] = double(in.alpha[j]) * std::pow(5.0, -0.6);
    growth[j] = double(in.alpha[j]) * 4.0;
  }
  out["schedule_decay"] = decay;
  out["schedule_growth"] = growth;
  const auto mom = [&](index_t i, index_t j) { return j == 0 ? 0.0 : 0.9 * Z(i, j) + 0.1 * X(i, j); };
  std::vector<double> mnorm(c);
  for (index_t j = 0; j < c; ++j) {
    for (index_t i = 0; i < r; ++i) mnorm[j] += mom(i, j) * mom(i, j);
    mnorm[j] = std::sqrt(mnorm[j]);
  }
  // y - alpha (gy + den (fy - gy)); v - num (hv - fy); fx - h
  out["batch_axpy_and_advance"] = out["batch_axpy"];
  out["advanced_counter"] = {8.0};
  out["single_point_y"] = each([&](index_t i, index_t j) {
    return Y(i, j) - double(in.alpha[j]) * (X(i, j) + double(in.den[j]) * (Z(i, j) - X(i, j)));
  });
  out["single_point_v"] = each([&](index_t i, index_t j) {
    return Z(i, j) - double(in.num[j]) * (Y(i, j) - Z(i, j));
  });
  out["single_point_h"] = each([&](index_t i, index_t j) { return X(i, j) - Y(i, j); });
  out["single_point_y_plain"] = each([&](index_t i, index_t j) {
    return Y(i, j) - double(in.alpha[j]) * X(i, j);
  });
  out["single_point_h_plain"] = each([&](index_t i, index_t j) { return -Y(i, j); });
  out["momentum_m"] = each(mom);
  out["hadamard"] = each([&](index_t i, index_t j) { return 0.5 * X(i, j) * Y(i, j) - 2 * Y(i, j); });
  out["exp"] = each([&](index_t i, index_t j) { return std::exp(0.25 * Y(i, j)); });
  out["normalized_axpy"] = each([&](index_t i, index_t j) {
    return j == 0 ? Y(i, j) : Y(i, j) - 0.5 * double(in.alpha[j]) * mom(i, j) / mnorm[j];
  });
  out["momentum_x"] = each([&](index_t i, index_t j) {
    return j == 0 ? Y(i, j) : Y(i, j) - 0.5 * double(in.alpha[j]) * mom(i, j) / mnorm[j];
  });
  return out;
}

// 70001 x 2: columns long enough that CUDA splits their reductions over several blocks
const Shape kShapes[] = {{1, 1}, {33, 3}, {257, 5}, {1001, 7}, {70001, 2}};

template <typename T>
class OpsTest : public ::testing::Test {};
using Precisions = ::testing::Types<float, double>;
TYPED_TEST_SUITE(OpsTest, Precisions);

TYPED_TEST(OpsTest, CpuKernelsMatchNaiveLoops) {
  using T = TypeParam;
  const double tol = std::is_same_v<T, float> ? 2e-5 : 1e-13;
  for (const Shape s : kShapes) {
    const Inputs<T> in(s, 100 + s.rows);
    const Outputs got = run_kernels<T>(cpu(), in);
    const Outputs want = reference(in);
    for (const auto& [name, values] : want) {
      SCOPED_TRACE(name + " at " + std::to_string(s.rows) + " x " + std::to_string(s.cols));
      EXPECT_LT(relative_error(got.at(name), values), tol);
    }
    EXPECT_GT(relative_error(got.at("add_normal"), to_double(in.y)), 0.1) << "noise was added";
    // add_normal: y + 0.5 N(0, 1): the noise has mean ~0 and variance ~0.25
    if (s.rows * s.cols > 1000) {
      double mean = 0, var = 0;
      const auto& a = got.at("add_normal");
      const index_t m = s.rows * s.cols;
      for (index_t k = 0; k < m; ++k) mean += (a[k] - double(in.y[k])) / m;
      for (index_t k = 0; k < m; ++k) var += std::pow(a[k] - double(in.y[k]) - mean, 2) / m;
      EXPECT_NEAR(mean, 0.0, 5 * 0.5 / std::sqrt(double(m)));
      EXPECT_NEAR(var, 0.25, 0.25 * 6 * std::sqrt(2.0 / m));
    }
    EXPECT_EQ(got.at("sample_indices_counted"), got.at("sample_indices"))
        << "a step read from the device counter draws the same batch";
    const auto& sets = got.at("sample_index_sets");
    const std::size_t half = sets.size() / 2;
    EXPECT_EQ(std::vector<double>(sets.begin(), sets.begin() + half), got.at("sample_indices"));
    EXPECT_EQ(std::vector<double>(sets.begin() + half, sets.end()), got.at("sample_index_set1"));
    if (s.rows > 1) {  // (population 1: every index is 0)
      EXPECT_NE(got.at("sample_index_set1"), got.at("sample_indices"));
    }
    {  // the epoch walk: each of the two whole epochs is a permutation of [0, rows)
      const auto& walk = got.at("sample_indices_epochs");
      std::vector<double> all(static_cast<std::size_t>(s.rows));
      for (index_t k = 0; k < s.rows; ++k) all[static_cast<std::size_t>(k)] = double(k);
      for (int e = 0; e < 2; ++e) {
        std::vector<double> epoch(walk.begin() + e * s.rows, walk.begin() + (e + 1) * s.rows);
        std::sort(epoch.begin(), epoch.end());
        EXPECT_EQ(epoch, all) << "epoch " << e;
      }
    }
    // indices: in range, and gather_rows picked those rows
    const auto& idx = got.at("sample_indices");
    const auto& g = got.at("gather_rows");
    for (std::size_t i = 0; i < idx.size(); ++i) {
      ASSERT_GE(idx[i], 0);
      ASSERT_LT(idx[i], s.rows);
      for (index_t j = 0; j < s.cols; ++j)
        EXPECT_EQ(g[i + j * idx.size()], static_cast<double>(in.y[static_cast<index_t>(idx[i]) + j * s.rows]));
    }
    if (s.rows > 2) {
      // the shard gather: sample k in [2, rows) is row k - 1 of the shard, others give 0
      const auto& sg = got.at("gather_rows_shard");
      for (std::size_t i = 0; i < idx.size(); ++i) {
        const index_t k = static_cast<index_t>(idx[i]);
        for (index_t j = 0; j < s.cols; ++j)
          EXPECT_EQ(sg[i + j * idx.size()],
                    k >= 2 && k < s.rows ? static_cast<double>(in.y[k - 1 + j * s.rows]) : 0.0)
              << "sample " << k;
      }
    }
  }
}

TYPED_TEST(OpsTest, CudaKernelsMatchCpuTwins) {
  using T = TypeParam;
  BILEVEL_REQUIRE_CUDA(gpu);
  for (const Shape s : kShapes) {
    const Inputs<T> in(s, 200 + s.rows);
    const Outputs want = run_kernels<T>(cpu(), in);
    const Outputs got = run_kernels<T>(gpu, in);
    for (const auto& [name, values] : want) {
      SCOPED_TRACE(name + " at " + std::to_string(s.rows) + " x " + std::to_string(s.cols));
      if (name.rfind("sample_ind", 0) == 0 || name == "counter" || name == "advanced_counter")
        EXPECT_EQ(got.at(name), values) << "minibatch indices must be bit-identical";
      else
        EXPECT_LT(relative_error(got.at(name), values), parity_tolerance<T>());
    }
  }
}

/// The CPU reductions (dot products, norms, the normalized-momentum norm) sum in one fixed order:
/// 1 to 4 threads, and every call, give the same bits (an OpenMP reduction did not with 3).
TEST(Ops, CpuReductionsGiveTheSameBitsForAnyThreadCount) {
  auto exec = cpu();
  Ops<double>& ops = exec->ops<double>();
  const index_t rows = 300001, cols = 2;
  std::vector<double> xs = random_vector<double>(rows * cols, 7), ys = random_vector<double>(rows * cols, 8);
  for (index_t i = 0; i < rows * cols; i += 7) xs[static_cast<std::size_t>(i)] *= 1e6;  // magnitudes apart
  const Array<double> x(exec, rows, cols, xs), y(exec, rows, cols, ys);
  const auto reduce = [&] {
    Array<double> dot(exec, 1, cols), norm(exec, 1, cols);
    ops.batch_dot(x.view(), y.view(), dot.data());
    ops.batch_nrm2(x.view(), norm.data());
    std::vector<double> out = dot.to_host(), n = norm.to_host();
    out.insert(out.end(), n.begin(), n.end());
    return out;
  };
  const int threads = omp_get_max_threads();
  omp_set_num_threads(1);
  const std::vector<double> one = reduce();
  for (int t : {2, 3, 4, 3}) {
    omp_set_num_threads(t);
    const std::vector<double> again = reduce();
    EXPECT_EQ(0, std::memcmp(one.data(), again.data(), one.size() * sizeof(double))) << t << " threads";
  }
  omp_set_num_threads(threads);
  // and they are the sums (to rounding)
  double dot0 = 0;
  for (index_t i = 0; i < rows; ++i) dot0 += xs[static_cast<std::size_t>(i)] * ys[static_cast<std::size_t>(i)];
  EXPECT_NEAR(one[0], dot0, 1e-9 * std::abs(dot0) + 1e-6);
}

/// gemm gives the same bits for any thread count, matrix-vector products (the per-sample losses
/// summed by a product with ones, as the linear model's values do) and skinny ones (the composed
/// oracles' logits, 512 x 10 x 784) included. Threaded, OpenBLAS split such products' sums over
/// its threads: the hyper-cleaning metrics of one run changed in their last bits between
/// --threads 1 and 2.
TEST(Ops, CpuGemmGivesTheSameBitsForAnyThreadCount) {
  auto exec = cpu();
  Ops<float>& ops = exec->ops<float>();
  struct Case {
    Op op_a, op_b;
    index_t m, n, k;
  };
  const Case cases[] = {{Op::transpose, Op::none, 2, 1, 200003},  // sums of two long columns
                        {Op::none, Op::none, 3001, 1, 700},       // A x
                        {Op::transpose, Op::none, 700, 1, 3001},  // A' x
                        {Op::none, Op::none, 1, 3, 100003},       // x' B
                        {Op::none, Op::transpose, 1, 500, 2001},  // x' B'
                        {Op::transpose, Op::none, 512, 10, 784},  // logits of a batch
                        {Op::none, Op::transpose, 784, 20, 3001},
                        {Op::none, Op::none, 1100, 130, 300}};    // several blocks each way
  const int threads = omp_get_max_threads();
  for (const Case& c : cases) {
    const index_t a_rows = c.op_a == Op::none ? c.m : c.k, a_cols = c.op_a == Op::none ? c.k : c.m;
    const index_t b_rows = c.op_b == Op::none ? c.k : c.n, b_cols = c.op_b == Op::none ? c.n : c.k;
    const std::vector<float> as = random_vector<float>(a_rows * a_cols, 11);
    const std::vector<float> bs = random_vector<float>(b_rows * b_cols, 12);
    const Array<float> a(exec, a_rows, a_cols, as), b(exec, b_rows, b_cols, bs);
    const auto product = [&] {
      Array<float> out(exec, c.m, c.n);
      ops.fill(out.view(), 0.5f);
      ops.gemm(c.op_a, c.op_b, 1.5f, a.view(), b.view(), 0.25f, out.view());
      return out.to_host();
    };
    omp_set_num_threads(1);
    const std::vector<float> one = product();
    for (int t : {2, 3, 4}) {
      omp_set_num_threads(t);
      const std::vector<float> again = product();
      EXPECT_EQ(0, std::memcmp(one.data(), again.data(), one.size() * sizeof(float)))
          << c.m << " x " << c.n << " x " << c.k << ", " << t << " threads";
    }
    omp_set_num_threads(threads);
    // and it is the product (to float rounding): out = 1.5 A B + 0.25 * 0.5
    for (index_t i = 0; i < c.m; i += std::max<index_t>(1, c.m / 7))
      for (index_t j = 0; j < c.n; j += std::max<index_t>(1, c.n / 5)) {
        double sum = 0, scale = 0;
        for (index_t kk = 0; kk < c.k; ++kk) {
          const double av = c.op_a == Op::none ? as[static_cast<std::size_t>(i + kk * a_rows)]
                                               : as[static_cast<std::size_t>(kk + i * a_rows)];
          const double bv = c.op_b == Op::none ? bs[static_cast<std::size_t>(kk + j * b_rows)]
                                               : bs[static_cast<std::size_t>(j + kk * b_rows)];
          sum += av * bv;
          scale += std::abs(av * bv);
        }
        EXPECT_NEAR(one[static_cast<std::size_t>(i + j * c.m)], 1.5 * sum + 0.125,
                    1e-5 * scale + 1e-5)
            << c.m << " x " << c.n << " x " << c.k << " at " << i << ", " << j;
      }
  }
}

TEST(Ops, ShapeErrorsNameTheKernel) {
  auto exec = cpu();
  Array<double> a(exec, 3, 2), b(exec, 4, 2), c(exec, 3, 2);
  Ops<double>& ops = exec->ops<double>();
  try {
    ops.gemm(Op::none, Op::none, 1.0, a.view(), b.view(), 0.0, c.view());
    FAIL() << "gemm accepted mismatched shapes";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("gemm: shapes do not match"), std::string::npos) << e.what();
  }
  try {
    ops.axpby(1.0, a.view(), 1.0, b.view());
    FAIL() << "axpby accepted mismatched shapes";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("axpby: shapes differ: 3 x 2 vs 4 x 2"), std::string::npos)
        << e.what();
  }
  EXPECT_THROW(ops.batch_axpy(1.0, nullptr, a.view(), c.view()), InvalidArgument);
  EXPECT_THROW(ops.sample_indices(1, 1, 1, 0, 0, 4, nullptr), InvalidArgument);
}

TEST(Executor, AutoFallsBackToCpuWithoutADevice) {
  std::string reason;
  const int devices = cuda_device_count(&reason);
  auto exec = make_executor(Backend::automatic);
  if (devices == 0) {
    EXPECT_EQ(exec->backend(), Backend::cpu);
    EXPECT_FALSE(reason.empty());
    EXPECT_THROW(make_executor(Backend::cuda), DeviceUnavailable);
  } else if (cuda_device_is_emulated()) {
    // the emulated device runs CUDA kernels to test them: only where asked for by name
    EXPECT_EQ(exec->backend(), Backend::cpu);
    auto emulated = make_executor(Backend::cuda);
    EXPECT_EQ(emulated->backend(), Backend::cuda);
    EXPECT_NE(emulated->device_name().find("emulated"), std::string::npos)
        << emulated->device_name();
  } else {
    EXPECT_EQ(exec->backend(), Backend::cuda);
  }
  EXPECT_EQ(parse_backend("cpu"), Backend::cpu);
  EXPECT_EQ(parse_backend("auto"), Backend::automatic);
  try {
    parse_backend("gpu");
    FAIL();
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("unknown backend 'gpu'"), std::string::npos);
  }
}

TEST(Array, UploadChecksSizeAndRoundTrips) {
  auto exec = cpu();
  const std::vector<float> v{1, 2, 3, 4, 5, 6};
  Array<float> a(exec, 3, 2, v);
  EXPECT_EQ(a.to_host(), v);
  EXPECT_THROW(Array<float>(exec, 4, 2, v), InvalidArgument);
  Array<float> moved = std::move(a);
  EXPECT_EQ(moved.to_host(), v);
  EXPECT_EQ(a.size(), 0);
}

// add_normal on a block of columns with `first` gives that block of the whole matrix's numbers
// (data generated chunk by chunk equals data generated at once).
TEST(Ops, AddNormalOfAColumnBlockMatchesTheWholeMatrix) {
  auto exec = cpu();
  Array<double> whole(exec, 5, 9), part(exec, 5, 4);
  exec->ops<double>().fill(whole.view(), 0.0);
  exec->ops<double>().fill(part.view(), 0.0);
  exec->ops<double>().add_normal(11, 2, 1.0, whole.view());
  exec->ops<double>().add_normal(11, 2, 1.0, part.view(), 3 * 5);  // columns 3 .. 6
  const std::vector<double> w = whole.to_host(), p = part.to_host();
  EXPECT_EQ(std::vector<double>(w.begin() + 15, w.begin() + 35), p);
  EXPECT_THROW(exec->ops<double>().add_normal(11, 2, 1.0, part.view(), -1), InvalidArgument);
}

}  // namespace
}  // namespace bilevel::test
