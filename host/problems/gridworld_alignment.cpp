// The policy-alignment gridworlds (problems/gridworld_alignment.hpp): instances drawn from the
// seed, the host-side references (soft value iteration, utilities) and the oracles from the
// gridworld kernels.
#include <bilevel/problems/gridworld_alignment.hpp>

#include "../../kernels/common/philox.hpp"
#include "../../kernels/gridworld_kernels.hpp"
#include "view_checks.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace bilevel {

namespace {
constexpr std::uint32_t kGridLayoutStream = 0x6c61796fu;  // "layo"

template <typename T>
kernels::common::GridParams<T> params(const GridworldAlignmentSpec& s) {
  kernels::common::GridParams<T> p;
  p.side = static_cast<int>(s.side);
  p.horizon = static_cast<int>(s.horizon);
  p.gamma = static_cast<T>(s.gamma);
  p.tau = static_cast<T>(s.tau);
  p.slip = static_cast<T>(s.slip);
  p.beta = static_cast<T>(s.beta);
  p.utility_feedback = s.utility_feedback;
  return p;
}

// Bellman sweeps until gamma^k < 1e-12: the evaluation's error is below 1e-12 / (1 - gamma).
int evaluation_sweeps(double gamma) {
  return static_cast<int>(std::ceil(std::log(1e-12) / std::log(gamma))) + 1;
}
}  // namespace

template <typename T>
struct GridworldAlignmentProblem<T>::Kernels {
  std::unique_ptr<kernels::GridworldKernels<T>> k;
};

template <typename T>
GridworldAlignmentProblem<T>::GridworldAlignmentProblem(std::shared_ptr<Executor> exec,
                                                        GridworldAlignmentSpec spec)
    : exec_(std::move(exec)), spec_(spec) {
  using namespace kernels::common;
  BILEVEL_EXPECTS(exec_ != nullptr, "GridworldAlignmentProblem needs an executor");
  BILEVEL_EXPECTS(spec_.side >= 2 && spec_.side <= kMaxGridSide,
                  "gridworld: side must be in [2, " << kMaxGridSide << "], got " << spec_.side);
  BILEVEL_EXPECTS(spec_.horizon >= 2 && spec_.horizon <= kMaxGridHorizon,
                  "gridworld: horizon must be in [2, " << kMaxGridHorizon << "], got "
                                                       << spec_.horizon);
  BILEVEL_EXPECTS(std::isfinite(spec_.gamma) && spec_.gamma > 0 && spec_.gamma <= 0.99,
                  "gridworld: gamma must be in (0, 0.99], got " << spec_.gamma);
  BILEVEL_EXPECTS(std::isfinite(spec_.slip) && spec_.slip >= 0 && spec_.slip <= 1,
                  "gridworld: slip must be in [0, 1], got " << spec_.slip);
  BILEVEL_EXPECTS(std::isfinite(spec_.tau) && spec_.tau > 0,
                  "gridworld: tau must be > 0, got " << spec_.tau);
  BILEVEL_EXPECTS(std::isfinite(spec_.beta) && spec_.beta > 0,
                  "gridworld: beta must be > 0, got " << spec_.beta);
  BILEVEL_EXPECTS(spec_.instances >= 1, "gridworld: instances must be >= 1");
  BILEVEL_EXPECTS(spec_.feedback_population >= 2 && spec_.feedback_population <= INT32_MAX,
                  "gridworld: feedback population must be in [2, 2^31)");
  BILEVEL_EXPECTS(spec_.evaluation_pairs >= 1 && spec_.evaluation_pairs <= spec_.feedback_population,
                  "gridworld: evaluation pairs must be in [1, feedback population]");
  const index_t ns = states(), nb = spec_.instances, nx = dim_x();
  utility_.assign(static_cast<std::size_t>(ns * nb), 0.0);
  initial_reward_.assign(static_cast<std::size_t>(nx * nb), 0.0);
  for (index_t b = 0; b < nb; ++b) {
    // goal, two traps and the decoy: four distinct cells drawn from the seed
    std::vector<index_t> cells;
    std::int64_t k = 0;
    while (cells.size() < 4) {
      const double u = uniform_open01(spec_.seed, kGridLayoutStream, 0,
                                      static_cast<std::uint32_t>(b), k++);
      const index_t c = std::min(static_cast<index_t>(u * static_cast<double>(ns)), ns - 1);
      if (std::find(cells.begin(), cells.end(), c) == cells.end()) cells.push_back(c);
    }
    double* u = utility_.data() + b * ns;
    u[cells[0]] = 1.0;
    u[cells[1]] = u[cells[2]] = -1.0;
    if (spec_.row_column_reward) {
      initial_reward_[static_cast<std::size_t>(b * nx + cells[3] / spec_.side)] = 0.5;
      initial_reward_[static_cast<std::size_t>(b * nx + spec_.side + cells[3] % spec_.side)] = 0.5;
    } else {
      initial_reward_[static_cast<std::size_t>(b * nx + cells[3])] = 1.0;
    }
  }
  if (spec_.row_column_reward) {
    // Phi (S x 2 side): state s has its row's and its column's feature
    std::vector<T> phi(static_cast<std::size_t>(ns * nx), T(0));
    for (index_t st = 0; st < ns; ++st) {
      phi[static_cast<std::size_t>(st + ns * (st / spec_.side))] = T(1);
      phi[static_cast<std::size_t>(st + ns * (spec_.side + st % spec_.side))] = T(1);
    }
    phi_ = Array<T>(exec_, ns, nx, phi);
    nu_ = Array<T>(exec_, ns, nb);
    nu_grad_ = Array<T>(exec_, ns, nb);
  }
  const GridParams<double> pd = params<double>(spec_);
  const int sweeps = evaluation_sweeps(spec_.gamma);
  for (index_t b = 0; b < nb; ++b) {
    j_star_.push_back(grid_true_utility(pd, (const double*)nullptr, utility_.data() + b * ns, true, sweeps));
    j_uniform_.push_back(
        grid_true_utility(pd, (const double*)nullptr, utility_.data() + b * ns, false, sweeps));
  }
  const auto to_t = [](const std::vector<double>& v) { return std::vector<T>(v.begin(), v.end()); };
  utility_dev_ = Array<T>(exec_, ns, nb, to_t(utility_));
  j_star_dev_ = Array<T>(exec_, nb, 1, to_t(j_star_));
  j_uniform_dev_ = Array<T>(exec_, nb, 1, to_t(j_uniform_));
  std::vector<std::int32_t> pairs(static_cast<std::size_t>(spec_.evaluation_pairs));
  std::iota(pairs.begin(), pairs.end(), 0);
  evaluation_pairs_ = Array<std::int32_t>(exec_, spec_.evaluation_pairs, 1, pairs);
  kernels_ = std::make_unique<Kernels>();
  kernels_->k = kernels::make_gridworld_kernels<T>(*exec_);
}

