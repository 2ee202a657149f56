// Fuzz target: read_idx on an image file and a label file cut from one input (its first byte
// says where), gzipped or not (zlib reads both; the corpus has both); and the same pair as the
// training pool and test set of an IDX folder streamed into one rank's hyper-cleaning shard.
#include <bilevel/data.hpp>

#include "fuzz_target.hpp"

#include <sys/stat.h>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const std::size_t cut = 1 + (size - 1) * data[0] / 256;
  const std::string images = bilevel::fuzz::write_input("images", data + 1, cut - 1);
  const std::string labels = bilevel::fuzz::write_input("labels", data + cut, size - cut);
  bilevel::fuzz::run([&] { (void)bilevel::read_idx(images, labels); });
  const std::string folder = bilevel::fuzz::input_path("idx");
  ::mkdir(folder.c_str(), 0700);
  for (const std::string set : {"train", "t10k"}) {
    bilevel::fuzz::write_input("idx/" + set + "-images-idx3-ubyte", data + 1, cut - 1);
    bilevel::fuzz::write_input("idx/" + set + "-labels-idx1-ubyte", data + cut, size - cut);
  }
  return bilevel::fuzz::run([&] {
    (void)bilevel::load_hyperclean_shard(folder, bilevel::SplitSizes{1, 1, 1}, 0.5, 1, 0, 1);
  });
}
