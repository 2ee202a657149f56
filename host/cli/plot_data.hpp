// `bilevel plot`'s data side: metrics files read with bounds, and the gnuplot script built from
// them. Nothing read from a file reaches gnuplot's command text: the values and the legend
// labels travel in datablocks (which gnuplot reads as data, never expanding backquotes or
// macros), the labels stripped of quotes, backslashes and control characters besides; the
// script refers to no path (gnuplot reads it on stdin and writes the picture to stdout).
#pragma once

#include <nlohmann/json.hpp>

#include <cstddef>
#include <istream>
#include <string>
#include <utility>
#include <vector>

namespace bilevel::cli {

/// A recorded run: its evaluation lines and its legend label (from the summary line, else the
/// file's name).
struct MetricsRun {
  std::string file, label;
  std::vector<nlohmann::json> evaluations;
  /// The summary's time to quality (hyper-cleaning), where it was reached: the iteration and
  /// the seconds at which a dashed line marks it; negative: none.
  double quality_iteration = -1, quality_seconds = -1;
};

/// The longest line a metrics file may have (a summary of 10^4 instances is about 1 MB).
constexpr std::size_t kMaxMetricsLine = std::size_t{4} << 20;

/// Reads the JSON lines of `name` from `in`: InvalidArgument naming the file and the line for a
/// line that is not a JSON object, an evaluation without numeric "iteration" and "seconds", a
/// line longer than kMaxMetricsLine, or no evaluation at all.
MetricsRun read_metrics(std::istream& in, const std::string& name);

/// The metrics drawn (key, axis title) that at least one run holds, at most `most`.
std::vector<std::pair<std::string, std::string>> shown_metrics(const std::vector<MetricsRun>& runs,
                                                               std::size_t most = 3);

/// The gnuplot script for `runs` (png or svg, width x height pixels; height 0: 300 per metric).
/// The picture goes to gnuplot's standard output.
std::string gnuplot_script(const std::vector<MetricsRun>& runs, bool png, int width, int height);

/// A label as it may stand in a datablock: printable characters (UTF-8 kept), quotes and
/// backslashes replaced by ', control characters dropped, at most 120 bytes.
std::string safe_label(const std::string& text);

}  // namespace bilevel::cli