template <typename T>
GridworldAlignmentProblem<T>::~GridworldAlignmentProblem() = default;

template <typename T>
std::vector<double> GridworldAlignmentProblem<T>::state_reward(const std::vector<double>& x) const {
  const index_t ns = states(), nx = dim_x(), nb = spec_.instances;
  BILEVEL_EXPECTS(static_cast<index_t>(x.size()) == nx * nb,
                  "gridworld: the reward parameters must have " << nx * nb << " values ("
                                                                << nx << " x B), got " << x.size());
  if (!spec_.row_column_reward) return x;
  std::vector<double> nu(static_cast<std::size_t>(ns * nb));
  for (index_t b = 0; b < nb; ++b)
    for (index_t st = 0; st < ns; ++st)
      nu[static_cast<std::size_t>(b * ns + st)] =
          x[static_cast<std::size_t>(b * nx + st / spec_.side)] +
          x[static_cast<std::size_t>(b * nx + spec_.side + st % spec_.side)];
  return nu;
}

template <typename T>
std::vector<double> GridworldAlignmentProblem<T>::soft_optimal_q(const std::vector<double>& x) const {
  const index_t ns = states(), nq = 4 * ns, nb = spec_.instances;
  const std::vector<double> nu = state_reward(x);
  const auto p = params<double>(spec_);
  std::vector<double> q(static_cast<std::size_t>(nq * nb), 0.0), r(static_cast<std::size_t>(nq));
  for (index_t b = 0; b < nb; ++b) {
    double* qb = q.data() + b * nq;
    // a diverged instance's reward (not finite) has no policy: NaN, without iterating
    if (!std::all_of(nu.begin() + b * ns, nu.begin() + (b + 1) * ns,
                     [](double v) { return std::isfinite(v); })) {
      std::fill(qb, qb + nq, std::nan(""));
      continue;
    }
    for (int k = 0; k < 100000; ++k) {
      // Q <- T_nu Q  (Q - residual)
      kernels::common::grid_lower(p, nu.data() + b * ns, qb, (const double*)nullptr, r.data(),
                                  (double*)nullptr, (double*)nullptr, (double*)nullptr);
      double change = 0;
      for (index_t i = 0; i < nq; ++i) {
        qb[i] -= r[static_cast<std::size_t>(i)];
        change = std::max(change, std::abs(r[static_cast<std::size_t>(i)]));
      }
      if (change < 1e-12) break;
    }
  }
  return q;
}

