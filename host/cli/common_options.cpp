#include "commands.hpp"

#include <bilevel/distributed.hpp>
#include <bilevel/solvers/solver.hpp>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <sstream>
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

/// `text` read whole as a finite double into `v` (no trailing characters, no overflow or
/// underflow, no NaN or infinity).
bool finite_number(const std::string& text, double& v) {
  char* end = nullptr;
  errno = 0;
  v = std::strtod(text.c_str(), &end);
  return !text.empty() && end == text.c_str() + text.size() && errno != ERANGE &&
         std::isfinite(v);
}

/// "KEY=V1,V2" as the key and its values; the error in words, or empty.
std::string parse_setting(const std::string& text, std::string& key, std::vector<double>& values) {
  const std::size_t eq = text.find('=');
  if (eq == std::string::npos || eq == 0 || eq + 1 == text.size())
    return "must be KEY=VALUE or KEY=V1,V2,... (keys: bilevel algorithms --options), got '" +
           text + "'";
  key = text.substr(0, eq);
  values.clear();
  std::stringstream list(text.substr(eq + 1));
  for (std::string item; std::getline(list, item, ',');) {
    double v = 0;
    if (item == "true" || item == "false")
      v = item == "true" ? 1.0 : 0.0;  // a bool option's value
    else if (!finite_number(item, v))
      return "'" + text + "': '" + item + "' is not a finite number, true or false";
    values.push_back(v);
  }
  if (values.empty() || text.back() == ',') return "'" + text + "': a value is missing";
  return {};
}

}  // namespace

void apply_settings(const RunOptions& run, AlgorithmOptions& o) {
  for (const std::string& text : run.settings) {
    std::string key;
    std::vector<double> values;
    const std::string error = parse_setting(text, key, values);
    BILEVEL_EXPECTS(error.empty(), "--set " << error);
    try {
      set_algorithm_option(o, key, values);
    } catch (const InvalidArgument& e) {
      throw InvalidArgument("--set " + text + ": " + e.what() +
                            " (bilevel algorithms --options lists the keys)");
    }
  }
}

CLI::Validator positive_number() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        double v = 0;
        if (!finite_number(text, v)) return "must be a finite number, got '" + text + "'";
        if (v <= 0) return "must be > 0, got " + text;
        return {};
      },
      "NUMBER>0");
}

CLI::Validator number_in(double lo, double hi) {
  return CLI::Validator(
      [lo, hi](std::string& text) -> std::string {
        double v = 0;
        if (!finite_number(text, v)) return "must be a finite number, got '" + text + "'";
        if (v < lo || v > hi) {
          std::ostringstream os;
          os << "must be in [" << lo << ", " << hi << "], got " << text;
          return os.str();
        }
        return {};
      },
      "NUMBER");
}

CLI::Validator fraction_below_one() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        char* end = nullptr;
        const double v = std::strtod(text.c_str(), &end);
        if (text.empty() || end != text.c_str() + text.size() || !std::isfinite(v))
          return "must be a number in [0, 1), got '" + text + "'";
        if (v < 0 || v >= 1)
          return "must be in [0, 1), got " + text +
                 " (with 1 no training label is clean: nothing to learn from, and the oracle "
                 "baseline would train on no sample)";
        return {};
      },
      "[0,1)");
}

CLI::Validator seed_value() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        const bool digits = !text.empty() && text.find_first_not_of("0123456789") == std::string::npos;
        errno = 0;
        if (digits) (void)std::strtoull(text.c_str(), nullptr, 10);
        if (!digits || errno == ERANGE)
          return "must be an integer in [0, 2^64), got '" + text + "'";
        return {};
      },
      "SEED");
}

