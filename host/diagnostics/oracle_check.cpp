// check_oracles: every oracle of a problem along random directions, against central
// differences of the oracle below it (values -> gradients -> second-order products).
#include <bilevel/array.hpp>
#include <bilevel/diagnostics.hpp>
#include <bilevel/error.hpp>
#include <bilevel/ops.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <random>
#include <sstream>

namespace bilevel {
namespace {

template <typename T>
class OracleChecker {
 public:
  OracleChecker(Problem<T>& p, ConstMatrixView<T> x, ConstMatrixView<T> y,
                const OracleCheckOptions& o)
      : p_(p), exec_(p.executor()), ops_(exec_->template ops<T>()), nb_(x.cols),
        dx_(p.dim_x()), dy_(p.dim_y()), x_(exec_, dx_, nb_), y_(exec_, dy_, nb_) {
    BILEVEL_EXPECTS(x.rows == dx_ && y.rows == dy_ && y.cols == nb_ && nb_ > 0,
                    "check_oracles: x must be " << dx_ << " x B and y " << dy_ << " x B, got "
                                                << x.rows << " x " << x.cols << " and " << y.rows
                                                << " x " << y.cols);
    constexpr bool single = sizeof(T) < 8;
    h_ = o.step > 0 ? o.step : single ? 3e-2 : 1e-5;
    tol_ = o.tolerance > 0 ? o.tolerance : single ? 5e-2 : 1e-5;
    floor_ = std::sqrt(static_cast<double>(std::numeric_limits<T>::epsilon()));
    ops_.copy(x, x_.view());
    ops_.copy(y, y_.view());
    std::mt19937_64 rng(o.seed);
    u_ = direction(dx_, rng);  // along x
    v_ = direction(dy_, rng);  // along y
    w_ = direction(dy_, rng);  // a second one along y (the H v check's dot)
    dot_ = Array<T>(exec_, nb_, 1);
    p_.reserve(nb_, std::max<index_t>(1, std::max(p.lower_samples(), p.upper_samples())));
  }

  OracleCheckReport run() {
    OracleCheckReport r;
    // grad_y g and grad_y f against differences of the values along v
    const std::vector<double> gy_v = dots(gy_at(x_, y_), v_);
    Array<T> fx(exec_, dx_, nb_), fy(exec_, dy_, nb_);
    p_.grad_f(upper(), x_.cview(), y_.cview(), p_.upper_depends_on_x() ? fx.view() : MatrixView<T>(),
              fy.view());
    const auto [g_y, f_y] = value_differences(false);
    add(r, "grad_y g", "g along y", gy_v, g_y);
    add(r, "grad_y f", "f along y", dots(fy, v_), f_y);
    const auto [g_x, f_x] = value_differences(true);
    if (p_.upper_depends_on_x())
      add(r, "grad_x f", "f along x", dots(fx, u_), f_x);
    else
      r.skipped.push_back("grad_x f: upper_depends_on_x() is false (f does not depend on x)");
    // grad_x g, where provided
    try {
      Array<T> gx(exec_, dx_, nb_);
      p_.grad_x_g(lower(), x_.cview(), y_.cview(), gx.view());
      add(r, "grad_x g", "g along x", dots(gx, u_), g_x);
    } catch (const NotSupported& e) {
      r.skipped.push_back(std::string("grad_x g: ") + e.what());
    }
    // H v against differences of <grad_y g, w> along v; J v against those of <grad_y g, v>
    // along u, where provided (a gradient-only problem has neither)
    Array<T> hv(exec_, dy_, nb_), jv(exec_, dx_, nb_);
    try {
      p_.hvp_jvp(lower(), x_.cview(), y_.cview(), v_.cview(), hv.view(), jv.view());
    } catch (const NotSupported& e) {
      r.skipped.push_back(std::string("H v, J v: ") + e.what());
      return r;
    }
    add(r, "H v", "<grad_y g, w> along y", dots(hv, w_), gradient_difference(false, w_));
    add(r, "J v", "<grad_y g, v> along x", dots(jv, u_), gradient_difference(true, v_));
    return r;
  }

 private:
  // full batches, as a solver's sampler of size 0 hands them out
  Batch lower() const { return Batch{nullptr, p_.lower_samples(), p_.lower_samples()}; }
  Batch upper() const { return Batch{nullptr, p_.upper_samples(), p_.upper_samples()}; }

  /// Per instance a N(0, 1) direction scaled to unit norm.
  Array<T> direction(index_t rows, std::mt19937_64& rng) {
    std::normal_distribution<double> normal;
    std::vector<T> d(static_cast<std::size_t>(rows * nb_));
    for (index_t b = 0; b < nb_; ++b) {
      double sq = 0;
      std::vector<double> col(static_cast<std::size_t>(rows));
      for (auto& c : col) {
        c = normal(rng);
        sq += c * c;
      }
      const double inv = sq > 0 ? 1.0 / std::sqrt(sq) : 0.0;
      for (index_t i = 0; i < rows; ++i) d[i + b * rows] = static_cast<T>(col[i] * inv);
    }
    return Array<T>(exec_, rows, nb_, d);
  }

