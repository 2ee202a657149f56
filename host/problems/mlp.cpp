// MlpSpec: the parameter layout of one task's network, and its seeded initialisation.
#include <bilevel/error.hpp>
#include <bilevel/problems/mlp.hpp>

#include "../../kernels/common/philox.hpp"

#include <cmath>

namespace bilevel {

Activation parse_activation(const std::string& name) {
  if (name == "relu") return Activation::relu;
  if (name == "tanh") return Activation::tanh;
  throw InvalidArgument("unknown activation '" + name + "' (known: relu tanh)");
}

std::string to_string(Activation a) { return a == Activation::relu ? "relu" : "tanh"; }

void MlpSpec::validate() const {
  BILEVEL_EXPECTS(widths.size() >= 2,
                  "mlp: widths must name the inputs and the outputs at least, got "
                      << widths.size() << " value(s)");
  for (std::size_t i = 0; i < widths.size(); ++i)
    BILEVEL_EXPECTS(widths[i] >= 1 && widths[i] <= (index_t(1) << 20),
                    "mlp: width " << i << " must be in [1, 2^20], got " << widths[i]);
}

index_t MlpSpec::weight_offset(index_t layer) const {
  index_t offset = 0;
  for (index_t l = 1; l < layer; ++l) {
    const index_t w = widths[static_cast<std::size_t>(l)];
    offset += w * widths[static_cast<std::size_t>(l - 1)] + w;
  }
  return offset;
}

index_t MlpSpec::bias_offset(index_t layer) const {
  return weight_offset(layer) +
         widths[static_cast<std::size_t>(layer)] * widths[static_cast<std::size_t>(layer - 1)];
}

index_t MlpSpec::parameters() const { return weight_offset(layers() + 1); }

std::vector<double> mlp_initial_parameters(const MlpSpec& spec, std::uint64_t seed) {
  spec.validate();
  std::vector<double> p(static_cast<std::size_t>(spec.parameters()), 0.0);
  for (index_t l = 1; l <= spec.layers(); ++l) {
    const index_t out = spec.widths[static_cast<std::size_t>(l)];
    const index_t in = spec.widths[static_cast<std::size_t>(l - 1)];
    // Glorot uniform: U(-r, r), r = sqrt(6 / (in + out)); biases 0
    const double r = std::sqrt(6.0 / static_cast<double>(in + out));
    const index_t offset = spec.weight_offset(l);
    for (index_t k = 0; k < out * in; ++k)
      p[static_cast<std::size_t>(offset + k)] =
          r * (2.0 * kernels::common::uniform_open01(seed, 7, 0, static_cast<std::uint32_t>(l),
                                                     k) - 1.0);
  }
  return p;
}

}  // namespace bilevel
