// Multi-layer perceptrons batched over tasks (the meta-learning problems): their shape, the
// layout of one task's parameters, and a seeded initialisation.
#pragma once

#include <bilevel/types.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace bilevel {

enum class Activation { relu, tanh };
Activation parse_activation(const std::string& name);  ///< "relu" | "tanh"
std::string to_string(Activation a);

/// The loss on the network's outputs: squared error (mean over samples and outputs;
/// regression) or softmax cross-entropy against one-hot targets (mean over samples;
/// classification, the outputs are the logits).
enum class OutputLoss { squared, cross_entropy };

/// A multi-layer perceptron: widths {inputs, hidden..., outputs}, the activation between layers
/// (none after the last) and the output loss. Parameters of one task, in order: W_1 (w_1 x w_0,
/// column-major), b_1, W_2, b_2, ..., W_L, b_L.
struct MlpSpec {
  std::vector<index_t> widths{1, 40, 40, 1};
  Activation activation = Activation::relu;
  OutputLoss loss = OutputLoss::squared;
  index_t parameters() const;       ///< P
  index_t layers() const { return static_cast<index_t>(widths.size()) - 1; }
  index_t weight_offset(index_t layer) const;  ///< W_l, l in 1..L
  index_t bias_offset(index_t layer) const;    ///< b_l
  index_t head_offset() const { return weight_offset(layers()); }
  index_t head_size() const { return parameters() - head_offset(); }
  void validate() const;  ///< throws InvalidArgument naming the bad width
};

/// Glorot-uniform weights and zero biases for one task (seeded): a starting x.
std::vector<double> mlp_initial_parameters(const MlpSpec& spec, std::uint64_t seed);

}  // namespace bilevel