void add_execution_options(CLI::App* cmd, std::string& backend, std::string& precision,
                           std::string& metrics, bool& graphs) {
  cmd->add_option("--backend", backend, "auto, cpu or cuda")
      ->capture_default_str()->check(CLI::IsMember({"auto", "cpu", "cuda"}));
  cmd->add_option("--precision", precision, "float or double")
      ->capture_default_str()->check(CLI::IsMember({"float", "double"}));
  cmd->add_option("--metrics", metrics, "Write metrics as JSON lines to this file");
  cmd->add_option_function<int>(
         "--threads",
         [](const int& n) {
           set_cpu_threads(n);
           note_threads_given();
         },
         "Threads of the CPU backend (default: OMP_NUM_THREADS, else one per core that is idle "
         "at start); results do not depend on it")
      ->check(thread_count());
  cmd->add_flag("!--no-graph", graphs,
                "Launch every kernel from the host instead of replaying captured CUDA graphs "
                "(debugging, comparison)");
}

void add_run_options(CLI::App* cmd, RunOptions& o, const std::string& seed_help) {
  std::vector<std::string> names;
  for (const auto& [name, what] : algorithm_names()) names.push_back(name);
  cmd->add_option("--algo", o.algo, "Algorithm (bilevel algorithms lists them)")
      ->capture_default_str()->check(CLI::IsMember(names));
  cmd->add_option("--instances", o.instances, "Instances B solved at once")
      ->capture_default_str()->check(positive_integer());
  cmd->add_option("--seed", o.seed, seed_help)->capture_default_str()->check(seed_value());
  add_execution_options(cmd, o.backend, o.precision, o.metrics, o.graphs);
  cmd->add_flag("--independent-batches", o.independent_batches,
                "One minibatch per instance (B independent runs) instead of one shared by all");
  cmd->add_option("--checkpoint", o.checkpoint,
                  "Write the run's state (x, y and what the algorithm carries between "
                  "iterations) to this file every --checkpoint-every iterations");
  cmd->add_option("--checkpoint-every", o.checkpoint_every, "Iterations between checkpoints")
      ->capture_default_str()->check(positive_integer());
  cmd->add_option("--resume", o.resume,
                  "Continue the run from this checkpoint (to the iterates of the uninterrupted "
                  "run)");
  cmd->add_option("--set", o.settings,
                  "KEY=VALUE or KEY=V1,V2,...: any algorithm option by its key (bilevel "
                  "algorithms --options lists them), after every other option; repeatable")
      ->check(CLI::Validator(
          [](std::string& text) -> std::string {
            std::string key;
            std::vector<double> values;
            std::string error = parse_setting(text, key, values);
            if (!error.empty()) return error;
            AlgorithmOptions scratch;
            try {
              set_algorithm_option(scratch, key, values);
            } catch (const InvalidArgument& e) {
              return e.what() + std::string(" (bilevel algorithms --options lists the keys)");
            }
            return {};
          },
          "KEY=VALUES"));
}

std::shared_ptr<Executor> make_cli_executor(const std::string& backend_name) {
  const Backend backend = parse_backend(backend_name);
  std::string reason;
  const int devices = cuda_device_count(&reason);
  if (backend == Backend::automatic && devices == 0)
    std::fprintf(stderr, "bilevel: no CUDA device (%s): running on the CPU backend\n",
                 reason.c_str());
  if (backend == Backend::automatic && devices > 0 && cuda_device_is_emulated())
    std::fprintf(stderr,
                 "bilevel: the CUDA device of this build is emulated (BILEVEL_CUDA_EMULATION): "
                 "running on the CPU backend (--backend cuda runs the emulation)\n");
  // ranks started by mpirun take the node's GPUs in turn (several ranks share one when the
  // node has fewer)
  const int device = devices > 1 ? launched_local_rank() % devices : 0;
  if (backend == Backend::cpu ||
      (backend == Backend::automatic && (devices == 0 || cuda_device_is_emulated())))
    choose_cpu_threads();
  return make_executor(backend, device);
}

CLI::Validator non_negative_integer() { return integer_at_least(0, "INT>=0"); }

CLI::Validator thread_count() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        std::string message = integer_at_least(1, "INT>0")(text);
        if (!message.empty()) return message;
        if (std::stoll(text) > max_cpu_threads())
          return "must be at most " + std::to_string(max_cpu_threads()) + " (4 per core of this "
                 "machine; more only adds switching), got " + text;
        return {};
      },
      "THREADS");
}
CLI::Validator positive_integer() { return integer_at_least(1, "INT>0"); }

}  // namespace bilevel::cli
