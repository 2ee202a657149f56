// Resolves `--data` of the commands for data read from files: the library's load_data_source
// (fashion-mnist, an IDX folder, a LIBSVM file) with messages that name the option.
// (`synthetic` is generated on the executor by HypercleanProblem itself.)
#pragma once

#include <bilevel/data.hpp>

#include <string>

namespace bilevel::cli {

using LoadedData = DataSource;

/// Throws InvalidArgument naming --data and the path or the missing file.
inline LoadedData load_data(const std::string& spec) { return load_data_source(spec, "--data"); }

}  // namespace bilevel::cli
