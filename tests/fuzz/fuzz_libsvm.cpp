// Fuzz target: read_libsvm on the input as a file.
#include <bilevel/data.hpp>

#include "fuzz_target.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string path = bilevel::fuzz::write_input("libsvm", data, size);
  return bilevel::fuzz::run([&] { (void)bilevel::read_libsvm(path); });
}
