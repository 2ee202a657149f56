// CallbackProblem for bilevel._bilevel (python/src/module.cpp): a problem whose oracles are
// Python callables, with the type slots that let Python's garbage collector see through them.
#pragma once

#include "conversions.hpp"

#include <memory>
#include <utility>

namespace bilevel::python {
namespace nb = nanobind;

/// A problem whose oracles are Python callables on one instance's (x, y) as NumPy vectors:
///   grad_y_g(x, y) -> gy;  grad_f(x, y) -> (fx, fy);  values(x, y) -> (f, g);
///   optional: hvp_jvp(x, y, v) -> (hv, jv);  grad_x_g(x, y) -> gx;
///   project_x(x) -> x, project_y(y) -> y (projections onto the feasible sets, after each step)
/// on the CPU executor, instances one after another. Without hvp_jvp the problem has gradients
/// only: the first-order presets run on it (BOME, V-PBGD, F2SA and F2BA with grad_x_g; PZOBO
/// and FOM without), the others stop with NotSupported naming what is missing. Deterministic
/// (full-batch) oracles, or, with lower_samples / upper_samples > 0 (g and f are sums over that
/// many samples), each callable also receives the batch's sample indices as a last argument (an
/// int64 NumPy array, or None for a full pass): grad_y_g, grad_x_g and hvp_jvp the lower
/// batch's, grad_f the upper batch's, values(x, y, lower, upper) both.
/// Vectorised (vectorized = true): each callable is called once for all B instances, with
/// (B, dim) arrays (row b: instance b) and returns (B, dim) arrays; values returns (f, g) as
/// two arrays of B numbers; the indices are one int64 array shared by the instances.
class CallbackProblem final : public Problem<double> {
 public:
  CallbackProblem(index_t dx, index_t dy, nb::callable grad_y_g, nb::callable grad_f,
                  nb::object hvp_jvp, nb::object values, index_t lower_samples,
                  index_t upper_samples, nb::object grad_x_g, nb::object project_x,
                  nb::object project_y, bool vectorized)
      : exec_(make_executor(Backend::cpu)), dx_(dx), dy_(dy), lower_samples_(lower_samples),
        upper_samples_(upper_samples), vectorized_(vectorized), grad_y_g_(std::move(grad_y_g)),
        grad_f_(std::move(grad_f)), hvp_jvp_(optional(std::move(hvp_jvp), "hvp_jvp")),
        values_(optional(std::move(values), "values")),
        grad_x_g_(optional(std::move(grad_x_g), "grad_x_g")),
        project_x_(optional(std::move(project_x), "project_x")),
        project_y_(optional(std::move(project_y), "project_y")) {
    if (!values_.is_valid())
      throw nb::type_error("CallbackProblem: values(x, y) -> (f, g) is required (the solver's "
                           "metrics and divergence checks read it)");
    BILEVEL_EXPECTS(dx > 0 && dy > 0, "CallbackProblem: dim_x and dim_y must be > 0, got "
                                          << dx << " and " << dy);
    BILEVEL_EXPECTS(lower_samples >= 0 && upper_samples >= 0,
                    "CallbackProblem: lower_samples and upper_samples must be >= 0 (0: the "
                    "callbacks compute whole g and f), got "
                        << lower_samples << " and " << upper_samples);
    BILEVEL_EXPECTS((lower_samples > 0) == (upper_samples > 0),
                    "CallbackProblem: give both lower_samples and upper_samples (the callbacks "
                    "then receive batch indices), or neither; got "
                        << lower_samples << " and " << upper_samples);
  }
  std::string name() const override { return "python callbacks"; }
  std::shared_ptr<Executor> executor() const override { return exec_; }
  index_t dim_x() const override { return dx_; }
  index_t dim_y() const override { return dy_; }
  index_t lower_samples() const override { return lower_samples_; }
  index_t upper_samples() const override { return upper_samples_; }
  bool capturable() const override { return false; }
  bool vectorized() const { return vectorized_; }

