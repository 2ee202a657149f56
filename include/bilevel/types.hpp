// Basic types of the public API: index type, backends, non-owning column-major views.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <type_traits>

namespace bilevel {

using index_t = std::int64_t;

/// Where the work runs. `automatic` picks CUDA when a device exists, the CPU otherwise.
enum class Backend { cpu, cuda, automatic };

std::string to_string(Backend backend);
/// Parses "cpu", "cuda" or "auto"; throws InvalidArgument naming the text otherwise.
Backend parse_backend(const std::string& text);

/// Non-owning view of a column-major matrix on an executor's memory. State of B instances is a
/// rows x B matrix: column b belongs to instance b.
template <typename T>
struct MatrixView {
  T* data = nullptr;
  index_t rows = 0;
  index_t cols = 0;
  index_t ld = 0;  ///< leading dimension (>= rows)

  MatrixView() = default;
  MatrixView(T* d, index_t r, index_t c) : data(d), rows(r), cols(c), ld(r) {}
  MatrixView(T* d, index_t r, index_t c, index_t l) : data(d), rows(r), cols(c), ld(l) {}

  bool empty() const { return data == nullptr; }
  index_t size() const { return rows * cols; }
  /// Column j (one instance) as a rows x 1 view.
  MatrixView col(index_t j) const { return MatrixView(data + j * ld, rows, 1, ld); }
  /// A view of T converts to a view of const T.
  template <typename U = T, typename = std::enable_if_t<!std::is_const_v<U>>>
  operator MatrixView<const U>() const {
    return MatrixView<const U>(data, rows, cols, ld);
  }
};

template <typename T>
using ConstMatrixView = MatrixView<const T>;

/// Transpose flag of GEMM.
enum class Op { none, transpose };

}  // namespace bilevel