template <typename T>
std::vector<double> GridworldAlignmentProblem<T>::true_utility(const std::vector<double>& q) const {
  const index_t ns = states(), nq = 4 * ns, nb = spec_.instances;
  BILEVEL_EXPECTS(static_cast<index_t>(q.size()) == nq * nb,
                  "gridworld: Q must have " << nq * nb << " values (4 S x B), got " << q.size());
  const auto p = params<double>(spec_);
  std::vector<double> j;
  for (index_t b = 0; b < nb; ++b)
    j.push_back(kernels::common::grid_true_utility(p, q.data() + b * nq, utility_.data() + b * ns,
                                                   false, evaluation_sweeps(spec_.gamma)));
  return j;
}

template <typename T>
std::vector<double> GridworldAlignmentProblem<T>::utility_ratio(const std::vector<double>& j) const {
  BILEVEL_EXPECTS(static_cast<index_t>(j.size()) == spec_.instances,
                  "gridworld: " << j.size() << " utilities for " << spec_.instances << " gridworlds");
  std::vector<double> r;
  for (std::size_t b = 0; b < j.size(); ++b)
    r.push_back((j[b] - j_uniform_[b]) / (j_star_[b] - j_uniform_[b]));
  return r;
}

template <typename T>
void GridworldAlignmentProblem<T>::check(const char* oracle, ConstMatrixView<T> x,
                                         ConstMatrixView<T> y) const {
  BILEVEL_EXPECTS(x.rows == dim_x() && y.rows == dim_y() && x.cols == spec_.instances &&
                      y.cols == spec_.instances && x.ld == x.rows && y.ld == y.rows,
                  "gridworld " << oracle << ": x must be " << dim_x() << " x " << spec_.instances
                               << " and y " << dim_y() << " x " << spec_.instances
                               << " (contiguous; one column per gridworld), got " << x.rows
                               << " x " << x.cols << " and " << y.rows << " x " << y.cols);
}

template <typename T>
const T* GridworldAlignmentProblem<T>::reward(ConstMatrixView<T> x) {
  if (!spec_.row_column_reward) return x.data;
  // nu = Phi w
  exec_->template ops<T>().gemm(Op::none, Op::none, T(1), phi_.cview(), x, T(0), nu_.view());
  return nu_.data();
}

template <typename T>
T* GridworldAlignmentProblem<T>::nu_output(MatrixView<T> out) {
  if (out.empty()) return nullptr;
  return spec_.row_column_reward ? nu_grad_.data() : out.data;
}

template <typename T>
void GridworldAlignmentProblem<T>::to_x(MatrixView<T> out) {
  if (out.empty() || !spec_.row_column_reward) return;
  // d/dw = Phi' d/dnu
  exec_->template ops<T>().gemm(Op::transpose, Op::none, T(1), phi_.cview(), nu_grad_.cview(), T(0),
                                out);
}

template <typename T>
void GridworldAlignmentProblem<T>::grad_y_g(const Batch& batch, ConstMatrixView<T> x,
                                            ConstMatrixView<T> y, MatrixView<T> out) {
  (void)batch;
  check("grad_y_g", x, y);
  detail::expect_contiguous<T>("gridworld", "grad_y_g's output", out, dim_y(), x.cols);
  // out = Q - T_nu Q  (the soft Bellman residual)
  kernels_->k->lower(params<T>(spec_), x.cols, reward(x), y.data, nullptr, out.data, nullptr,
                     nullptr, nullptr);
}

