// Subcommands of the `bilevel` tool.
#pragma once

#include <CLI/CLI.hpp>

#include <bilevel/distributed.hpp>
#include <bilevel/executor.hpp>
#include <bilevel/solvers/solver.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace bilevel::cli {

/// Each registers a subcommand on `app`; the returned function runs it when it was parsed
/// (its exit code), and returns -1 otherwise.
std::function<int()> add_quadratic_command(CLI::App& app);
std::function<int()> add_quadratics_command(CLI::App& app);
std::function<int()> add_hyperclean_command(CLI::App& app);
std::function<int()> add_meta_command(CLI::App& app);
std::function<int()> add_align_command(CLI::App& app);
std::function<int()> add_plot_command(CLI::App& app);
std::function<int()> add_hpo_command(CLI::App& app);

/// The options every solving command shares.
struct RunOptions {
  std::string backend = "auto";
  std::string precision = "double";
  std::string metrics;
  std::uint64_t seed = 0;
  std::string algo = "stocbio";
  index_t instances = 1;
  bool graphs = true;  ///< --no-graph turns CUDA graph capture of iterations off
  std::string checkpoint;        ///< --checkpoint FILE
  index_t checkpoint_every = 500;
  std::string resume;            ///< --resume FILE
  bool independent_batches = false;  ///< --independent-batches
  /// --set KEY=V[,V...]: any algorithm option by its key (algorithm_option_fields), applied
  /// after every other option, so it wins.
  std::vector<std::string> settings;
};
/// Applies RunOptions::settings to `o` (set_algorithm_option, in command-line order).
void apply_settings(const RunOptions& run, AlgorithmOptions& o);
/// Registers --backend, --precision, --metrics and --no-graph on `cmd` (every solving command).
void add_execution_options(CLI::App* cmd, std::string& backend, std::string& precision,
                           std::string& metrics, bool& graphs);
/// Registers --backend, --precision, --metrics, --seed, --algo, --instances, --no-graph,
/// --checkpoint, --checkpoint-every, --resume and --set on `cmd`.
void add_run_options(CLI::App* cmd, RunOptions& o, const std::string& seed_help);

/// The executor for --backend; says on stderr when `auto` falls back to the CPU, and why. On the
/// CPU without --threads or OMP_NUM_THREADS, one thread per core idle at start
/// (choose_cpu_threads).
std::shared_ptr<Executor> make_cli_executor(const std::string& backend);

/// thread_policy.cpp: --threads was given; the cores idle over 100 ms (-1: unknown;
/// `busy_elsewhere` gets the busy ones); and the CPU threads set to the idle cores when fewer
/// than the default and the user did not choose.
void note_threads_given();
int idle_cores(double* busy_elsewhere = nullptr);
void choose_cpu_threads();

/// make_communicator for --distributed, refusing `off` under an MPI launcher of several ranks
/// (each rank would run the whole problem alone and write the same files, and a mix of `off`
/// and MPI ranks waits forever).
std::shared_ptr<Communicator> make_run_communicator(const std::string& choice, Executor& exec);

/// The command line as the user gave it (main.cpp records it).
void set_command_line(int argc, char** argv);
const std::string& command_line();
/// Refuses to start (InvalidArgument on every rank, naming the ranks that differ) unless every
/// rank of `comm` runs the same command line and the same BILEVEL_CPU_ISA, and sees data files
/// of the same size (`data`: a file or a folder's files; "" or a name like "synthetic": none).
/// Ranks started with different settings would otherwise wait for each other forever or
/// finish with wrong answers. `what` names the command in the message.
void check_ranks_agree(Communicator& comm, const std::string& what, const std::string& data = "");

/// Integer-option validators with plain messages ("must be >= 0, got -1").
CLI::Validator non_negative_integer();
CLI::Validator positive_integer();
/// A thread count in [1, max_cpu_threads()].
CLI::Validator thread_count();
/// A finite number > 0, the whole text parsed (steps: "" or "-1" or "1e999" are refused).
CLI::Validator positive_number();
/// A finite number in [lo, hi], the whole text parsed (CLI11's Range and PositiveNumber let
/// "nan" through: every comparison with NaN is false).
CLI::Validator number_in(double lo, double hi);
/// A number in [0, 1) (the corruption fraction).
CLI::Validator fraction_below_one();
/// An integer in [0, 2^64) written in digits (seeds: "-1", "2^64" or "1e23" are refused).
CLI::Validator seed_value();

}  // namespace bilevel::cli
