#include "plot_data.hpp"

#include <bilevel/error.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <sstream>

namespace bilevel::cli {
namespace {

/// Metrics drawn when present, with their axis titles.
const std::vector<std::pair<std::string, std::string>> kMetrics = {
    {"validation_loss", "validation loss"},
    {"test_accuracy", "test accuracy"},
    {"f1", "F1 of the flagged samples"},
    {"relative_distance", "||x - x*|| / ||x*||"},
    {"upper_value", "f"},
    {"query_loss_after_adaptation", "query loss after adaptation"},
    {"query_accuracy_after_adaptation", "query accuracy after adaptation"},
    {"kl_policy_target", "KL(policy || target)"},
};

/// The terminator of every datablock (a data line holds numbers only, and the header line
/// starts with "iteration": neither can be this).
constexpr const char* kEndOfData = "BILEVEL_END_OF_DATA";

/// Reads one line of at most `limit` bytes into `line`; false at the end of the stream.
bool bounded_line(std::istream& in, std::string& line, std::size_t limit, bool& too_long) {
  line.clear();
  too_long = false;
  char c;
  bool any = false;
  while (in.get(c)) {
    any = true;
    if (c == '\n') return true;
    if (line.size() >= limit) {
      too_long = true;
      return true;
    }
    line.push_back(c);
  }
  return any;
}

/// Values of `key` at one evaluation: one per instance (a number counts as one instance;
/// null or another type: NaN, drawn as a gap).
std::vector<double> values(const nlohmann::json& j, const std::string& key) {
  std::vector<double> out;
  const auto it = j.find(key);
  if (it == j.end()) return out;
  if (it->is_number()) out.push_back(it->get<double>());
  if (it->is_array())
    for (const auto& e : *it) out.push_back(e.is_number() ? e.get<double>() : std::nan(""));
  return out;
}

/// A number as gnuplot reads it back exactly (17 significant digits: 1e-7 stays 1e-7 and
/// iteration 1000001 stays apart from 1000000).
std::string number(double v) {
  if (!std::isfinite(v)) return "NaN";
  char text[32];
  std::snprintf(text, sizeof text, "%.17g", v);
  return text;
}

std::string string_field(const nlohmann::json& j, const char* key) {
  const auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string("?");
}

}  // namespace

std::string safe_label(const std::string& text) {
  std::string out;
  for (unsigned char c : text) {
    if (out.size() >= 120) break;
    if (c < 0x20 || c == 0x7f) continue;          // control characters
    if (c == '"' || c == '\\' || c == '`') c = '\'';  // nothing that quotes or escapes
    out.push_back(static_cast<char>(c));
  }
  return out;
}

MetricsRun read_metrics(std::istream& in, const std::string& name) {
  MetricsRun run;
  run.file = name;
  std::string line;
  nlohmann::json summary;
  bool too_long = false;
  for (long number = 1; bounded_line(in, line, kMaxMetricsLine, too_long); ++number) {
    const std::string where = "bilevel plot: '" + name + "' line " + std::to_string(number);
    if (too_long)
      throw InvalidArgument(where + " is longer than " + std::to_string(kMaxMetricsLine >> 20) +
                            " MiB (not a metrics line of a bilevel run)");
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_discarded()) throw InvalidArgument(where + " is not JSON");
    if (!j.is_object()) throw InvalidArgument(where + " is not a JSON object");
    const auto s = j.find("summary");
    if (s != j.end() && s->is_boolean() && s->get<bool>()) {
      summary = std::move(j);
      continue;
    }
    const auto it = j.find("iteration"), sec = j.find("seconds");
    if (it == j.end() || sec == j.end() || !it->is_number() || !sec->is_number())
      throw InvalidArgument(where + " has no numeric \"iteration\" and \"seconds\" (not a "
                                    "metrics line of a bilevel run)");
    run.evaluations.push_back(std::move(j));
  }
  if (run.evaluations.empty())
    throw InvalidArgument("bilevel plot: '" + name + "' holds no evaluation lines");
  run.label = std::filesystem::path(name).stem().string();
  if (summary.is_object()) {
    std::string label = string_field(summary, "algorithm") + ", " + string_field(summary, "backend");
    const auto d = summary.find("device");
    if (d != summary.end() && d->is_string()) label += " (" + d->get<std::string>() + ")";
    run.label = label;
    // a number the file claims is only drawn when it is one: finite and not negative
    const auto finite_number = [&](const char* key) {
      const auto v = summary.find(key);
      return v != summary.end() && v->is_number() && std::isfinite(v->get<double>()) &&
                     v->get<double>() >= 0
                 ? v->get<double>()
                 : -1.0;
    };
    run.quality_iteration = finite_number("time_to_quality_iteration");
    run.quality_seconds = finite_number("time_to_quality_seconds");
    if (run.quality_iteration < 0 || run.quality_seconds < 0)
      run.quality_iteration = run.quality_seconds = -1;
  }
  run.label = safe_label(run.label);
  return run;
}

