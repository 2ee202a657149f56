// Arrays between Python and the library for bilevel._bilevel (python/src/module.cpp): the
// NumPy / DLPack array types taken, labels checked one by one, results handed back as NumPy.
#pragma once

#include <bilevel/bilevel.hpp>

#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>

#include <Python.h>

#include <cmath>
#include <cstdint>
#include <iomanip>
#include <string>
#include <vector>

namespace bilevel::python {
namespace nb = nanobind;

using Vector = nb::ndarray<const double, nb::ndim<1>, nb::c_contig, nb::device::cpu>;
using Matrix = nb::ndarray<const double, nb::ndim<2>, nb::c_contig, nb::device::cpu>;
/// Labels of any integer or floating dtype, checked one by one (a conversion to int32 by
/// NumPy would wrap 2**32 + 1 to 1 and truncate 1.5 to 1 without a word).
using Labels = nb::ndarray<nb::ro, nb::ndim<1>, nb::device::cpu>;

/// The labels as int32, or InvalidArgument naming `what` and the first label that is not an
/// integer below 2^31 in magnitude.
inline std::vector<std::int32_t> label_values(const Labels& labels, const char* what) {
  const nb::dlpack::dtype t = labels.dtype();
  const auto code = static_cast<nb::dlpack::dtype_code>(t.code);
  const bool integer = code == nb::dlpack::dtype_code::Int || code == nb::dlpack::dtype_code::UInt;
  const bool floating = code == nb::dlpack::dtype_code::Float;
  BILEVEL_EXPECTS((integer && (t.bits == 8 || t.bits == 16 || t.bits == 32 || t.bits == 64)) ||
                      (floating && (t.bits == 32 || t.bits == 64)),
                  what << ": labels must be integers (or floats holding integers), got a dtype of "
                       << int(t.bits) << "-bit " << (floating ? "floats" : "other values"));
  const std::size_t n = labels.shape(0);
  const auto* base = static_cast<const unsigned char*>(labels.data());
  const std::int64_t stride = labels.stride(0) * static_cast<std::int64_t>(t.bits / 8);
  std::vector<std::int32_t> out(n);
  for (std::size_t i = 0; i < n; ++i) {
    const unsigned char* p = base + static_cast<std::int64_t>(i) * stride;
    long double v = 0;
    if (floating) {
      v = t.bits == 32 ? *reinterpret_cast<const float*>(p) : *reinterpret_cast<const double*>(p);
    } else if (code == nb::dlpack::dtype_code::Int) {
      v = t.bits == 8    ? *reinterpret_cast<const std::int8_t*>(p)
          : t.bits == 16 ? *reinterpret_cast<const std::int16_t*>(p)
          : t.bits == 32 ? *reinterpret_cast<const std::int32_t*>(p)
                         : static_cast<long double>(*reinterpret_cast<const std::int64_t*>(p));
    } else {
      v = t.bits == 8    ? *reinterpret_cast<const std::uint8_t*>(p)
          : t.bits == 16 ? *reinterpret_cast<const std::uint16_t*>(p)
          : t.bits == 32 ? *reinterpret_cast<const std::uint32_t*>(p)
                         : static_cast<long double>(*reinterpret_cast<const std::uint64_t*>(p));
    }
    BILEVEL_EXPECTS(std::isfinite(static_cast<double>(v)) && v == std::floor(v) &&
                        std::fabs(static_cast<double>(v)) <= 2147483647.0,
                    what << "[" << i << "] is " << std::setprecision(17)
                         << static_cast<double>(v)
                         << ": a label must be an integer below 2^31 in magnitude");
    out[i] = static_cast<std::int32_t>(v);
  }
  return out;
}

/// A NumPy array owning `values`, of the given shape (C order).
inline nb::ndarray<nb::numpy, double> to_numpy(std::vector<double> values, std::vector<size_t> shape) {
  auto* owned = new std::vector<double>(std::move(values));
  nb::capsule owner(owned, [](void* p) noexcept { delete static_cast<std::vector<double>*>(p); });
  return nb::ndarray<nb::numpy, double>(owned->data(), shape.size(), shape.data(), owner);
}

/// Rows (samples) x features, labels: a Dataset (features stored as float, as the readers do).
inline Dataset to_dataset(const Matrix& x, const Labels& labels, int classes, const char* what) {
  BILEVEL_EXPECTS(x.shape(0) == labels.shape(0),
                  what << ": " << x.shape(0) << " rows of features but " << labels.shape(0)
                       << " labels");
  Dataset d;
  d.source = what;
  d.samples = static_cast<index_t>(x.shape(0));
  d.features = static_cast<index_t>(x.shape(1));
  d.classes = classes;
  d.x.assign(x.data(), x.data() + x.size());
  const std::vector<std::int32_t> values = label_values(labels, (std::string(what) + "_y").c_str());
  d.labels.assign(values.begin(), values.end());
  d.validate();
  return d;
}

/// The three splits of a linear-model problem (HypercleanProblem, L2TuningProblem).
inline HypercleanData splits_of(const Matrix& train_x, const Labels& train_y, const Matrix& val_x,
                                const Labels& val_y, const Matrix& test_x, const Labels& test_y,
                                int classes, bool bias) {
  HypercleanData data;
  data.train = to_dataset(train_x, train_y, classes, "train");
  data.validation = to_dataset(val_x, val_y, classes, "validation");
  data.test = to_dataset(test_x, test_y, classes, "test");
  data.bias = bias;
  return data;
}

/// Stopped from Python (Ctrl-C) at an evaluation: the solve returns the state reached.
struct Interrupted {};

}  // namespace bilevel::python
