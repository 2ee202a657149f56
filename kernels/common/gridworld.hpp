// Policy alignment on tabular gridworlds (PARL, issue #14 (b)), one formula for both backends,
// per instance (one MDP, one column). A side x side grid, S = side^2 states, 4 moves (up,
// down, left, right; a move into the border stays), slip: with probability `slip` the move is
// drawn uniformly instead. The upper variable is a state reward nu (S values), the lower one
// the soft Q-values (4 S values, Q[4 s + a]); the lower level is the entropy-regularised
// optimal policy for nu, the fixed point of the soft Bellman operator
//   (T_nu Q)(s, a) = nu_s + gamma E_{s' ~ P(.|s, a)} V(s'),   V(s) = tau log sum_a exp(Q(s, a) / tau),
// with pi(a|s) = softmax(Q(s, .) / tau). The lower level is a root-finding problem
// Phi(nu, Q) = Q - T_nu Q = 0 rather than a minimisation, so the "gradient" oracle returns the
// residual Phi (a step of 1 on it is soft value iteration), and the second-order oracle returns
// the transposed Jacobian products that implicit differentiation needs:
//   hv = (dPhi/dQ)' v:  hv(s', a') = v(s', a') - gamma pi(a'|s') w(s'),  w(s') = sum_{s,a} P(s'|s,a) v(s,a)
//   jv = (dPhi/dnu)' v: jv(s) = -sum_a v(s, a)
// (for a minimisation Phi = grad_y g and these are H v and J v). Solving hv(v) = fy by the
// Neumann series converges at rate gamma.
//
// Preference feedback (the default): a pair of trajectories of H steps from a uniform start
// under pi, each scored by
// R_nu(tau) = sum_t gamma^t nu_{s_t} and by the true utility U(tau) = sum_t gamma^t u_{s_t};
// a simulated person prefers the first with probability sigma((U1 - U2) / beta)
// (Bradley-Terry), and the upper loss is the reward model's negative log-likelihood of that
// answer, l = softplus(-(2 z - 1)(R1 - R2)). Its gradients on m pairs:
//   fx = (1/m) sum_i (sigma(R1 - R2) - z_i)(n1_i - n2_i)        (n: discounted state visits)
//   fy = 1/(m - 1) sum_i (l_i - lbar)(grad_Q log p(tau1_i) + grad_Q log p(tau2_i))
// where grad_Q(s, a) log p(tau) = sum_t [s_t = s](e_{a_t} - pi(.|s_t))_a / tau: the
// score-function term of the data's dependence on the policy, with the batch mean lbar as its
// baseline (the 1 / (m - 1) keeps it unbiased). Utility feedback (PARL's other instance): the
// person reports U of both trajectories and the loss is l = -(U1 + U2) / 2, so fx = 0 and the
// upper objective is the policy's expected (truncated) true utility, reached only through the
// score term. Every random number of pair i comes from one
// Philox stream keyed by (seed, pair index, instance), so a pair is the same pair on both
// backends and in every call.
#pragma once

#include "host_device.hpp"
#include "philox.hpp"

#include <cmath>
#include <cstdint>

