// `bilevel`: the command-line tool.
//   bilevel hyperclean [options]   data hyper-cleaning (Fashion-MNIST, IDX, LIBSVM, synthetic)
//   bilevel quadratic  [options]   stocBiO / AID-CG / ITD-BiO on a quadratic with a known answer
//   bilevel meta       [options]   meta-learning (MAML, FOMAML, ANIL, iMAML) on sinusoid tasks
//   bilevel align      [options]   policy alignment (A-PARL) on a bandit with a known answer
//   bilevel plot FILES -o PIC      curves of recorded runs (gnuplot)
//   bilevel algorithms             the algorithms this build knows
//   bilevel devices                the backends available here
#include "commands.hpp"

#include <bilevel/bilevel.hpp>

#include <cstdio>
#include <iostream>
#include <new>
#include <string>

namespace {
/// "rank r of P: " in a distributed run, else "".
std::string rank_prefix() {
  const auto comm = bilevel::active_mpi_communicator();
  if (!comm || comm->size() == 1) return {};
  return "rank " + std::to_string(comm->rank()) + " of " + std::to_string(comm->size()) + ": ";
}
/// A rank that fails ends the whole run (the others may be waiting in a collective).
void end_other_ranks(int code) {
  if (const auto comm = bilevel::active_mpi_communicator()) comm->abort(code);
}
}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"bilevel: stochastic bilevel optimization on CUDA and CPU"};
  app.set_version_flag("--version", std::string(bilevel::version));
  app.require_subcommand(1);

  std::function<int()> run_quadratic = bilevel::cli::add_quadratic_command(app);
  std::function<int()> run_hyperclean = bilevel::cli::add_hyperclean_command(app);
  std::function<int()> run_meta = bilevel::cli::add_meta_command(app);
  std::function<int()> run_align = bilevel::cli::add_align_command(app);
  std::function<int()> run_plot = bilevel::cli::add_plot_command(app);
  std::function<int()> run_hpo = bilevel::cli::add_hpo_command(app);

  CLI::App* algorithms = app.add_subcommand("algorithms", "List the algorithms");
  CLI::App* devices = app.add_subcommand("devices", "List the backends available here");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
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
    for (const auto& command : {run_quadratic, run_hyperclean, run_meta, run_align, run_plot, run_hpo}) {
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
