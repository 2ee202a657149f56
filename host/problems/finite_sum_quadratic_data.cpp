// benchopt's quadratics on the host: the file reader and writer, a generator with benchopt's
// recipe, and the closed forms (double). See problems/finite_sum_quadratic.hpp.
#include <bilevel/problems/finite_sum_quadratic.hpp>

#include "../linalg/dense.hpp"
#include "../common/file_byte_order.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <random>

namespace bilevel {
namespace {

constexpr char kMagic[8] = {'B', 'L', 'Q', 'U', 'A', 'D', '0', '1'};

struct Sizes {
  index_t hyy, hxx, cross, ly, lx;
};

Sizes sizes_of(index_t dx, index_t dy) { return {dy * dy, dx * dx, dx * dy, dy, dx}; }

std::vector<double>* parts(FiniteSumQuadraticLevel& l, int k) {
  std::vector<double>* all[5] = {&l.hyy, &l.hxx, &l.cross, &l.ly, &l.lx};
  return all[k];
}
const std::vector<double>* parts(const FiniteSumQuadraticLevel& l, int k) {
  return parts(const_cast<FiniteSumQuadraticLevel&>(l), k);
}
index_t part_size(const Sizes& s, int k) {
  const index_t all[5] = {s.hyy, s.hxx, s.cross, s.ly, s.lx};
  return all[k];
}
const char* part_name(int k) {
  static const char* names[5] = {"Hyy", "Hxx", "C", "ly", "lx"};
  return names[k];
}

/// Householder reflection I - 2 u u' / u'u (orthogonal and symmetric), n x n.
std::vector<double> reflection(index_t n, std::mt19937_64& rng) {
  std::normal_distribution<double> normal;
  std::vector<double> u(static_cast<std::size_t>(n));
  double uu = 0;
  for (double& v : u) {
    v = normal(rng);
    uu += v * v;
  }
  std::vector<double> q = linalg::identity(n);
  for (index_t c = 0; c < n; ++c)
    for (index_t r = 0; r < n; ++r)
      q[static_cast<std::size_t>(r + c * n)] -= 2 * u[r] * u[c] / uu;
  return q;
}

/// U diag(d) U' for a random reflection U.
std::vector<double> with_spectrum(const std::vector<double>& d, std::mt19937_64& rng) {
  const index_t n = static_cast<index_t>(d.size());
  const std::vector<double> u = reflection(n, rng);
  std::vector<double> ud = u;
  for (index_t c = 0; c < n; ++c)
    for (index_t r = 0; r < n; ++r) ud[static_cast<std::size_t>(r + c * n)] *= d[c];
  return linalg::matmul(ud, u, n, n, n, false, true);
}

/// n values from 10^a to 10^b, evenly in the exponent (numpy's logspace).
std::vector<double> logspace(double a, double b, index_t n) {
  std::vector<double> out(static_cast<std::size_t>(std::max<index_t>(n, 0)));
  for (index_t i = 0; i < n; ++i)
    out[i] = std::pow(10.0, n == 1 ? a : a + (b - a) * double(i) / double(n - 1));
  return out;
}

/// One level by gen_matrices' recipe: Hyy_i = a a' with a = A_y z (A_y^2 with spectrum
/// [mu, 1]), Hxx_i = b b' with b = A_x z' (A_x^2 with spectrum {0} U [mu, 1]), C_i = (U D z'')
/// (V z'')' rank one with D's diagonal logspace(mu, cross), ly_i, lx_i ~ N(0, 1).
FiniteSumQuadraticLevel generate(index_t dx, index_t dy, index_t n, double mu, double cross,
                                 std::mt19937_64& rng) {
  std::normal_distribution<double> normal;
  std::vector<double> sy = logspace(std::log10(mu) / 2, 0.0, dy);
  std::vector<double> sx = logspace(std::log10(mu) / 2, 0.0, dx - 1);
  sx.insert(sx.begin(), 0.0);
  const std::vector<double> ay = with_spectrum(sy, rng), ax = with_spectrum(sx, rng);
  const std::vector<double> ux = reflection(dx, rng), vy = reflection(dy, rng);
  const index_t k = std::min(dx, dy);
  const std::vector<double> dc = logspace(std::log10(mu), std::log10(cross), k);
  FiniteSumQuadraticLevel l;
  l.n = n;
  const Sizes s = sizes_of(dx, dy);
  for (int p = 0; p < 5; ++p) parts(l, p)->resize(static_cast<std::size_t>(part_size(s, p) * n));
  std::vector<double> z(static_cast<std::size_t>(std::max(dx, dy)));
  for (index_t i = 0; i < n; ++i) {
    const auto outer = [](const std::vector<double>& a, index_t ra, const std::vector<double>& b,
                          index_t rb, double* out) {
      for (index_t c = 0; c < rb; ++c)
        for (index_t r = 0; r < ra; ++r) out[r + c * ra] = a[r] * b[c];
    };
    for (index_t j = 0; j < dy; ++j) z[j] = normal(rng);
    const std::vector<double> a = linalg::matmul(ay, std::vector<double>(z.begin(), z.begin() + dy), dy, 1, dy);
    outer(a, dy, a, dy, l.hyy.data() + i * s.hyy);
    for (index_t j = 0; j < dx; ++j) z[j] = normal(rng);
    const std::vector<double> b = linalg::matmul(ax, std::vector<double>(z.begin(), z.begin() + dx), dx, 1, dx);
    outer(b, dx, b, dx, l.hxx.data() + i * s.hxx);
    for (index_t j = 0; j < dy; ++j) z[j] = normal(rng);
    std::vector<double> dz(static_cast<std::size_t>(dx), 0.0);
    for (index_t j = 0; j < k; ++j) dz[j] = dc[j] * z[j];
    const std::vector<double> left = linalg::matmul(ux, dz, dx, 1, dx);
    const std::vector<double> right =
        linalg::matmul(vy, std::vector<double>(z.begin(), z.begin() + dy), dy, 1, dy);
    outer(left, dx, right, dy, l.cross.data() + i * s.cross);
    for (index_t j = 0; j < dy; ++j) l.ly[i * dy + j] = normal(rng);
    for (index_t j = 0; j < dx; ++j) l.lx[i * dx + j] = normal(rng);
  }
  return l;
}

}  // namespace

/// The Hessian of F (dx x dx): J' Hf_yy J + Hf_xx + C_f J + (C_f J)', J = -Hg_yy^{-1} C_g'.
std::vector<double> FiniteSumQuadraticData::value_function_hessian() const {
  const FiniteSumQuadraticData& q = *this;
  const index_t dx = q.dx, dy = q.dy;
  const Sizes s = sizes_of(dx, dy);
  const std::vector<double> g = q.mean(q.inner), f = q.mean(q.outer);
  const auto block = [](const std::vector<double>& m, index_t offset, index_t size) {
    return std::vector<double>(m.begin() + offset, m.begin() + offset + size);
  };
  const std::vector<double> hg = block(g, 0, s.hyy), cg = block(g, s.hyy + s.hxx, s.cross);
  const std::vector<double> hf = block(f, 0, s.hyy), hfx = block(f, s.hyy, s.hxx),
                            cf = block(f, s.hyy + s.hxx, s.cross);
  // J = -Hg^{-1} C_g' (dy x dx)
  std::vector<double> j = linalg::spd_solve(hg, linalg::matmul(cg, linalg::identity(dx), dy, dx, dx, true), dy, dx);
  for (double& v : j) v = -v;
  std::vector<double> h = linalg::matmul(j, linalg::matmul(hf, j, dy, dx, dy), dx, dx, dy, true);
  const std::vector<double> cj = linalg::matmul(cf, j, dx, dx, dy);
  for (index_t c = 0; c < dx; ++c)
    for (index_t r = 0; r < dx; ++r)
      h[r + c * dx] += hfx[r + c * dx] + cj[r + c * dx] + cj[c + r * dx];
  return h;
}

void FiniteSumQuadraticData::validate() const {
  BILEVEL_EXPECTS(dx > 0 && dy > 0, "finite-sum quadratic: dx and dy must be > 0, got " << dx
                                                                                       << ", " << dy);
  const Sizes s = sizes_of(dx, dy);
  for (const auto* l : {&inner, &outer}) {
    const char* which = l == &inner ? "inner" : "outer";
    BILEVEL_EXPECTS(l->n > 0, "finite-sum quadratic: the " << which << " level has no samples");
    for (int p = 0; p < 5; ++p) {
      const std::vector<double>& v = *parts(*l, p);
      BILEVEL_EXPECTS(static_cast<index_t>(v.size()) == part_size(s, p) * l->n,
                      "finite-sum quadratic: " << which << " " << part_name(p) << " has "
                                               << v.size() << " values, expected "
                                               << part_size(s, p) * l->n);
      for (std::size_t i = 0; i < v.size(); ++i)
        BILEVEL_EXPECTS(std::isfinite(v[i]), "finite-sum quadratic: " << which << " "
                                                 << part_name(p) << " of sample "
                                                 << i / part_size(s, p) << " is not finite");
    }
    // each sample's Hyy and Hxx symmetric (the gradients use H y, not (H + H') y / 2)
    for (int p = 0; p < 2; ++p) {
      const index_t d = p == 0 ? dy : dx;
      const std::vector<double>& h = *parts(*l, p);
      for (index_t i = 0; i < l->n; ++i)
        for (index_t c = 0; c < d; ++c)
          for (index_t r = 0; r < c; ++r) {
            const double a = h[i * d * d + r + c * d], b = h[i * d * d + c + r * d];
            BILEVEL_EXPECTS(std::abs(a - b) <= 1e-6 * (std::abs(a) + std::abs(b)) + 1e-300,
                            "finite-sum quadratic: " << which << " " << part_name(p)
                                                     << " of sample " << i
                                                     << " is not symmetric (entry " << r << ", "
                                                     << c << ": " << a << " against " << b << ")");
          }
    }
  }
}

std::vector<double> FiniteSumQuadraticData::mean(const FiniteSumQuadraticLevel& l) const {
  const Sizes s = sizes_of(dx, dy);
  std::vector<double> out;
  out.reserve(static_cast<std::size_t>(packed_rows()));
  for (int p = 0; p < 5; ++p) {
    // sample by sample (sequential reads: a 3 GB level in one pass), sums in sample order
    const index_t size = part_size(s, p);
    const std::vector<double>& v = *parts(l, p);
    std::vector<double> sum(static_cast<std::size_t>(size), 0.0);
    for (index_t i = 0; i < l.n; ++i) {
      const double* sample = v.data() + i * size;
      for (index_t r = 0; r < size; ++r) sum[r] += sample[r];
    }
    for (const double t : sum) out.push_back(t / static_cast<double>(l.n));
  }
  return out;
}

std::vector<double> FiniteSumQuadraticData::solution_y(const std::vector<double>& x) const {
  const Sizes s = sizes_of(dx, dy);
  const std::vector<double> g = mean(inner);
  std::vector<double> rhs = linalg::matmul(
      std::vector<double>(g.begin() + s.hyy + s.hxx, g.begin() + s.hyy + s.hxx + s.cross), x, dy,
      1, dx, true);
  for (index_t j = 0; j < dy; ++j) rhs[j] = -(rhs[j] + g[s.hyy + s.hxx + s.cross + j]);
  return linalg::spd_solve(std::vector<double>(g.begin(), g.begin() + s.hyy), rhs, dy, 1);
}

std::vector<double> FiniteSumQuadraticData::hypergradient(const std::vector<double>& x) const {
  const Sizes s = sizes_of(dx, dy);
  const std::vector<double> g = mean(inner), f = mean(outer);
  const index_t oc = s.hyy + s.hxx, oly = oc + s.cross, olx = oly + s.ly;
  const std::vector<double> y = solution_y(x);
  const std::vector<double> cf(f.begin() + oc, f.begin() + oly), cg(g.begin() + oc, g.begin() + oly);
  // fy = Hf_yy y + C_f' x + ly_f;  fx = Hf_xx x + C_f y + lx_f
  std::vector<double> fy = linalg::matmul(std::vector<double>(f.begin(), f.begin() + s.hyy), y, dy, 1, dy);
  const std::vector<double> ctx = linalg::matmul(cf, x, dy, 1, dx, true);
  for (index_t j = 0; j < dy; ++j) fy[j] += ctx[j] + f[oly + j];
  std::vector<double> fx = linalg::matmul(std::vector<double>(f.begin() + s.hyy, f.begin() + oc), x, dx, 1, dx);
  const std::vector<double> cy = linalg::matmul(cf, y, dx, 1, dy);
  for (index_t j = 0; j < dx; ++j) fx[j] += cy[j] + f[olx + j];
  // grad F = fx + J' fy = fx - C_g Hg^{-1} fy
  const std::vector<double> w =
      linalg::spd_solve(std::vector<double>(g.begin(), g.begin() + s.hyy), fy, dy, 1);
  const std::vector<double> cw = linalg::matmul(cg, w, dx, 1, dy);
  for (index_t j = 0; j < dx; ++j) fx[j] -= cw[j];
  return fx;
}

std::vector<double> FiniteSumQuadraticData::solution_x() const {
  // grad F(x) = G x + grad F(0): x* = -G^{-1} grad F(0)
  std::vector<double> rhs = hypergradient(std::vector<double>(static_cast<std::size_t>(dx), 0.0));
  for (double& v : rhs) v = -v;
  std::vector<double> x;
  try {
    x = linalg::spd_solve(value_function_hessian(), rhs, dx, 1);
  } catch (const InvalidArgument&) {
    throw InvalidArgument(
        "finite-sum quadratic: the Hessian of the value function F is not positive definite "
        "(benchopt's generator draws again until it is): no unique x*");
  }
  return x;
}

std::pair<double, double> FiniteSumQuadraticData::lower_hessian_spectrum() const {
  const std::vector<double> g = mean(inner);
  const std::vector<double> e =
      linalg::symmetric_eigenvalues(std::vector<double>(g.begin(), g.begin() + dy * dy), dy);
  return {e.front(), e.back()};
}

FiniteSumQuadraticData FiniteSumQuadraticData::random(index_t dx, index_t dy, index_t n_inner,
                                                      index_t n_outer, double mu,
                                                      std::uint64_t seed) {
  BILEVEL_EXPECTS(dx > 1 && dy > 0 && n_inner > 0 && n_outer > 0 && mu > 0 && mu < 1,
                  "finite-sum quadratic: random needs dx > 1, dy > 0, samples > 0 and mu in "
                  "(0, 1)");
  std::mt19937_64 rng(seed);
  for (int attempt = 0; attempt < 20; ++attempt) {
    FiniteSumQuadraticData q;
    q.dx = dx;
    q.dy = dy;
    // benchopt's defaults: L = 1 for both Hessians, L_cross 0.1
    q.inner = generate(dx, dy, n_inner, mu, 0.1, rng);
    q.outer = generate(dx, dy, n_outer, mu, 0.1, rng);
    const std::vector<double> e = linalg::symmetric_eigenvalues(q.value_function_hessian(), dx);
    if (e.front() >= 1e-12 && q.lower_hessian_spectrum().first > 0) return q;
  }
  throw InvalidArgument("finite-sum quadratic: no strongly convex value function in 20 draws");
}

FiniteSumQuadraticData FiniteSumQuadraticData::read(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  BILEVEL_EXPECTS(in.good(), path << ": cannot open");
  in.seekg(0, std::ios::end);
  const auto bytes = static_cast<std::uint64_t>(in.tellg());
  in.seekg(0);
  char magic[8];
  std::uint64_t header[4];
  BILEVEL_EXPECTS(bytes >= sizeof magic + sizeof header, path << ": " << bytes
                      << " bytes, shorter than the header of a quadratics file (40)");
  in.read(magic, sizeof magic);
  BILEVEL_EXPECTS(std::memcmp(magic, kMagic, sizeof magic) == 0,
                  path << ": not a quadratics file (it does not start with BLQUAD01; "
                          "bench/compare/benchopt_quadratic_data.py writes them)");
  in.read(reinterpret_cast<char*>(header), sizeof header);
  const std::uint64_t limit = std::uint64_t(1) << 20;
  for (int i = 0; i < 4; ++i)
    BILEVEL_EXPECTS(header[i] > 0 && header[i] <= (i < 2 ? 65536 : limit),
                    path << ": header field " << (i == 0 ? "dx" : i == 1 ? "dy" : i == 2 ? "n_inner" : "n_outer")
                         << " = " << header[i] << " is out of range");
  FiniteSumQuadraticData q;
  q.dx = static_cast<index_t>(header[0]);
  q.dy = static_cast<index_t>(header[1]);
  q.inner.n = static_cast<index_t>(header[2]);
  q.outer.n = static_cast<index_t>(header[3]);
  const Sizes s = sizes_of(q.dx, q.dy);
  // values the header announces: packed_rows() < 3 x 2^32 + 2^17 (dx, dy <= 2^16) and n <= 2^20
  // per level, so 40 + 8 x (both levels' values) < 2^58 cannot wrap in 64 bits
  std::uint64_t values = 0;
  for (const auto* l : {&q.inner, &q.outer})
    values += static_cast<std::uint64_t>(l->n) * static_cast<std::uint64_t>(q.packed_rows());
  const std::uint64_t expected = 40 + 8 * values;
  BILEVEL_EXPECTS(expected == bytes,
                  path << ": " << bytes << " bytes, but its header (dx " << q.dx << ", dy " << q.dy
                       << ", " << q.inner.n << " inner and " << q.outer.n
                       << " outer samples) announces "
                       << static_cast<unsigned long long>(expected));
  for (auto* l : {&q.inner, &q.outer})
    for (int p = 0; p < 5; ++p) {
      std::vector<double>& v = *parts(*l, p);
      v.resize(static_cast<std::size_t>(part_size(s, p) * l->n));
      in.read(reinterpret_cast<char*>(v.data()), static_cast<std::streamsize>(v.size() * 8));
      BILEVEL_EXPECTS(in.good(), path << ": read error in " << part_name(p));
    }
  try {
    q.validate();
  } catch (const InvalidArgument& e) {
    throw InvalidArgument(path + ": " + e.what());
  }
  BILEVEL_EXPECTS(q.lower_hessian_spectrum().first > 0,
                  path << ": the mean Hyy of the inner level is not positive definite (g is not "
                          "strongly convex in y)");
  return q;
}

void FiniteSumQuadraticData::write(const std::string& path) const {
  validate();
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  BILEVEL_EXPECTS(out.good(), path << ": cannot write");
  out.write(kMagic, sizeof kMagic);
  const std::uint64_t header[4] = {static_cast<std::uint64_t>(dx), static_cast<std::uint64_t>(dy),
                                   static_cast<std::uint64_t>(inner.n),
                                   static_cast<std::uint64_t>(outer.n)};
  out.write(reinterpret_cast<const char*>(header), sizeof header);
  for (const auto* l : {&inner, &outer})
    for (int p = 0; p < 5; ++p) {
      const std::vector<double>& v = *parts(*l, p);
      out.write(reinterpret_cast<const char*>(v.data()), static_cast<std::streamsize>(v.size() * 8));
    }
  BILEVEL_EXPECTS(out.good(), path << ": write error");
}

}  // namespace bilevel
