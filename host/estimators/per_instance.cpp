#include <bilevel/estimators.hpp>

#include <cmath>

namespace bilevel {

std::vector<double> per_instance(const std::vector<double>& values, index_t instances,
                                 const std::string& what) {
  BILEVEL_EXPECTS(!values.empty(), what << ": no value given");
  BILEVEL_EXPECTS(values.size() == 1 || static_cast<index_t>(values.size()) == instances,
                  what << ": expected 1 value or one per instance (" << instances << "), got "
                       << values.size());
  for (double v : values)
    BILEVEL_EXPECTS(std::isfinite(v), what << ": value " << v << " is not finite");
  if (values.size() == 1) return std::vector<double>(static_cast<std::size_t>(instances), values[0]);
  return values;
}

}  // namespace bilevel
