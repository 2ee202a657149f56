// `bilevel plot METRICS.jsonl [more.jsonl ...] -o curves.png|svg`: the curves of recorded runs
// (the JSON lines the solving commands write) drawn by gnuplot (Debian's gnuplot-nox): each
// metric the files share against iterations and against seconds, one line per run and
// instance, the legend from each file's summary (algorithm, backend, device).
#include "commands.hpp"

#include <nlohmann/json.hpp>

#include <bilevel/error.hpp>

#include <cstdio>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include <unistd.h>

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

struct Run {
  std::string file, label;
  std::vector<nlohmann::json> evaluations;
};

Run read_run(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw InvalidArgument("bilevel plot: cannot open metrics file '" + path + "'");
  Run run;
  run.file = path;
  std::string line;
  nlohmann::json summary;
  for (long number = 1; std::getline(in, line); ++number) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(line);
    } catch (const nlohmann::json::parse_error& e) {
      throw InvalidArgument("bilevel plot: '" + path + "' line " + std::to_string(number) +
                            " is not JSON: " + e.what());
    }
    if (!j.is_object())
      throw InvalidArgument("bilevel plot: '" + path + "' line " + std::to_string(number) +
                            " is not a JSON object");
    if (j.value("summary", false)) {
      summary = j;
    } else {
      if (!j.contains("iteration") || !j.contains("seconds") || !j["iteration"].is_number() ||
          !j["seconds"].is_number())
        throw InvalidArgument("bilevel plot: '" + path + "' line " + std::to_string(number) +
                              " has no numeric \"iteration\" and \"seconds\" (not a metrics line "
                              "of a bilevel run)");
      run.evaluations.push_back(j);
    }
  }
  if (run.evaluations.empty())
    throw InvalidArgument("bilevel plot: '" + path + "' holds no evaluation lines");
  run.label = std::filesystem::path(path).stem().string();
  if (summary.is_object()) {
    std::ostringstream os;
    os << summary.value("algorithm", "?") << ", " << summary.value("backend", "?");
    if (summary.contains("device")) os << " (" << summary["device"].get<std::string>() << ")";
    run.label = os.str();
  }
  return run;
}

/// Values of `key` at one evaluation: one per instance (a number counts as one instance).
std::vector<double> values(const nlohmann::json& j, const std::string& key) {
  std::vector<double> out;
  const nlohmann::json& v = j[key];
  if (v.is_number()) out.push_back(v.get<double>());
  if (v.is_array())
    for (const auto& e : v) out.push_back(e.is_number() ? e.get<double>() : std::nan(""));
  return out;
}