std::vector<std::pair<std::string, std::string>> shown_metrics(const std::vector<MetricsRun>& runs,
                                                               std::size_t most) {
  std::vector<std::pair<std::string, std::string>> shown;
  for (const auto& m : kMetrics)
    for (const MetricsRun& r : runs)
      if (r.evaluations.front().contains(m.first)) {
        shown.push_back(m);
        break;
      }
  if (shown.size() > most) shown.resize(most);
  return shown;
}

std::string gnuplot_script(const std::vector<MetricsRun>& runs, bool png, int width, int height) {
  const auto shown = shown_metrics(runs);
  BILEVEL_EXPECTS(!shown.empty(), "bilevel plot: none of the files holds a metric it draws "
                                  "(validation_loss, test_accuracy, f1, relative_distance, "
                                  "upper_value, query_loss_after_adaptation, kl_policy_target)");
  if (height <= 0) height = 300 * static_cast<int>(shown.size());
  const bool any_quality = std::any_of(runs.begin(), runs.end(), [](const MetricsRun& r) {
    return r.quality_iteration >= 0;
  });
  std::ostringstream script;
  // data: a datablock per run; its header names the columns, the legend labels among them
  // (read back with columnheader: data, never command text)
  std::vector<std::vector<std::size_t>> first_column(runs.size());
  std::vector<std::vector<std::size_t>> instances(runs.size());
  for (std::size_t r = 0; r < runs.size(); ++r) {
    const nlohmann::json& first = runs[r].evaluations.front();
    script << "$run" << r << " << " << kEndOfData << "\n" << "iteration seconds";
    std::size_t column = 3;
    for (const auto& m : shown) {
      const std::size_t n = values(first, m.first).size();
      first_column[r].push_back(column);
      instances[r].push_back(n);
      for (std::size_t b = 0; b < n; ++b)
        script << " \"" << runs[r].label
               << (n > 1 ? ", instance " + std::to_string(b) : std::string()) << "\"";
      column += n;
    }
    script << "\n";
    for (const nlohmann::json& e : runs[r].evaluations) {
      script << number(e["iteration"].get<double>()) << ' ' << number(e["seconds"].get<double>());
      for (std::size_t m = 0; m < shown.size(); ++m) {
        std::vector<double> v = values(e, shown[m].first);
        v.resize(instances[r][m], std::nan(""));  // a line with fewer instances: gaps
        for (double x : v) script << ' ' << number(x);
      }
      script << "\n";
    }
    script << kEndOfData << "\n";
  }
  script << "set terminal " << (png ? "pngcairo" : "svg") << " size " << width << "," << height
         << (png ? " font \"sans,10\"" : "") << " noenhanced\n"
         << "set multiplot layout " << shown.size() << ",2\n"
         << "set key outside below font \",8\"\nset grid\n";
  for (std::size_t m = 0; m < shown.size(); ++m)
    for (int axis = 0; axis < 2; ++axis) {
      // (the titles are the program's own strings)
      script << "set xlabel \"" << (axis == 0 ? "iteration" : "seconds") << "\"\n"
             << "set ylabel \"" << shown[m].second << "\"\n"
             << "set title \"" << shown[m].second
             << (axis == 0 ? " against iterations" : " against time")
             << (any_quality ? " (dashed: time to quality)" : "") << "\"\n";
      // time to quality: a dashed vertical line where a run reached it (the colour of the r-th
      // curve: the run's own where each run has one instance), said in the panel's title
      script << "unset arrow\n";
      for (std::size_t r = 0; r < runs.size(); ++r)
        if (runs[r].quality_iteration >= 0)
          script << "set arrow from "
                 << number(axis == 0 ? runs[r].quality_iteration : runs[r].quality_seconds)
                 << ", graph 0 to "
                 << number(axis == 0 ? runs[r].quality_iteration : runs[r].quality_seconds)
                 << ", graph 1 nohead dashtype 2 linecolor " << r + 1 << "\n";
      std::vector<std::string> lines;
      for (std::size_t r = 0; r < runs.size(); ++r)
        for (std::size_t b = 0; b < instances[r][m]; ++b) {
          const std::size_t column = first_column[r][m] + b;
          lines.push_back("$run" + std::to_string(r) + " using " + std::to_string(axis + 1) +
                          ":" + std::to_string(column) + " with linespoints title columnheader(" +
                          std::to_string(column) + ")");
        }
      if (lines.empty()) {
        script << "plot NaN notitle\n";
        continue;
      }
      script << "plot ";
      for (std::size_t i = 0; i < lines.size(); ++i) script << (i ? ", \\\n     " : "") << lines[i];
      script << "\n";
    }
  script << "unset multiplot\n";
  return script.str();
}

}  // namespace bilevel::cli
