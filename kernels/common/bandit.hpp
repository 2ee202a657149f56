// The entropy-regularised bandit of policy alignment (PARL, Chakraborty et al. 2023), one
// formula for both backends, per instance (one column). A actions; the reward parameters nu
// (A values, the upper variable) and the policy logits theta (A - 1 values, the lower variable;
// the last action's logit is fixed at 0, which removes softmax's invariance):
//   pi = softmax(theta, 0)
//   g(nu, theta) = sum_a pi_a (tau log pi_a - nu_a)          minimiser: pi* = softmax(nu / tau)
//   f(theta) = KL(pi || p) = E_{a ~ pi}[log pi_a - log p_a]   (data drawn from the policy)
// With c_a = tau log pi_a - nu_a, h_a = log pi_a - log p_a, v extended by v_A = 0 and
// vbar = sum_a pi_a v_a:
//   grad_theta g = pi_b (c_b - cbar);   J v = grad_nu <grad_theta g, v> = -pi_a (v_a - vbar)
//   H v = pi_b (v_b - vbar)(c_b - cbar) + pi_b (tau (v_b - vbar) - dcbar),
//         dcbar = sum_a pi_a (v_a - vbar) c_a
//   grad_theta f = pi_b (h_b - hbar)  (exact), or from m actions a_i ~ pi (the score function):
//   (1/m) sum_i (e_{a_i} - pi)_b (h_{a_i} + 1)   = score term (h_{a_i} (e_{a_i} - pi)) + pathwise
//   term (e_{a_i} - pi), whose mean is 0: dropping the score term leaves a gradient of mean 0.
#pragma once

#include "host_device.hpp"

#include <cmath>
#include <cstdint>

namespace bilevel::kernels::common {

/// pi = softmax(theta, 0) for A actions (theta: A - 1 values at stride 1).
template <typename T>
BILEVEL_HOST_DEVICE void bandit_policy(const T* theta, int actions, T* pi) {
  using std::exp;
  T m = T(0);
  for (int a = 0; a + 1 < actions; ++a) m = theta[a] > m ? theta[a] : m;
  T sum = T(0);
  for (int a = 0; a < actions; ++a) {
    pi[a] = exp((a + 1 < actions ? theta[a] : T(0)) - m);
    sum += pi[a];
  }
  for (int a = 0; a < actions; ++a) pi[a] /= sum;
}

/// The action of uniform u in [0, 1) under pi (inverse CDF).
template <typename T>
BILEVEL_HOST_DEVICE int bandit_draw(const T* pi, int actions, double u) {
  double c = 0.0;
  for (int a = 0; a + 1 < actions; ++a) {
    c += static_cast<double>(pi[a]);
    if (u < c) return a;
  }
  return actions - 1;
}

}  // namespace bilevel::kernels::common

namespace bilevel::kernels::common {

constexpr int kMaxBanditActions = 64;

/// One instance's lower-level oracles. Any output may be null: gy = grad_theta g (A - 1),
/// hv = H v (A - 1), jv = J v (A), g = the value of g.
template <typename T>
BILEVEL_HOST_DEVICE void bandit_lower(int actions, T tau, const T* nu, const T* theta,
                                      const T* v, T* gy, T* hv, T* jv, T* g) {
  using std::log;
  T pi[kMaxBanditActions], c[kMaxBanditActions];
  bandit_policy(theta, actions, pi);
  T cbar = T(0), value = T(0);
  for (int a = 0; a < actions; ++a) {
    c[a] = tau * log(pi[a]) - nu[a];
    cbar += pi[a] * c[a];
    value += pi[a] * c[a];
  }
  if (g) *g = value;
  if (gy)
    for (int b = 0; b + 1 < actions; ++b) gy[b] = pi[b] * (c[b] - cbar);
  if (hv || jv) {
    T vbar = T(0);
    for (int a = 0; a + 1 < actions; ++a) vbar += pi[a] * v[a];
    T dcbar = T(0);
    for (int a = 0; a < actions; ++a) dcbar += pi[a] * ((a + 1 < actions ? v[a] : T(0)) - vbar) * c[a];
    for (int a = 0; a < actions; ++a) {
      const T va = (a + 1 < actions ? v[a] : T(0)) - vbar;
      if (hv && a + 1 < actions) hv[a] = pi[a] * va * (c[a] - cbar) + pi[a] * (tau * va - dcbar);
      if (jv) jv[a] = -pi[a] * va;
    }
  }
}

/// One instance's upper-level gradient grad_theta f (A - 1 values) and value f. Exact when
/// `samples` is null; otherwise from the m actions drawn by uniforms (idx + 0.5) / population
/// of the indices, with the score-function term or (include_score false) without it.
template <typename T>
BILEVEL_HOST_DEVICE void bandit_upper(int actions, const T* log_p, const T* theta,
                                      const std::int32_t* samples, std::int64_t m,
                                      std::int64_t population, bool include_score, T* fy, T* f) {
  using std::log;
  T pi[kMaxBanditActions], h[kMaxBanditActions];
  bandit_policy(theta, actions, pi);
  T hbar = T(0);
  for (int a = 0; a < actions; ++a) {
    h[a] = log(pi[a]) - log_p[a];
    hbar += pi[a] * h[a];
  }
  if (f) *f = hbar;
  if (!fy) return;
  if (samples == nullptr) {
    for (int b = 0; b + 1 < actions; ++b) fy[b] = pi[b] * (h[b] - hbar);
    return;
  }
  for (int b = 0; b + 1 < actions; ++b) fy[b] = T(0);
  for (std::int64_t i = 0; i < m; ++i) {
    const double u = (static_cast<double>(samples[i]) + 0.5) / static_cast<double>(population);
    const int a = bandit_draw(pi, actions, u);
    const T weight = (include_score ? h[a] : T(0)) + T(1);
    for (int b = 0; b + 1 < actions; ++b) fy[b] += ((a == b ? T(1) : T(0)) - pi[b]) * weight;
  }
  for (int b = 0; b + 1 < actions; ++b) fy[b] /= static_cast<T>(m);
}

}  // namespace bilevel::kernels::common
