// The out-of-line parts of error.hpp: BILEVEL_EXPECTS's throw, and checked size arithmetic
// (products and sums of sizes that come from files or the command line).
#include <bilevel/error.hpp>

#include <string>

namespace bilevel {

namespace detail {
void throw_invalid_argument(const char* file, int line, const std::string& message) {
  (void)file;
  (void)line;
  throw InvalidArgument(message);
}
}  // namespace detail

index_t checked_mul(index_t a, index_t b, const std::string& what) {
  BILEVEL_EXPECTS(a >= 0 && b >= 0, what << ": negative size (" << a << " x " << b << ")");
  index_t out = 0;
  BILEVEL_EXPECTS(!__builtin_mul_overflow(a, b, &out),
                  what << ": " << a << " x " << b << " overflows a 64-bit size");
  return out;
}

index_t checked_add(index_t a, index_t b, const std::string& what) {
  BILEVEL_EXPECTS(a >= 0 && b >= 0, what << ": negative size (" << a << " + " << b << ")");
  index_t out = 0;
  BILEVEL_EXPECTS(!__builtin_add_overflow(a, b, &out),
                  what << ": " << a << " + " << b << " overflows a 64-bit size");
  return out;
}

}  // namespace bilevel
