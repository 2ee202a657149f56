// The files a command writes: never two outputs (or an output and an input) on one file, and
// each written whole or not at all.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace bilevel::cli {

/// Whether two paths name one file: the same device and inode when both exist, else the same
/// absolute, normalised path (links resolved as far as they exist).
bool same_file(const std::string& a, const std::string& b);

/// Refuses (InvalidArgument naming both options) when two of the named paths are one file;
/// empty paths are skipped. `paths`: (option, path), e.g. {"--metrics", m}, {"--checkpoint", c}.
void refuse_shared_outputs(const std::vector<std::pair<std::string, std::string>>& paths);

/// Writes `bytes` to `path` through a temporary file of its own in the same directory
/// (PATH.tmp-XXXXXX), synced and renamed over `path`; the temporary is removed if anything
/// fails. `what` names the file in messages ("bilevel plot: -o").
void write_file_atomically(const std::string& path, const std::string& bytes,
                           const std::string& what);

}  // namespace bilevel::cli
