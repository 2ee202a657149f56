#include "commands.hpp"

#include <string>

namespace bilevel::cli {
namespace {

CLI::Validator integer_at_least(long long minimum, const char* name) {
  return CLI::Validator(
      [minimum](std::string& text) -> std::string {
        try {
          std::size_t used = 0;
          const long long v = std::stoll(text, &used);
          if (used != text.size()) return "must be an integer, got '" + text + "'";
          if (v < minimum)
            return (minimum == 0 ? "must be >= 0, got " : "must be > 0, got ") + text;
        } catch (const std::exception&) {
          return "must be an integer, got '" + text + "'";
        }
        return {};
      },
      name);
}

}  // namespace

CLI::Validator non_negative_integer() { return integer_at_least(0, "INT>=0"); }
CLI::Validator positive_integer() { return integer_at_least(1, "INT>0"); }

}  // namespace bilevel::cli