std::string gp_string(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

int plot(const std::vector<std::string>& files, const std::string& output, int width,
         int height) {
  const std::string ext = std::filesystem::path(output).extension().string();
  BILEVEL_EXPECTS(ext == ".png" || ext == ".svg",
                  "bilevel plot: -o must name a .png or .svg file, got '" << output << "'");
  std::vector<Run> runs;
  for (const std::string& f : files) runs.push_back(read_run(f));
  // the metrics present in at least one run
  std::vector<std::pair<std::string, std::string>> shown;
  for (const auto& m : kMetrics)
    for (const Run& r : runs)
      if (r.evaluations.front().contains(m.first)) {
        shown.push_back(m);
        break;
      }
  BILEVEL_EXPECTS(!shown.empty(), "bilevel plot: none of the files holds a metric it draws "
                                  "(validation_loss, test_accuracy, f1, relative_distance, "
                                  "upper_value, query_loss_after_adaptation, kl_policy_target)");
  if (shown.size() > 3) shown.resize(3);
  if (height <= 0) height = 300 * static_cast<int>(shown.size());
  // data: one file per run, columns iteration seconds then every metric's instances
  const std::filesystem::path dir = std::filesystem::temp_directory_path() /
                                    ("bilevel-plot-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  std::ostringstream script;
  script << "set terminal " << (ext == ".png" ? "pngcairo" : "svg") << " size " << width << ","
         << height << (ext == ".png" ? " font \"sans,10\"" : "") << "\n"
         << "set output " << gp_string(output) << "\n"
         << "set multiplot layout " << shown.size() << ",2\n"
         << "set key bottom right font \",8\"\nset grid\n";
  std::vector<std::string> data_files;
  std::vector<std::vector<std::size_t>> column_of(runs.size());  // first column per metric
  for (std::size_t r = 0; r < runs.size(); ++r) {
    const std::string path = (dir / ("run" + std::to_string(r) + ".dat")).string();
    std::ofstream out(path);
    for (const nlohmann::json& e : runs[r].evaluations) {
      out << e["iteration"].get<double>() << ' ' << e["seconds"].get<double>();
      for (const auto& m : shown)
        for (double v : e.contains(m.first) ? values(e, m.first) : std::vector<double>{})
          out << ' ' << (std::isfinite(v) ? std::to_string(v) : std::string("NaN"));
      out << '\n';
    }
    data_files.push_back(path);
  }
  for (const auto& m : shown)
    for (int axis = 0; axis < 2; ++axis) {
      script << "set xlabel " << gp_string(axis == 0 ? "iteration" : "seconds") << "\n"
             << "set ylabel " << gp_string(m.second) << "\n"
             << "set title " << gp_string(m.second + (axis == 0 ? " against iterations" : " against time")) << "\n";
      std::vector<std::string> lines;
      for (std::size_t r = 0; r < runs.size(); ++r) {
        const nlohmann::json& first = runs[r].evaluations.front();
        std::size_t column = 3;
        for (const auto& before : shown) {
          if (before.first == m.first) break;
          if (first.contains(before.first)) column += values(first, before.first).size();
        }
        if (!first.contains(m.first)) continue;
        const std::size_t instances = values(first, m.first).size();
        for (std::size_t b = 0; b < instances; ++b)
          lines.push_back(gp_string(data_files[r]) + " using " + std::to_string(axis + 1) + ":" +
                          std::to_string(column + b) + " with linespoints title " +
                          gp_string(runs[r].label + (instances > 1 ? ", instance " + std::to_string(b) : "")));
      }
      script << "plot ";
      for (std::size_t i = 0; i < lines.size(); ++i) script << (i ? ", \\\n     " : "") << lines[i];
      script << "\n";
    }
  script << "unset multiplot\n";
  const std::string script_path = (dir / "plot.gp").string();
  std::ofstream(script_path) << script.str();
  const std::string command = "gnuplot " + gp_string(script_path) + " 2>" + gp_string((dir / "err").string());
  const int rc = std::system(command.c_str());
  std::string err;
  {
    std::ifstream e(dir / "err");
    std::getline(e, err, '\0');
  }
  std::filesystem::remove_all(dir);
  if (rc != 0)
    throw Error("bilevel plot: gnuplot failed (install Debian's gnuplot-nox; scripts/setup.sh "
                "does)" + (err.empty() ? std::string() : ": " + err));
  std::printf("wrote %s: %zu run%s, %zu metric%s against iterations and seconds\n",
              output.c_str(), runs.size(), runs.size() == 1 ? "" : "s", shown.size(),
              shown.size() == 1 ? "" : "s");
  return 0;
}

}  // namespace

std::function<int()> add_plot_command(CLI::App& app) {
  struct Args {
    std::vector<std::string> files;
    std::string output;
    int width = 1100, height = 0;
  };
  auto a = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand(
      "plot", "Draw the curves of recorded runs (--metrics files) with gnuplot");
  cmd->add_option("files", a->files, "Metrics files (JSON lines) of one or more runs")
      ->required()->check(CLI::ExistingFile);
  cmd->add_option("-o,--output", a->output, "Picture to write: .png or .svg")->required();
  cmd->add_option("--width", a->width, "Width in pixels")->capture_default_str()->check(CLI::Range(200, 8000));
  cmd->add_option("--height", a->height, "Height in pixels (default: 300 per metric)")->check(CLI::Range(200, 8000));
  return [a, cmd]() -> int {
    if (!cmd->parsed()) return -1;
    return plot(a->files, a->output, a->width, a->height);
  };
}

}  // namespace bilevel::cli