  void grad_y_g(const Batch& batch, ConstMatrixView<double> x, ConstMatrixView<double> y,
                MatrixView<double> out) override {
    if (vectorized_)
      return put_all(sampled() ? call(grad_y_g_, "grad_y_g", rows(x), rows(y), all_indices(batch, x.cols))
                               : call(grad_y_g_, "grad_y_g", rows(x), rows(y)),
                     dy_, "grad_y_g", out);
    for (index_t b = 0; b < x.cols; ++b)
      put(sampled() ? call(grad_y_g_, "grad_y_g", column(x, b), column(y, b), indices(batch, b))
                    : call(grad_y_g_, "grad_y_g", column(x, b), column(y, b)),
          dy_, "grad_y_g", out, b);
  }
  void grad_f(const Batch& batch, ConstMatrixView<double> x, ConstMatrixView<double> y,
              MatrixView<double> fx, MatrixView<double> fy) override {
    if (vectorized_) {
      nb::object r = sampled() ? call(grad_f_, "grad_f", rows(x), rows(y), all_indices(batch, x.cols))
                               : call(grad_f_, "grad_f", rows(x), rows(y));
      const auto pair = returned_pair<nb::object>(r, "grad_f", "(fx, fy)");
      if (!fx.empty()) put_all(pair.first, dx_, "grad_f (fx)", fx);
      return put_all(pair.second, dy_, "grad_f (fy)", fy);
    }
    for (index_t b = 0; b < x.cols; ++b) {
      nb::object r = sampled() ? call(grad_f_, "grad_f", column(x, b), column(y, b),
                                      indices(batch, b))
                               : call(grad_f_, "grad_f", column(x, b), column(y, b));
      const auto pair = returned_pair<nb::object>(r, "grad_f", "(fx, fy)");
      if (!fx.empty()) put(pair.first, dx_, "grad_f (fx)", fx, b);
      put(pair.second, dy_, "grad_f (fy)", fy, b);
    }
  }
  void grad_x_g(const Batch& batch, ConstMatrixView<double> x, ConstMatrixView<double> y,
                MatrixView<double> out) override {
    if (!grad_x_g_.is_valid())
      throw NotSupported("python callbacks: no grad_x_g callback (CallbackProblem(grad_x_g=...) "
                         "is needed by BOME, V-PBGD, F2SA, F2BA and LV-HBA)");
    if (vectorized_)
      return put_all(sampled() ? call(grad_x_g_, "grad_x_g", rows(x), rows(y), all_indices(batch, x.cols))
                               : call(grad_x_g_, "grad_x_g", rows(x), rows(y)),
                     dx_, "grad_x_g", out);
    for (index_t b = 0; b < x.cols; ++b)
      put(sampled() ? call(grad_x_g_, "grad_x_g", column(x, b), column(y, b), indices(batch, b))
                    : call(grad_x_g_, "grad_x_g", column(x, b), column(y, b)),
          dx_, "grad_x_g", out, b);
  }
  void hvp_jvp(const Batch& batch, ConstMatrixView<double> x, ConstMatrixView<double> y,
               ConstMatrixView<double> v, MatrixView<double> hv, MatrixView<double> jv) override {
    if (!hvp_jvp_.is_valid())
      throw NotSupported("python callbacks: no hvp_jvp callback, gradients only (the first-order "
                         "presets bome, v-pbgd, f2sa, f2ba, pzobo and fom run without it)");
    if (vectorized_) {
      nb::object r = sampled() ? call(hvp_jvp_, "hvp_jvp", rows(x), rows(y), rows(v),
                                      all_indices(batch, x.cols))
                               : call(hvp_jvp_, "hvp_jvp", rows(x), rows(y), rows(v));
      const auto pair = returned_pair<nb::object>(r, "hvp_jvp", "(hv, jv)");
      if (!hv.empty()) put_all(pair.first, dy_, "hvp_jvp (hv)", hv);
      if (!jv.empty()) put_all(pair.second, dx_, "hvp_jvp (jv)", jv);
      return;
    }
    for (index_t b = 0; b < x.cols; ++b) {
      nb::object r = sampled() ? call(hvp_jvp_, "hvp_jvp", column(x, b), column(y, b),
                                      column(v, b), indices(batch, b))
                               : call(hvp_jvp_, "hvp_jvp", column(x, b), column(y, b),
                                      column(v, b));
      const auto pair = returned_pair<nb::object>(r, "hvp_jvp", "(hv, jv)");
      if (!hv.empty()) put(pair.first, dy_, "hvp_jvp (hv)", hv, b);
      if (!jv.empty()) put(pair.second, dx_, "hvp_jvp (jv)", jv, b);
    }
  }
  /// The projections, one instance at a time (identity without a callback).
  void project_x(MatrixView<double> x) override { project(project_x_, "project_x", x); }
  void project_y(MatrixView<double> y) override { project(project_y_, "project_y", y); }
  void values(const Batch& lower, const Batch& upper, ConstMatrixView<double> x,
              ConstMatrixView<double> y, double* f_out, double* g_out) override {
    if (vectorized_) {
      nb::object r = sampled() ? call(values_, "values", rows(x), rows(y), all_indices(lower, x.cols),
                                      all_indices(upper, x.cols))
                               : call(values_, "values", rows(x), rows(y));
      const auto pair = returned_pair<nb::object>(r, "values", "(f, g) of arrays of B numbers");
      if (f_out) put_numbers(pair.first, x.cols, "values (f)", f_out);
      if (g_out) put_numbers(pair.second, x.cols, "values (g)", g_out);
      return;
    }
    for (index_t b = 0; b < x.cols; ++b) {
      nb::object r = sampled() ? call(values_, "values", column(x, b), column(y, b),
                                      indices(lower, b), indices(upper, b))
                               : call(values_, "values", column(x, b), column(y, b));
      const auto pair = returned_pair<double>(r, "values", "(f, g) of numbers");
      if (f_out) f_out[b] = pair.first;
      if (g_out) g_out[b] = pair.second;
    }
  }

