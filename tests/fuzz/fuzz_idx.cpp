// Fuzz target: read_idx on an image file and a label file cut from one input (its first byte
// says where), gzipped or not (zlib reads both; the corpus has both).
#include <bilevel/data.hpp>

#include "fuzz_target.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const std::size_t cut = 1 + (size - 1) * data[0] / 256;
  const std::string images = bilevel::fuzz::write_input("images", data + 1, cut - 1);
  const std::string labels = bilevel::fuzz::write_input("labels", data + cut, size - cut);
  return bilevel::fuzz::run([&] { (void)bilevel::read_idx(images, labels); });
}
