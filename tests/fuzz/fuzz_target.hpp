// The frame of a reader fuzz target (libFuzzer): the input is written to files and read; a
// reader may refuse it only with InvalidArgument (a clear error). Anything else - a crash, a
// sanitizer report, std::bad_alloc, another exception escaping - is a finding.
#pragma once

#include <bilevel/error.hpp>

#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>

namespace bilevel::fuzz {

/// The path of this process's file (or folder) `name`.
inline std::string input_path(const std::string& name) {
  return "/tmp/bilevel_fuzz_" + std::to_string(::getpid()) + "_" + name;
}

/// A file of this process for the input (one per name), rewritten by every run.
inline std::string write_input(const std::string& name, const std::uint8_t* data,
                               std::size_t size) {
  const std::string path = input_path(name);
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) std::abort();
  if (size > 0 && std::fwrite(data, 1, size, f) != size) std::abort();
  std::fclose(f);
  return path;
}

/// Runs read(); InvalidArgument is the expected refusal.
template <typename F>
int run(F read) {
  try {
    read();
  } catch (const InvalidArgument&) {
  }
  return 0;
}

}  // namespace bilevel::fuzz