 private:
  void project(const nb::object& f, const char* what, MatrixView<double> m) {
    if (!f.is_valid()) return;
    if (vectorized_) return put_all(call(f, what, rows(m)), m.rows, what, m);
    for (index_t b = 0; b < m.cols; ++b) put(call(f, what, column(m, b)), m.rows, what, m, b);
  }
  /// A callable, or an empty object for None; TypeError naming the argument for anything else.
  static nb::object optional(nb::object f, const char* what) {
    if (f.is_none()) return nb::object();
    if (!PyCallable_Check(f.ptr()))
      throw nb::type_error((std::string("CallbackProblem: ") + what + " must be callable or None, got " +
                            nb::type_name(f.type()).c_str())
                               .c_str());
    return f;
  }
  bool sampled() const { return lower_samples_ > 0; }
  /// Instance b's sample indices of a batch as an int64 NumPy array; None for a full pass.
  nb::object indices(const Batch& batch, index_t b) const {
    if (batch.full()) return nb::none();
    draw_batch_indices(*exec_, batch);
    const sample_index_t* first = batch.indices + (batch.independent() ? b * batch.stride : 0);
    auto* owned = new std::vector<std::int64_t>(first, first + batch.size);
    nb::capsule owner(owned,
                      [](void* p) noexcept { delete static_cast<std::vector<std::int64_t>*>(p); });
    const size_t shape[1] = {owned->size()};
    return nb::cast(nb::ndarray<nb::numpy, std::int64_t>(owned->data(), 1, shape, owner));
  }
  /// Every instance's sample indices: one int64 array shared by all (a (B, size) array if the
  /// batches were independent: this problem does not ask for them), None for a full pass.
  nb::object all_indices(const Batch& batch, index_t instances) const {
    if (batch.full()) return nb::none();
    draw_batch_indices(*exec_, batch);
    const index_t count = batch.independent() ? instances : 1;
    auto* owned = new std::vector<std::int64_t>();
    for (index_t b = 0; b < count; ++b) {
      const sample_index_t* first = batch.indices + b * batch.stride;
      owned->insert(owned->end(), first, first + batch.size);
    }
    nb::capsule owner(owned,
                      [](void* p) noexcept { delete static_cast<std::vector<std::int64_t>*>(p); });
    const size_t shape2[2] = {static_cast<size_t>(count), static_cast<size_t>(batch.size)};
    const size_t shape1[1] = {static_cast<size_t>(batch.size)};
    return batch.independent()
               ? nb::cast(nb::ndarray<nb::numpy, std::int64_t>(owned->data(), 2, shape2, owner))
               : nb::cast(nb::ndarray<nb::numpy, std::int64_t>(owned->data(), 1, shape1, owner));
  }
  /// The B instances of a (dim x B, column-major) matrix as a (B, dim) NumPy array.
  static nb::object rows(ConstMatrixView<double> m) {
    std::vector<double> values(static_cast<std::size_t>(m.rows * m.cols));
    for (index_t b = 0; b < m.cols; ++b)
      std::copy(m.data + b * m.ld, m.data + b * m.ld + m.rows, values.begin() + b * m.rows);
    return nb::cast(to_numpy(std::move(values),
                             {static_cast<size_t>(m.cols), static_cast<size_t>(m.rows)}));
  }
  static nb::object column(ConstMatrixView<double> m, index_t b) {
    return nb::cast(to_numpy(std::vector<double>(m.data + b * m.ld, m.data + b * m.ld + m.rows),
                             {static_cast<size_t>(m.rows)}));
  }
  /// A callback's result as a pair, or TypeError naming the callback, what it must return and
  /// the type it returned (not std::bad_cast).
  template <typename E>
  static std::pair<E, E> returned_pair(const nb::object& r, const char* what, const char* want) {
    std::pair<E, E> out;
    if (!nb::try_cast(r, out))
      throw nb::type_error((std::string("CallbackProblem: ") + what + " must return a pair " +
                            want + ", got " + nb::type_name(r.type()).c_str())
                               .c_str());
    return out;
  }
  template <typename... A>
  static nb::object call(const nb::handle& f, const char* what, A&&... args) {
    try {
      return f(std::forward<A>(args)...);
    } catch (nb::python_error& e) {
      if (e.matches(PyExc_KeyboardInterrupt)) throw Interrupted{};
      throw;
    }
  }
  /// Copies a returned array (anything NumPy can read, DLPack arrays included) into column b.
  static void put(const nb::object& value, index_t n, const char* what, MatrixView<double> out,
                  index_t b) {
    Vector v;
    if (!nb::try_cast(value, v))
      throw InvalidArgument(std::string("CallbackProblem: ") + what +
                            " must return a 1-D float64 CPU array (NumPy, or DLPack)");
    BILEVEL_EXPECTS(static_cast<index_t>(v.shape(0)) == n,
                    "CallbackProblem: " << what << " returned " << v.shape(0) << " values, expected "
                                        << n);
    std::copy(v.data(), v.data() + n, out.data + b * out.ld);
  }

