// Subcommands of the `bilevel` tool.
#pragma once

#include <CLI/CLI.hpp>

#include <functional>

namespace bilevel::cli {

/// Each registers a subcommand on `app`; the returned function runs it when it was parsed
/// (its exit code), and returns -1 otherwise.
std::function<int()> add_quadratic_command(CLI::App& app);
std::function<int()> add_hyperclean_command(CLI::App& app);

/// Integer-option validators with plain messages ("must be >= 0, got -1").
CLI::Validator non_negative_integer();
CLI::Validator positive_integer();

}  // namespace bilevel::cli
