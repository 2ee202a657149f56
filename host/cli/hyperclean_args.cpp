#include "hyperclean_args.hpp"

#include "given_splits.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <sstream>

namespace bilevel::cli {

double default_outer_step(const std::string& algo, index_t batch, std::string* why) {
  const bool normalized = preset_upper_update(algo) == UpperUpdate::normalized_momentum;
  const double ratio = static_cast<double>(batch) / 512.0;
  if (why) *why = normalized ? "normalized: 2 x sqrt(batch / 512)" : "1000 x batch / 512";
  return normalized ? 2.0 * std::sqrt(ratio) : 1000.0 * ratio;
}

void apply_protocol(HypercleanArgs& a) {
  if (a.protocol != "benchopt") return;
  BILEVEL_EXPECTS(a.data != "synthetic",
                  "--protocol benchopt prepares a data file (fashion-mnist, an IDX folder or a "
                  "LIBSVM file); --data synthetic is generated on the device by its own rules");
  if (!a.reg_given) a.reg = 0.2;  // benchmark_bilevel's datasets/mnist.py: reg 2e-1
}

void check_given_splits(const HypercleanArgs& a) {
  cli::check_given_splits(a.data, a.validation_data, a.test_data, a.sizes_given, a.standardize);
  if (!a.given_splits()) return;
  BILEVEL_EXPECTS(!a.corruption_given,
                  "--corruption corrupts a split made here; with --validation-data and "
                  "--test-data the training labels are used as given");
}

std::string corruption_words(const HypercleanArgs& a, index_t wrong) {
  if (a.given_splits()) return "labels as given";
  const double share = a.train > 0 ? 100.0 * static_cast<double>(wrong) / static_cast<double>(a.train) : 0;
  char text[160];
  if (a.protocol == "benchopt")
    std::snprintf(text, sizeof text, "each label redrawn with probability %g: %lld wrong, %.1f%%",
                  a.corruption, static_cast<long long>(wrong), share);
  else
    std::snprintf(text, sizeof text, "%.0f%% corrupted", 100 * a.corruption);
  return text;
}

void add_step_search(HypercleanArgs& a) {
  if (!a.search) return;
  BILEVEL_EXPECTS(a.outer_step.empty(),
                  "--search tries x steps around the default: give it without --outer-step");
  BILEVEL_EXPECTS(a.run.instances == 1,
                  "--search makes one instance per x step: give it without --instances");
  for (const std::string& spec : a.grid)
    BILEVEL_EXPECTS(spec.rfind("outer-step=", 0) != 0,
                    "--search and --grid " << spec << " both vary the x step: give one of them");
  const double base = default_outer_step(a.run.algo, a.batch);
  std::ostringstream spec;
  spec << "outer-step=";
  for (std::size_t k = 0; k < std::size(kSearchFactors); ++k) {
    char value[32];
    std::snprintf(value, sizeof value, "%.6g", base * kSearchFactors[k]);
    spec << (k ? "," : "") << value;
  }
  // the x step varies slowest: before any --grid the user gave
  a.grid.insert(a.grid.begin(), spec.str());
}

void expand_grid(HypercleanArgs& a) {
  if (a.grid.empty()) return;
  struct Axis {
    std::string name;
    std::vector<double> values;
    std::vector<double>* target;
  };
  std::vector<Axis> axes;
  for (const std::string& spec : a.grid) {
    const std::size_t eq = spec.find('=');
    BILEVEL_EXPECTS(eq != std::string::npos && eq > 0,
                    "--grid '" << spec << "': expected NAME=v1,v2,... with NAME outer-step, "
                                          "inner-step or neumann-eta");
    Axis axis{spec.substr(0, eq), {}, nullptr};
    if (axis.name == "outer-step") axis.target = &a.outer_step;
    else if (axis.name == "inner-step") axis.target = &a.inner_step;
    else if (axis.name == "neumann-eta") axis.target = &a.neumann_eta;
    BILEVEL_EXPECTS(axis.target != nullptr, "--grid '" << spec << "': unknown setting '" << axis.name
                                                       << "' (outer-step, inner-step, neumann-eta)");
    BILEVEL_EXPECTS(axis.target->empty(), "--grid " << axis.name << " and --" << axis.name
                                                    << " both given: give one of them");
    std::string rest = spec.substr(eq + 1);
    std::size_t start = 0;
    while (start <= rest.size()) {
      const std::size_t comma = std::min(rest.find(',', start), rest.size());
      const std::string text = rest.substr(start, comma - start);
      char* end = nullptr;
      const double v = std::strtod(text.c_str(), &end);
      BILEVEL_EXPECTS(!text.empty() && end == text.c_str() + text.size() && std::isfinite(v) && v > 0,
                      "--grid " << axis.name << ": values must be finite numbers > 0, got '"
                                << text << "'");
      axis.values.push_back(v);
      start = comma + 1;
    }
    for (const Axis& other : axes)
      BILEVEL_EXPECTS(other.name != axis.name, "--grid " << axis.name << " given twice");
    axes.push_back(std::move(axis));
  }
  index_t count = 1;
  for (const Axis& axis : axes) count = checked_mul(count, static_cast<index_t>(axis.values.size()), "--grid size");
  BILEVEL_EXPECTS(a.run.instances == 1 || a.run.instances == count,
                  "--instances " << a.run.instances << " and a --grid of " << count
                                 << " settings: leave --instances out");
  BILEVEL_EXPECTS(count <= 4096, "--grid of " << count << " settings: at most 4096 instances");
  a.run.instances = count;
  a.instance_settings.assign(static_cast<std::size_t>(count), std::string());
  for (index_t b = 0; b < count; ++b) {
    index_t rest = b;
    std::string text;
    for (std::size_t k = axes.size(); k-- > 0;) {  // the last axis varies fastest
      const auto n = static_cast<index_t>(axes[k].values.size());
      const double v = axes[k].values[static_cast<std::size_t>(rest % n)];
      rest /= n;
      axes[k].target->push_back(v);
      char buf[64];
      std::snprintf(buf, sizeof buf, "%s %g", axes[k].name.c_str(), v);
      text = text.empty() ? std::string(buf) : std::string(buf) + ", " + text;
    }
    a.instance_settings[static_cast<std::size_t>(b)] = text;
  }
}

std::string human_bytes(double bytes) {
  char buf[32];
  if (bytes >= 1e9)
    std::snprintf(buf, sizeof buf, "%.2f GB", bytes / 1e9);
  else if (bytes >= 1e6)
    std::snprintf(buf, sizeof buf, "%.1f MB", bytes / 1e6);
  else
    std::snprintf(buf, sizeof buf, "%.0f kB", bytes / 1e3);
  return buf;
}

template <typename T>
MemoryDecision plan_memory(Executor& exec, const HypercleanArgs& a, index_t features, int classes,
                           index_t ranks) {
  const DataPrecision precision = parse_data_precision(a.data_precision);
  // SABA's tables (one stored term per fixed batch) on top of the solver's arrays
  const auto tables = [&](index_t instances, index_t train, index_t batch) {
    return preset_table_values(a.run.algo, train, (features + 1) * classes, train, a.validation,
                               batch, batch, false) *
           static_cast<std::size_t>(instances) * sizeof(T);
  };
  const auto plan = [&](DataPrecision p, index_t instances, index_t train,
                        DataResidence r = DataResidence::device, index_t batch = 0) {
    batch = batch > 0 ? batch : a.batch;
    HypercleanMemory m = HypercleanProblem<T>::memory_plan(
        train, a.validation, a.test, features, classes, instances, batch, p,
        a.run.independent_batches, solver_x_arrays(a.run.algo), r);
    m.solver += tables(instances, train, batch);
    return m;
  };
  const std::size_t available = exec.memory_available();
  const auto parts = [&](const HypercleanMemory& p) {
    return "features " + human_bytes(double(p.features)) + ", workspaces " +
           human_bytes(double(p.workspaces)) + ", solver state " + human_bytes(double(p.solver));
  };
  const std::string where = exec.device_name();
  const HypercleanMemory on_host = plan(precision, a.run.instances, a.train, DataResidence::host);
  const auto host_line = [&](const char* why) {
    return MemoryDecision{"  memory: " + human_bytes(double(on_host.total())) + " of " +
                              human_bytes(double(available)) + " available on " + where + " (" +
                              parts(on_host) + "); the training features (" +
                              human_bytes(double(on_host.host)) +
                              ") stay in host memory, read in place by the kernels (" + why +
                              ")\n",
                          DataResidence::host};
  };
  if (a.data_residence == "host") {
    BILEVEL_EXPECTS(on_host.total() <= available,
                    "with the training features in host memory the run still needs "
                        << human_bytes(double(on_host.total())) << " on " << where << " ("
                        << parts(on_host) << ") but " << human_bytes(double(available))
                        << " are available");
    return host_line("--data-residence host");
  }
  const HypercleanMemory m = plan(precision, a.run.instances, a.train);
  if (m.total() <= available)
    return {"  memory: " + human_bytes(double(m.total())) + " of " + human_bytes(double(available)) +
                " available on " + where + " (" + parts(m) + ")\n",
            DataResidence::device};
  if (a.data_residence == "auto" && on_host.total() <= available)
    return host_line(("they do not fit: the run would need " + human_bytes(double(m.total())) +
                      "; minibatch rows cross the bus at each use").c_str());
  std::ostringstream os;
  os << "the run needs " << human_bytes(double(m.total())) << " on " << where << " ("
     << parts(m) << ") but " << human_bytes(double(available)) << " are available";
  std::vector<std::string> fits;
  if (precision != DataPrecision::bf16) {
    const HypercleanMemory b = plan(DataPrecision::bf16, a.run.instances, a.train);
    if (b.total() <= available)
      fits.push_back("--data-precision bf16 (" + human_bytes(double(b.total())) + ")");
  }
  if (tables(a.run.instances, a.train, a.batch) > 0)
    for (index_t batch = 2 * a.batch; batch < a.train; batch *= 2) {
      const HypercleanMemory b = plan(precision, a.run.instances, a.train, DataResidence::device,
                                      batch);
      if (b.total() <= available) {
        fits.push_back("--batch " + std::to_string(batch) + " (fewer SABA tables: " +
                       human_bytes(double(b.total())) + ")");
        break;
      }
    }
  for (index_t nb = a.run.instances - 1; nb >= 1; --nb) {
    const HypercleanMemory b = plan(precision, nb, a.train);
    if (b.total() <= available) {
      fits.push_back("--instances " + std::to_string(nb) + " (" + human_bytes(double(b.total())) + ")");
      break;
    }
  }
  for (index_t train = a.train / 2; train >= 1000; train /= 2) {
    const HypercleanMemory b = plan(precision, a.run.instances, train);
    if (b.total() <= available) {
      fits.push_back("--train " + std::to_string(train * ranks) + " (" +
                     (ranks > 1 ? std::to_string(train) + " per rank, " : std::string()) +
                     human_bytes(double(b.total())) + ")");
      break;
    }
  }
  if (on_host.total() <= available)
    fits.push_back("--data-residence host (" + human_bytes(double(on_host.total())) +
                   " on the device, the training features in host memory)");
  if (fits.empty()) {
    os << "; no smaller setting of --data-precision, --instances or --train fits either, nor "
          "keeping the training features in host memory";
  } else {
    os << "; it would fit with ";
    for (std::size_t i = 0; i < fits.size(); ++i) os << (i ? ", or " : "") << fits[i];
  }
  throw InvalidArgument(os.str());
}

template MemoryDecision plan_memory<float>(Executor&, const HypercleanArgs&, index_t, int, index_t);
template MemoryDecision plan_memory<double>(Executor&, const HypercleanArgs&, index_t, int, index_t);

}  // namespace bilevel::cli
