// `bilevel`: the command-line tool.
//   bilevel hyperclean [options]   data hyper-cleaning (Fashion-MNIST, IDX, LIBSVM, synthetic)
//   bilevel quadratic  [options]   stocBiO / AID-CG / ITD-BiO on a quadratic with a known answer
//   bilevel quadratics [options]   benchopt's quadratics (per-sample dense matrices, known x*)
//   bilevel meta       [options]   meta-learning (MAML, FOMAML, ANIL, iMAML) on sinusoid tasks
//   bilevel align      [options]   policy alignment (A-PARL) on a bandit with a known answer
//   bilevel plot FILES -o PIC      curves of recorded runs (gnuplot)
//   bilevel algorithms             the algorithms this build knows (--options: their options)
//   bilevel devices                the backends available here
#include "commands.hpp"

#include <bilevel/bilevel.hpp>

#include <algorithm>
#include <cstdio>
#include <iostream>
#include <new>
#include <string>
#include <vector>

namespace {
/// "rank r of P: " in a distributed run, else "".
std::string rank_prefix() {
  const auto comm = bilevel::active_mpi_communicator();
  if (!comm || comm->size() == 1) return {};
  return "rank " + std::to_string(comm->rank()) + " of " + std::to_string(comm->size()) + ": ";
}
/// Edit distance between two option names (insertions, deletions, substitutions).
std::size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diagonal = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = up;
    }
  }
  return row[b.size()];
}

/// For arguments the command does not know: "unknown option --x (did you mean --y?)", naming
/// the closest long option of the command (a prefix of the other, the same start, or a few
/// edits away).
std::string unknown_arguments(const CLI::App& app) {
  const CLI::App* command = &app;
  for (const CLI::App* sub : app.get_subcommands()) command = sub;
  std::string out;
  for (const std::string& arg : app.remaining(true)) {
    if (arg.rfind("--", 0) != 0) continue;  // a value of the unknown option
    const std::string name = arg.substr(2, arg.find('=') == std::string::npos ? std::string::npos
                                                                              : arg.find('=') - 2);
    std::string best;
    std::size_t best_distance = std::max<std::size_t>(2, name.size() / 3) + 1;
    for (const CLI::Option* o : command->get_options()) {
      for (const std::string& known : o->get_lnames()) {
        // one name starts the other: closest; the same first four letters (--iterations,
        // --iters): next; else the edit distance
        const bool prefix = !name.empty() && (known.rfind(name, 0) == 0 || name.rfind(known, 0) == 0);
        const std::size_t common = static_cast<std::size_t>(
            std::mismatch(name.begin(), name.begin() + std::min(name.size(), known.size()),
                          known.begin())
                .first -
            name.begin());
        const std::size_t d = prefix ? 1 : common >= 4 ? 2 : edit_distance(name, known);
        if (d < best_distance) best_distance = d, best = known;
      }
    }
    out += (out.empty() ? "" : "; ") + std::string("unknown option --") + name +
           (best.empty() ? std::string() : " (did you mean --" + best + "?)");
  }
  if (out.empty()) return {};
  const std::string which = command == &app ? std::string("bilevel") : "bilevel " + command->get_name();
  return which + ": " + out + "; `" + which + " --help` lists the options";
}

/// A rank that fails ends the whole run (the others may be waiting in a collective).
void end_other_ranks(int code) {
  if (const auto comm = bilevel::active_mpi_communicator()) comm->abort(code);
}
}  // namespace

int main(int argc, char** argv) {
  bilevel::cli::set_command_line(argc, argv);
  CLI::App app{"bilevel: stochastic bilevel optimization on CUDA and CPU"};
  app.set_version_flag("--version", std::string(bilevel::version));
  app.require_subcommand(1);

  std::function<int()> run_quadratic = bilevel::cli::add_quadratic_command(app);
  std::function<int()> run_quadratics = bilevel::cli::add_quadratics_command(app);
  std::function<int()> run_hyperclean = bilevel::cli::add_hyperclean_command(app);
  std::function<int()> run_meta = bilevel::cli::add_meta_command(app);
  std::function<int()> run_align = bilevel::cli::add_align_command(app);
  std::function<int()> run_plot = bilevel::cli::add_plot_command(app);
  std::function<int()> run_hpo = bilevel::cli::add_hpo_command(app);

  CLI::App* algorithms = app.add_subcommand("algorithms", "List the algorithms");
  bool list_options = false;
  algorithms->add_flag("--options", list_options,
                       "List the algorithm options that --set takes, with their kinds");
  CLI::App* devices = app.add_subcommand("devices", "List the backends available here");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ExtrasError& e) {
    const std::string message = unknown_arguments(app);
    if (message.empty()) return app.exit(e);
    std::fprintf(stderr, "%s\n", message.c_str());
    return e.get_exit_code();
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    if (algorithms->parsed() && list_options) {
      for (const bilevel::AlgorithmOptionField& f : bilevel::algorithm_option_fields())
        std::printf("%-26s %-6s %s\n", f.key.c_str(), f.kind.c_str(), f.description.c_str());
      return 0;
    }
    if (algorithms->parsed()) {
      for (const bilevel::AlgorithmInfo& a : bilevel::algorithm_presets())
        std::printf(a.name.size() > 9 ? "%s\n          %s\n          source: %s; needs: %s\n"
                                         : "%-9s %s\n          source: %s; needs: %s\n",
                    a.name.c_str(),
                    a.description.c_str(), a.source.c_str(), a.needs.c_str());
      std::printf("\npolicy alignment (bilevel align):\n");
      for (const bilevel::AlgorithmInfo& a : bilevel::alignment_algorithm_presets())
        std::printf(a.name.size() > 9 ? "%s\n          %s\n          source: %s; needs: %s\n"
                                         : "%-9s %s\n          source: %s; needs: %s\n",
                    a.name.c_str(),
                    a.description.c_str(), a.source.c_str(), a.needs.c_str());
      std::printf("\nmeta-learning (bilevel meta):\n");
      for (const bilevel::AlgorithmInfo& a : bilevel::meta_algorithm_presets())
        std::printf(a.name.size() > 9 ? "%s\n          %s\n          source: %s; needs: %s\n"
                                         : "%-9s %s\n          source: %s; needs: %s\n",
                    a.name.c_str(),
                    a.description.c_str(), a.source.c_str(), a.needs.c_str());
      return 0;
    }
    if (devices->parsed()) {
      std::string reason;
      const int n = bilevel::cuda_device_count(&reason);
      std::printf("cpu   %s\n", bilevel::make_executor(bilevel::Backend::cpu)->device_name().c_str());
      if (n == 0) std::printf("cuda  none (%s)\n", reason.c_str());
      for (int d = 0; d < n; ++d)
        std::printf("cuda  %d: %s\n", d,
                    bilevel::make_executor(bilevel::Backend::cuda, d)->device_name().c_str());
      return 0;
    }
    for (const auto& command : {run_quadratic, run_quadratics, run_hyperclean, run_meta, run_align, run_plot, run_hpo}) {
      const int rc = command();
      if (rc >= 0) return rc;
    }
    return 1;
  } catch (const bilevel::DivergenceError& e) {
    std::fprintf(stderr, "bilevel: %s%s\n", rank_prefix().c_str(), e.what());
    end_other_ranks(3);
    return 3;
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr,
                 "bilevel: error: out of host memory: a size given on the command line (--train, "
                 "--samples, --features, --batch, --instances) or read from a file is too large "
                 "for this machine\n");
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bilevel: %serror: %s\n", rank_prefix().c_str(), e.what());
    end_other_ranks(1);
    return 1;
  }
}