  /// Copies a vectorised callback's (B, n) result into the B columns of out.
  static void put_all(const nb::object& value, index_t n, const char* what, MatrixView<double> out) {
    Matrix m;
    if (!nb::try_cast(value, m))
      throw InvalidArgument(std::string("CallbackProblem (vectorized): ") + what +
                            " must return a 2-D float64 CPU array of shape (instances, " +
                            std::to_string(n) + ") (NumPy, or DLPack)");
    BILEVEL_EXPECTS(static_cast<index_t>(m.shape(0)) == out.cols &&
                        static_cast<index_t>(m.shape(1)) == n,
                    "CallbackProblem (vectorized): " << what << " returned shape (" << m.shape(0)
                                                     << ", " << m.shape(1) << "), expected ("
                                                     << out.cols << ", " << n << ")");
    for (index_t b = 0; b < out.cols; ++b)
      std::copy(m.data() + b * n, m.data() + (b + 1) * n, out.data + b * out.ld);
  }
  /// B numbers (values' f or g) from a vectorised callback.
  static void put_numbers(const nb::object& value, index_t count, const char* what, double* out) {
    Vector v;
    if (!nb::try_cast(value, v))
      throw InvalidArgument(std::string("CallbackProblem (vectorized): ") + what +
                            " must be a 1-D float64 array of one number per instance");
    BILEVEL_EXPECTS(static_cast<index_t>(v.shape(0)) == count,
                    "CallbackProblem (vectorized): " << what << " has " << v.shape(0)
                                                     << " numbers, expected " << count
                                                     << " (one per instance)");
    std::copy(v.data(), v.data() + count, out);
  }

  std::shared_ptr<Executor> exec_;
  index_t dx_, dy_;
  index_t lower_samples_, upper_samples_;  // > 0: the callbacks receive batch indices
  bool vectorized_ = false;  // one call for all instances, (B, dim) arrays
  // hvp_jvp_, grad_x_g_ and the projections may be empty (not given)
  nb::object grad_y_g_, grad_f_, hvp_jvp_, values_, grad_x_g_, project_x_, project_y_;

 public:
  /// The callables, for Python's garbage collector: a lambda that refers to its own problem
  /// (through the module's globals) is a cycle the collector must see through.
  int traverse(visitproc visit, void* arg) {
    for (nb::object* c :
         {&grad_y_g_, &grad_f_, &hvp_jvp_, &values_, &grad_x_g_, &project_x_, &project_y_})
      if (c->is_valid()) Py_VISIT(c->ptr());
    return 0;
  }
  void clear() {
    for (nb::object* c :
         {&grad_y_g_, &grad_f_, &hvp_jvp_, &values_, &grad_x_g_, &project_x_, &project_y_})
      *c = nb::object();
  }
};

inline int callback_problem_traverse(PyObject* self, visitproc visit, void* arg) {
  Py_VISIT(Py_TYPE(self));
  if (!nb::inst_ready(self)) return 0;
  return nb::inst_ptr<CallbackProblem>(self)->traverse(visit, arg);
}

inline int callback_problem_clear(PyObject* self) {
  if (nb::inst_ready(self)) nb::inst_ptr<CallbackProblem>(self)->clear();
  return 0;
}

inline PyType_Slot callback_problem_slots[] = {
    {Py_tp_traverse, reinterpret_cast<void*>(callback_problem_traverse)},
    {Py_tp_clear, reinterpret_cast<void*>(callback_problem_clear)},
    {0, nullptr}};

}  // namespace bilevel::python
