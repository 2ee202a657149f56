// Typed exceptions. Every failure names what failed and where.
#pragma once

#include <bilevel/types.hpp>

#include <sstream>
#include <stdexcept>
#include <string>

namespace bilevel {

/// Base of every exception the library throws.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

/// A caller passed a wrong shape, size, name or value.
class InvalidArgument : public Error {
 public:
  explicit InvalidArgument(const std::string& what) : Error(what) {}
};

/// A CUDA runtime call or kernel launch failed.
class CudaError : public Error {
 public:
  explicit CudaError(const std::string& what) : Error(what) {}
};

/// A cuBLAS call failed.
class CublasError : public Error {
 public:
  explicit CublasError(const std::string& what) : Error(what) {}
};

/// The CUDA backend was asked for where no usable device exists. Not a failure of the
/// library: `Backend::automatic` falls back to the CPU.
class DeviceUnavailable : public Error {
 public:
  explicit DeviceUnavailable(const std::string& what) : Error(what) {}
};

/// An iterate or loss became non-finite.
class DivergenceError : public Error {
 public:
  DivergenceError(const std::string& what, long iteration, long instance)
      : Error(what), iteration_(iteration), instance_(instance) {}
  long iteration() const { return iteration_; }
  long instance() const { return instance_; }

 private:
  long iteration_;
  long instance_;
};

/// A problem does not provide an oracle that an algorithm needs.
class NotSupported : public Error {
 public:
  explicit NotSupported(const std::string& what) : Error(what) {}
};

namespace detail {
[[noreturn]] void throw_invalid_argument(const char* file, int line, const std::string& message);
}  // namespace detail

/// a * b for sizes that come from files or the command line: throws InvalidArgument naming
/// `what` when an operand is negative or the product does not fit in 63 bits (instead of a
/// wrapped product and a small buffer written past its end).
index_t checked_mul(index_t a, index_t b, const std::string& what);
/// a + b, likewise.
index_t checked_add(index_t a, index_t b, const std::string& what);

}  // namespace bilevel

/// Rejects a wrong argument: BILEVEL_EXPECTS(n > 0, "n must be positive, got " << n).
#define BILEVEL_EXPECTS(cond, message)                                              \
  do {                                                                              \
    if (!(cond)) {                                                                  \
      std::ostringstream bilevel_expects_os_;                                       \
      bilevel_expects_os_ << message;                                               \
      ::bilevel::detail::throw_invalid_argument(__FILE__, __LINE__,                 \
                                                bilevel_expects_os_.str());         \
    }                                                                               \
  } while (0)
