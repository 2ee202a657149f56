// Settings of the emulated CUDA device, for its own tests and for tools: the order in which a
// block's threads and a grid's blocks run, strictness, and what fresh memory holds. The
// environment sets them at start-up (BILEVEL_CUDA_EMULATION_ORDER=forward|reverse|random:SEED,
// BILEVEL_CUDA_EMULATION_STRICT=0|1, BILEVEL_CUDA_EMULATION_FILL=0|1); these calls override it.
#pragma once

#include <cstdint>
#include <string>

namespace cuda_emulation {

enum class Order { forward, reverse, random };

struct Settings {
  Order order = Order::forward;
  std::uint64_t seed = 1;  ///< of Order::random (the generator restarts at each set_settings)
  /// A __syncthreads that some threads of the block no longer reach because they returned is
  /// an error (CUDA leaves it undefined; Volta and later count only the live threads).
  bool strict = true;
  /// Fresh device memory and dynamic shared memory hold 0xff bytes (NaN in float and double),
  /// so that reading what was never written shows.
  bool fill = true;
};

Settings settings();
void set_settings(const Settings& s);
/// "forward", "reverse" or "random:SEED".
std::string order_name(const Settings& s);
/// Launches run so far in this process (kernels only; copies and GEMMs not counted).
std::uint64_t kernel_launches();

}  // namespace cuda_emulation