namespace bilevel::kernels::common {

constexpr int kGridMoves = 4;
constexpr int kMaxGridSide = 8;
constexpr int kMaxGridStates = kMaxGridSide * kMaxGridSide;
constexpr int kMaxGridHorizon = 64;
constexpr std::uint32_t kGridFeedbackStream = 0x67726964u;  // "grid"

template <typename T>
struct GridParams {
  int side = 5;
  int horizon = 15;
  T gamma = T(0.9), tau = T(0.2), slip = T(0.1), beta = T(1);
  bool utility_feedback = false;  ///< l = -(U1 + U2) / 2 instead of the preference loss
  BILEVEL_HOST_DEVICE int states() const { return side * side; }
};

/// The state a move leads to (0 up, 1 down, 2 left, 3 right; the border stops it).
BILEVEL_HOST_DEVICE int grid_next(int side, int s, int move) {
  int r = s / side, c = s % side;
  if (move == 0 && r > 0) --r;
  else if (move == 1 && r + 1 < side) ++r;
  else if (move == 2 && c > 0) --c;
  else if (move == 3 && c + 1 < side) ++c;
  return r * side + c;
}

/// E_{s' ~ P(.|s, a)} V(s').
template <typename T>
BILEVEL_HOST_DEVICE T grid_expect(const GridParams<T>& p, const T* value, int s, int a) {
  T mean = T(0);
  for (int m = 0; m < kGridMoves; ++m) mean += value[grid_next(p.side, s, m)];
  return (T(1) - p.slip) * value[grid_next(p.side, s, a)] + p.slip * mean / T(kGridMoves);
}

/// V(s) = tau log sum_a exp(Q(s, a) / tau) of one state's 4 Q-values; pi (optional) gets
/// softmax(Q(s, .) / tau).
template <typename T>
BILEVEL_HOST_DEVICE T grid_soft_value(const T* q_s, T tau, T* pi) {
  using std::exp;
  using std::log;
  T m = q_s[0];
  for (int a = 1; a < kGridMoves; ++a) m = q_s[a] > m ? q_s[a] : m;
  T e[kGridMoves], sum = T(0);
  for (int a = 0; a < kGridMoves; ++a) {
    e[a] = exp((q_s[a] - m) / tau);
    sum += e[a];
  }
  if (pi)
    for (int a = 0; a < kGridMoves; ++a) pi[a] = e[a] / sum;
  return m + tau * log(sum);
}

/// One instance's lower-level oracles; any output may be null: gy = Phi(nu, Q) (4 S), hv =
/// (dPhi/dQ)' v (4 S), jv = (dPhi/dnu)' v (S), g = 0.5 ||Phi||^2.
template <typename T>
BILEVEL_HOST_DEVICE void grid_lower(const GridParams<T>& p, const T* nu, const T* q, const T* v,
                                    T* gy, T* hv, T* jv, T* g) {
  const int ns = p.states();
  if (gy || g) {
    T value[kMaxGridStates];
    for (int s = 0; s < ns; ++s) value[s] = grid_soft_value(q + kGridMoves * s, p.tau, (T*)nullptr);
    T sq = T(0);
    for (int s = 0; s < ns; ++s)
      for (int a = 0; a < kGridMoves; ++a) {
        const T r = q[kGridMoves * s + a] - (nu[s] + p.gamma * grid_expect(p, value, s, a));
        if (gy) gy[kGridMoves * s + a] = r;
        sq += r * r;
      }
    if (g) *g = sq / T(2);
  }
  if (hv) {
    T w[kMaxGridStates];
    for (int s = 0; s < ns; ++s) w[s] = T(0);
    for (int s = 0; s < ns; ++s)
      for (int a = 0; a < kGridMoves; ++a) {
        const T vsa = v[kGridMoves * s + a];
        w[grid_next(p.side, s, a)] += (T(1) - p.slip) * vsa;
        for (int m = 0; m < kGridMoves; ++m)
          w[grid_next(p.side, s, m)] += p.slip * vsa / T(kGridMoves);
      }
    for (int s = 0; s < ns; ++s) {
      T pi[kGridMoves];
      grid_soft_value(q + kGridMoves * s, p.tau, pi);
      for (int a = 0; a < kGridMoves; ++a)
        hv[kGridMoves * s + a] = v[kGridMoves * s + a] - p.gamma * pi[a] * w[s];
    }
  }
  if (jv)
    for (int s = 0; s < ns; ++s) {
      T sum = T(0);
      for (int a = 0; a < kGridMoves; ++a) sum += v[kGridMoves * s + a];
      jv[s] = -sum;
    }
}

/// Uniform numbers k = 0, 1, ... in (0, 1) of one Philox stream (four per block).
struct GridUniforms {
  std::uint64_t seed;
  std::uint32_t pair, instance;
  std::int64_t k = 0;
  Philox4x32 block{};
  BILEVEL_HOST_DEVICE GridUniforms(std::uint64_t seed_, std::uint32_t pair_, std::uint32_t instance_)
      : seed(seed_), pair(pair_), instance(instance_) {}
  BILEVEL_HOST_DEVICE double next() {
    if ((k & 3) == 0)
      block = philox4x32_10(Philox4x32{{static_cast<std::uint32_t>(k >> 2), instance,
                                        kGridFeedbackStream, pair}},
                            static_cast<std::uint32_t>(seed), static_cast<std::uint32_t>(seed >> 32));
    const double u = (static_cast<double>(block.v[k & 3]) + 0.5) * (1.0 / 4294967296.0);
    ++k;
    return u;
  }
};

/// One trajectory of H states from a uniform start under pi = softmax(Q / tau); 1 + 3 (H - 1)
/// uniforms whatever happens. states: H values, actions: H - 1 (the last state's action leads
/// nowhere that is scored), probs: pi(.|s_t) of those H - 1 steps (4 each);
/// R = sum_t gamma^t nu_{s_t}, U = sum_t gamma^t u_{s_t}.
template <typename T>
BILEVEL_HOST_DEVICE void grid_rollout(const GridParams<T>& p, const T* q, const T* nu,
                                      const T* utility, GridUniforms& rng, int* states,
                                      int* actions, T* probs, T& reward, T& utility_sum) {
  const int ns = p.states();
  int s = static_cast<int>(rng.next() * ns);
  s = s < ns ? s : ns - 1;
  T discount = T(1);
  reward = utility_sum = T(0);
  for (int t = 0; t < p.horizon; ++t) {
    states[t] = s;
    reward += discount * nu[s];
    utility_sum += discount * utility[s];
    discount *= p.gamma;
    if (t + 1 == p.horizon) break;
    T* pi = probs + kGridMoves * t;
    grid_soft_value(q + kGridMoves * s, p.tau, pi);
    const double ua = rng.next(), us = rng.next(), ud = rng.next();
    int a = kGridMoves - 1;
    double c = 0.0;
    for (int b = 0; b + 1 < kGridMoves; ++b) {
      c += static_cast<double>(pi[b]);
      if (ua < c) {
        a = b;
        break;
      }
    }
    actions[t] = a;
    int move = a;
    if (us < static_cast<double>(p.slip)) {
      move = static_cast<int>(ud * kGridMoves);
      move = move < kGridMoves ? move : kGridMoves - 1;
    }
    s = grid_next(p.side, s, move);
  }
}

template <typename T>
BILEVEL_HOST_DEVICE T grid_sigmoid(T z) {
  using std::exp;
  return z >= T(0) ? T(1) / (T(1) + exp(-z)) : exp(z) / (T(1) + exp(z));
}

template <typename T>
BILEVEL_HOST_DEVICE T grid_softplus(T z) {
  using std::exp;
  using std::log1p;
  return z > T(0) ? z + log1p(exp(-z)) : log1p(exp(z));
}

/// One feedback pair: both trajectories (with the policy at each step), the simulated answer z
/// (1: the first is preferred), the loss l and sigma(R1 - R2).
template <typename T>
struct GridPair {
  int states[2][kMaxGridHorizon];
  int actions[2][kMaxGridHorizon];
  T probs[2][kMaxGridHorizon * kGridMoves];
  T z = T(0), loss = T(0), p_first = T(0);
};

template <typename T>
BILEVEL_HOST_DEVICE void grid_pair(const GridParams<T>& p, const T* q, const T* nu,
                                   const T* utility, std::uint64_t seed, std::uint32_t pair,
                                   std::uint32_t instance, GridPair<T>& out) {
  GridUniforms rng(seed, pair, instance);
  T r1, u1, r2, u2;
  grid_rollout(p, q, nu, utility, rng, out.states[0], out.actions[0], out.probs[0], r1, u1);
  grid_rollout(p, q, nu, utility, rng, out.states[1], out.actions[1], out.probs[1], r2, u2);
  const double coin = rng.next();
  if (p.utility_feedback) {
    // the reported utilities: no reward model in the loss (fx = 0: p_first = z)
    out.z = out.p_first = T(0);
    out.loss = -(u1 + u2) / T(2);
    return;
  }
  out.z = coin < static_cast<double>(grid_sigmoid((u1 - u2) / p.beta)) ? T(1) : T(0);
  const T delta = r1 - r2;
  out.loss = grid_softplus(-(T(2) * out.z - T(1)) * delta);
  out.p_first = grid_sigmoid(delta);
}

/// One instance's feedback oracles on m pairs (indices samples[0..m)); any output may be null:
/// fx (S), fy (4 S; zero when include_score is false: the dependence ignored), f = mean loss.
/// One pass over the pairs: the score term sum_i (l_i - lbar) g_i is accumulated as
/// sum_i l_i g_i - lbar sum_i g_i (g_i = grad_Q log p(pair i)), so no pair is rolled out twice.
template <typename T>
BILEVEL_HOST_DEVICE void grid_feedback(const GridParams<T>& p, const T* nu, const T* q,
                                       const T* utility, std::uint64_t seed,
                                       std::uint32_t instance, const std::int32_t* samples,
                                       std::int64_t m, bool include_score, T* fx, T* fy, T* f) {
  const int ns = p.states();
  GridPair<T> pr;
  const bool score = fy != nullptr && include_score && m > 0;
  T g_sum[kGridMoves * kMaxGridStates];  // sum_i g_i (the baseline's coefficient)
  if (fx)
    for (int s = 0; s < ns; ++s) fx[s] = T(0);
  if (fy)
    for (int i = 0; i < kGridMoves * ns; ++i) fy[i] = g_sum[i] = T(0);
  T total = T(0);
  for (std::int64_t i = 0; i < m; ++i) {
    grid_pair(p, q, nu, utility, seed, static_cast<std::uint32_t>(samples[i]), instance, pr);
    total += pr.loss;
    if (fx) {
      // d l / d nu = (sigma(R1 - R2) - z)(n1 - n2)
      const T c = (pr.p_first - pr.z) / static_cast<T>(m);
      T discount = T(1);
      for (int t = 0; t < p.horizon; ++t) {
        fx[pr.states[0][t]] += c * discount;
        fx[pr.states[1][t]] -= c * discount;
        discount *= p.gamma;
      }
    }
    if (score)
      // fy += l_i g_i;  g_sum += g_i   (g_i(s, a) = sum_t [s_t = s](e_{a_t} - pi(.|s_t))_a)
      for (int j = 0; j < 2; ++j)
        for (int t = 0; t + 1 < p.horizon; ++t) {
          const int s = pr.states[j][t];
          const T* pi = pr.probs[j] + kGridMoves * t;
          for (int a = 0; a < kGridMoves; ++a) {
            const T g = (a == pr.actions[j][t] ? T(1) : T(0)) - pi[a];
            fy[kGridMoves * s + a] += pr.loss * g;
            g_sum[kGridMoves * s + a] += g;
          }
        }
  }
  const T mean = m > 0 ? total / static_cast<T>(m) : T(0);
  if (f) *f = mean;
  if (!score) return;
  // fy = 1/(m - 1) (sum_i l_i g_i - lbar sum_i g_i) / tau   (m = 1: no baseline)
  const T scale = (m > 1 ? T(1) / static_cast<T>(m - 1) : T(1)) / p.tau;
  const T baseline = m > 1 ? mean : T(0);
  for (int i = 0; i < kGridMoves * ns; ++i) fy[i] = (fy[i] - baseline * g_sum[i]) * scale;
}

/// Policy evaluation of the true utility: J = (1/S) sum_s V(s), V = u + gamma P_pi V, for the
/// policy pi = softmax(Q / tau) (q non-null), the uniform policy (q null, greedy false) or the
/// optimal one (greedy: V = u + gamma max_a E V). `iterations` Bellman sweeps from V = 0.
template <typename T>
BILEVEL_HOST_DEVICE T grid_true_utility(const GridParams<T>& p, const T* q, const T* utility,
                                        bool greedy, int iterations) {
  const int ns = p.states();
  T value[kMaxGridStates], next[kMaxGridStates];
  for (int s = 0; s < ns; ++s) value[s] = T(0);
  for (int k = 0; k < iterations; ++k) {
    for (int s = 0; s < ns; ++s) {
      T pi[kGridMoves] = {T(0.25), T(0.25), T(0.25), T(0.25)};
      if (q) grid_soft_value(q + kGridMoves * s, p.tau, pi);
      T acc = T(0), best = T(0);
      for (int a = 0; a < kGridMoves; ++a) {
        const T e = grid_expect(p, value, s, a);
        acc += pi[a] * e;
        best = (a == 0 || e > best) ? e : best;
      }
      next[s] = utility[s] + p.gamma * (greedy ? best : acc);
    }
    for (int s = 0; s < ns; ++s) value[s] = next[s];
  }
  T mean = T(0);
  for (int s = 0; s < ns; ++s) mean += value[s];
  return mean / static_cast<T>(ns);
}

}  // namespace bilevel::kernels::common
