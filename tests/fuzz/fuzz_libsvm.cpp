// Fuzz target: read_libsvm on the input as a file, and the same file streamed row by row into
// one rank's hyper-cleaning shard (load_hyperclean_shard parses it again on each pass).
#include <bilevel/data.hpp>

#include "fuzz_target.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string path = bilevel::fuzz::write_input("libsvm", data, size);
  bilevel::fuzz::run([&] { (void)bilevel::read_libsvm(path); });
  return bilevel::fuzz::run([&] {
    (void)bilevel::load_hyperclean_shard(path, bilevel::SplitSizes{1, 1, 1}, 0.5, 1, 0, 1);
  });
}
