// Every MPI rank of a run runs alike: the same command line, the same CPU kernels and data
// files of the same size, checked before any rank does work (check_ranks_agree).
#include "commands.hpp"

#include <bilevel/error.hpp>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

namespace bilevel::cli {
namespace {

std::string g_command_line;

/// FNV-1a, 64 bits.
std::uint64_t fingerprint(const std::string& text) {
  std::uint64_t h = 1469598103934665603ull;
  for (unsigned char c : text) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

/// The sizes of the data: a file's, or a folder's files' (in name order); "" when `data` is
/// not a path (fashion-mnist, synthetic).
std::string data_sizes(const std::string& data) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (data.empty() || !fs::exists(data, ec)) return "";
  if (fs::is_regular_file(data, ec)) return std::to_string(fs::file_size(data, ec));
  std::vector<std::string> entries;
  for (const auto& e : fs::directory_iterator(data, ec))
    if (e.is_regular_file(ec))
      entries.push_back(e.path().filename().string() + ":" + std::to_string(e.file_size(ec)));
  std::sort(entries.begin(), entries.end());
  std::string out;
  for (const std::string& e : entries) out += e + ";";
  return out;
}

}  // namespace

std::shared_ptr<Communicator> make_run_communicator(const std::string& choice, Executor& exec) {
  BILEVEL_EXPECTS(choice != "off" || launched_world_size() <= 1,
                  "--distributed off, but an MPI launcher started " << launched_world_size()
                      << " ranks: each would run the whole problem alone and write the same "
                         "files; start one process, or use --distributed auto");
  return make_communicator(choice, exec);
}

void set_command_line(int argc, char** argv) {
  g_command_line.clear();
  for (int i = 1; i < argc; ++i) g_command_line += (i > 1 ? " " : "") + std::string(argv[i]);
}

const std::string& command_line() { return g_command_line; }

void check_ranks_agree(Communicator& comm, const std::string& what, const std::string& data) {
  if (comm.size() == 1) return;
  const char* isa = std::getenv("BILEVEL_CPU_ISA");
  const std::string mine = g_command_line + "\n" + (isa ? isa : "") + "\n" + data_sizes(data);
  const std::uint64_t h = fingerprint(mine);
  // four 16-bit pieces per rank, each exact in a double; every rank sees every rank's
  const int pieces = 4;
  std::vector<double> all(static_cast<std::size_t>(pieces * comm.size()), 0.0);
  for (int p = 0; p < pieces; ++p)
    all[static_cast<std::size_t>(comm.rank() * pieces + p)] =
        static_cast<double>((h >> (16 * p)) & 0xffffu);
  comm.allreduce_sum_host(all.data(), static_cast<index_t>(all.size()));
  std::string differ;
  for (int r = 1; r < comm.size(); ++r)
    for (int p = 0; p < pieces; ++p)
      if (all[static_cast<std::size_t>(r * pieces + p)] != all[static_cast<std::size_t>(p)]) {
        differ += (differ.empty() ? "" : ", ") + std::to_string(r);
        break;
      }
  BILEVEL_EXPECTS(differ.empty(),
                  what << ": the MPI ranks were not started alike: rank(s) " << differ
                       << " differ from rank 0 in their arguments, BILEVEL_CPU_ISA or data files "
                          "(rank " << comm.rank() << " runs '" << g_command_line
                       << "'); start every rank with the same command");
}

}  // namespace bilevel::cli
