// Fuzz target: read_checkpoint (float and double) on the input as a file.
#include <bilevel/checkpoint.hpp>

#include "fuzz_target.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string path = bilevel::fuzz::write_input("checkpoint", data, size);
  bilevel::fuzz::run([&] { (void)bilevel::read_checkpoint<float>(path); });
  return bilevel::fuzz::run([&] { (void)bilevel::read_checkpoint<double>(path); });
}