  /// Per instance <a_b, d_b>, by the kernel set (B values come back, not the arrays).
  std::vector<double> dots(const Array<T>& a, const Array<T>& d) {
    ops_.batch_dot(a.cview(), d.cview(), dot_.data());
    const std::vector<T> h = dot_.to_host();
    return std::vector<double>(h.begin(), h.end());
  }

  Array<T> gy_at(const Array<T>& x, const Array<T>& y) {
    Array<T> gy(exec_, dy_, nb_);
    p_.grad_y_g(lower(), x.cview(), y.cview(), gy.view());
    return gy;
  }

  /// x + s h u (along x) or y + s h v (along y), a copy; the other variable stays as it is.
  Array<T> moved(bool along_x, double s) {
    const Array<T>& point = along_x ? x_ : y_;
    Array<T> out(exec_, point.rows(), nb_);
    ops_.copy(point.cview(), out.view());
    ops_.axpby(static_cast<T>(s * h_), (along_x ? u_ : v_).cview(), T(1), out.view());
    return out;
  }

  /// Central differences of g and f along u (in x) or v (in y): {g', f'} per instance.
  std::pair<std::vector<double>, std::vector<double>> value_differences(bool along_x) {
    std::vector<double> g[2], f[2];
    Array<T> fo(exec_, nb_, 1), go(exec_, nb_, 1);
    for (int side = 0; side < 2; ++side) {
      const Array<T> shifted = moved(along_x, side == 0 ? 1.0 : -1.0);
      p_.values(lower(), upper(), (along_x ? shifted : x_).cview(),
                (along_x ? y_ : shifted).cview(), fo.data(), go.data());
      for (const T value : fo.to_host()) f[side].push_back(static_cast<double>(value));
      for (const T value : go.to_host()) g[side].push_back(static_cast<double>(value));
    }
    std::vector<double> dg(static_cast<std::size_t>(nb_)), df(static_cast<std::size_t>(nb_));
    for (index_t b = 0; b < nb_; ++b) {
      dg[b] = (g[0][b] - g[1][b]) / (2 * h_);
      df[b] = (f[0][b] - f[1][b]) / (2 * h_);
    }
    return {dg, df};
  }

  /// Central differences of <grad_y g, d> along u (in x) or v (in y).
  std::vector<double> gradient_difference(bool along_x, const Array<T>& d) {
    std::vector<double> side[2];
    for (int k = 0; k < 2; ++k) {
      const Array<T> shifted = moved(along_x, k == 0 ? 1.0 : -1.0);
      side[k] = dots(gy_at(along_x ? shifted : x_, along_x ? y_ : shifted), d);
    }
    std::vector<double> out(static_cast<std::size_t>(nb_));
    for (index_t b = 0; b < nb_; ++b) out[b] = (side[0][b] - side[1][b]) / (2 * h_);
    return out;
  }

  void add(OracleCheckReport& r, const char* oracle, const char* against,
           const std::vector<double>& analytic, const std::vector<double>& fd) const {
    for (index_t b = 0; b < nb_; ++b) {
      OracleCheck c;
      c.oracle = oracle;
      c.against = against;
      c.instance = b;
      c.analytic = analytic[b];
      c.finite_difference = fd[b];
      const double scale = std::max({std::abs(c.analytic), std::abs(c.finite_difference), floor_});
      c.relative_error = std::abs(c.analytic - c.finite_difference) / scale;
      // a NaN anywhere fails
      c.passed = c.relative_error <= tol_;
      r.checks.push_back(c);
    }
  }

  Problem<T>& p_;
  std::shared_ptr<Executor> exec_;
  Ops<T>& ops_;
  index_t nb_, dx_, dy_;
  Array<T> x_, y_, u_, v_, w_, dot_;
  double h_ = 0, tol_ = 0, floor_ = 0;
};

}  // namespace

bool OracleCheckReport::passed() const {
  return !checks.empty() &&
         std::all_of(checks.begin(), checks.end(), [](const OracleCheck& c) { return c.passed; });
}

std::string OracleCheckReport::text() const {
  std::ostringstream os;
  char line[200];
  std::snprintf(line, sizeof line, "%-9s %-22s %8s %15s %15s %10s\n", "oracle", "against",
                "instance", "oracle . w", "difference", "rel. error");
  os << line;
  for (const OracleCheck& c : checks) {
    std::snprintf(line, sizeof line, "%-9s %-22s %8lld %15.8g %15.8g %10.2e  %s\n",
                  c.oracle.c_str(), c.against.c_str(), static_cast<long long>(c.instance),
                  c.analytic, c.finite_difference, c.relative_error, c.passed ? "ok" : "WRONG");
    os << line;
  }
  for (const std::string& s : skipped) os << "not checked: " << s << "\n";
  return os.str();
}

template <typename T>
OracleCheckReport check_oracles(Problem<T>& problem, ConstMatrixView<T> x, ConstMatrixView<T> y,
                                const OracleCheckOptions& options) {
  return OracleChecker<T>(problem, x, y, options).run();
}

template OracleCheckReport check_oracles(Problem<float>&, ConstMatrixView<float>,
                                         ConstMatrixView<float>, const OracleCheckOptions&);
template OracleCheckReport check_oracles(Problem<double>&, ConstMatrixView<double>,
                                         ConstMatrixView<double>, const OracleCheckOptions&);

}  // namespace bilevel
