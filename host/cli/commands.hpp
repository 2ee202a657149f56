// Subcommands of the `bilevel` tool.
#pragma once

#include <CLI/CLI.hpp>

#include <functional>

namespace bilevel::cli {

/// Registers `bilevel quadratic` on `app`; the returned function runs it (exit code).
std::function<int()> add_quadratic_command(CLI::App& app);

}  // namespace bilevel::cli
