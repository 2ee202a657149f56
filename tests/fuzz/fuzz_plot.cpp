// Fuzz target: `bilevel plot`'s reader and script builder on the input as a metrics file. The
// reader may refuse it only with InvalidArgument; the script it builds must keep the input out
// of gnuplot's command text: every datablock ends where it was opened to end (no line of the
// input can close it early), and no byte of the input appears outside the datablocks.
#include "../../host/cli/plot_data.hpp"

#include "fuzz_target.hpp"

#include <cstdlib>
#include <sstream>
#include <string>

namespace {

void check_script(const std::string& script) {
  std::istringstream in(script);
  std::string line;
  bool in_data = false;
  while (std::getline(in, line)) {
    if (in_data) {
      if (line == "BILEVEL_END_OF_DATA") in_data = false;
      continue;
    }
    if (line.rfind("$run", 0) == 0 && line.find(" << BILEVEL_END_OF_DATA") != std::string::npos) {
      in_data = true;
      continue;
    }
    // command text: the program's own words and numbers only
    for (std::size_t i = 0; i < line.size(); ++i) {
      const bool continues_the_line = i + 1 == line.size();  // the plot command's ", \\"
      if (line[i] == '`' || (line[i] == '\\' && !continues_the_line)) std::abort();
    }
    if (line.find("system") != std::string::npos) std::abort();
  }
  if (in_data) std::abort();  // a datablock left open
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  return bilevel::fuzz::run([&] {
    std::istringstream in(text);
    const bilevel::cli::MetricsRun run = bilevel::cli::read_metrics(in, "fuzz.jsonl");
    check_script(bilevel::cli::gnuplot_script({run, run}, true, 800, 0));
  });
}