template <typename T>
void GridworldAlignmentProblem<T>::hvp_jvp(const Batch& batch, ConstMatrixView<T> x,
                                           ConstMatrixView<T> y, ConstMatrixView<T> v,
                                           MatrixView<T> hv, MatrixView<T> jv) {
  (void)batch;
  check("hvp_jvp", x, y);
  detail::expect_contiguous<T>("gridworld", "v", v, dim_y(), x.cols);
  detail::expect_contiguous<T>("gridworld", "hv", hv, dim_y(), x.cols);
  detail::expect_contiguous<T>("gridworld", "jv", jv, dim_x(), x.cols);
  // hv = v - gamma pi (P' v); jv = -sum_a v(s, a)  (row-column model: then jv <- Phi' jv);
  // neither reads nu, so no Phi w per product of the Neumann series
  kernels_->k->lower(params<T>(spec_), x.cols, nullptr, y.data, v.data, nullptr,
                     hv.empty() ? nullptr : hv.data, nu_output(jv), nullptr);
  to_x(jv);
}

template <typename T>
void GridworldAlignmentProblem<T>::feedback(const Batch& batch, ConstMatrixView<T> x,
                                            ConstMatrixView<T> y, bool include_score,
                                            MatrixView<T> fx, T* fy, T* f) {
  // a full batch is the fixed evaluation set of pairs 0 .. evaluation_pairs - 1
  const std::int32_t* samples = batch.full() ? evaluation_pairs_.data() : batch.indices;
  const index_t m = batch.full() ? spec_.evaluation_pairs : batch.size;
  BILEVEL_EXPECTS(batch.full() || batch.population == spec_.feedback_population,
                  "gridworld: a feedback batch drawn from " << batch.population
                                                            << " pair streams, expected "
                                                            << spec_.feedback_population);
  kernels_->k->feedback(params<T>(spec_), x.cols, reward(x), y.data, utility_dev_.data(),
                        spec_.seed, samples, m, batch.independent() ? batch.stride : 0,
                        include_score, nu_output(fx), fy, f);
  to_x(fx);
}

template <typename T>
void GridworldAlignmentProblem<T>::grad_f(const Batch& batch, ConstMatrixView<T> x,
                                          ConstMatrixView<T> y, MatrixView<T> fx,
                                          MatrixView<T> fy) {
  check("grad_f", x, y);
  detail::expect_contiguous<T>("gridworld", "fx", fx, dim_x(), x.cols);
  detail::expect_contiguous<T>("gridworld", "fy", fy, dim_y(), x.cols);
  // fx = (1/m) sum (sigma(R1 - R2) - z)(n1 - n2); fy = the score term (A-PARL) or 0
  feedback(batch, x, y, spec_.score_function_term, fx, fy.empty() ? nullptr : fy.data, nullptr);
}

template <typename T>
void GridworldAlignmentProblem<T>::score_function_term(const Batch& batch, ConstMatrixView<T> x,
                                                       ConstMatrixView<T> y, MatrixView<T> out) {
  check("score_function_term", x, y);
  detail::expect_contiguous<T>("gridworld", "the score term's output", out, dim_y(), x.cols);
  // out = 1/(m-1) sum (l - lbar) grad_Q log p(pair): f depends on Q only through its data
  feedback(batch, x, y, true, MatrixView<T>(), out.data, nullptr);
}

template <typename T>
void GridworldAlignmentProblem<T>::values(const Batch& lower, const Batch& upper_batch,
                                          ConstMatrixView<T> x, ConstMatrixView<T> y, T* f_out,
                                          T* g_out) {
  (void)lower, (void)upper_batch;
  check("values", x, y);
  // f = the mean loss on the fixed evaluation pairs; g = 0.5 ||Q - T_nu Q||^2
  if (f_out) feedback(Batch{}, x, y, false, MatrixView<T>(), nullptr, f_out);
  if (g_out)
    kernels_->k->lower(params<T>(spec_), x.cols, reward(x), y.data, nullptr, nullptr, nullptr,
                       nullptr, g_out);
}

template <typename T>
void GridworldAlignmentProblem<T>::evaluation_metrics(ConstMatrixView<T> x, ConstMatrixView<T> y,
                                                      T* out) {
  check("evaluation_metrics", x, y);
  // J(softmax(Q / tau)) and (J - J_uniform) / (J* - J_uniform), by policy evaluation
  kernels_->k->evaluate(params<T>(spec_), x.cols, y.data, utility_dev_.data(), j_star_dev_.data(),
                        j_uniform_dev_.data(), evaluation_sweeps(spec_.gamma), out);
}

template class GridworldAlignmentProblem<float>;
template class GridworldAlignmentProblem<double>;

}  // namespace bilevel
