// `bilevel plot METRICS.jsonl [more.jsonl ...] -o curves.png|svg`: the curves of recorded runs
// (the JSON lines the solving commands write) drawn by gnuplot (Debian's gnuplot-nox): each
// metric the files share against iterations and against seconds, one line per run and
// instance, the legend from each file's summary (algorithm, backend, device).
//
// A metrics file is data that people share: nothing in it may execute. gnuplot runs without a
// shell (fork + exec), reads its script on stdin and writes the picture to stdout, so no path
// and no temporary file is involved; the script holds the files' contents only as datablocks
// (plot_data.cpp). The picture is written to -o through PATH.tmp and a rename, and -o may not
// be one of the metrics files.
#include "commands.hpp"
#include "output_files.hpp"
#include "plot_data.hpp"

#include <bilevel/error.hpp>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace bilevel::cli {
namespace {

struct GnuplotResult {
  bool started = false;  ///< false: gnuplot is not installed (exec failed)
  int status = 0;        ///< its exit status
  std::string picture, errors;
};

/// Runs `gnuplot` (from PATH) with `script` on its stdin; its stdout and stderr come back.
GnuplotResult run_gnuplot(const std::string& script) {
  int in[2], out[2], err[2], exec_failed[2];
  if (pipe(in) != 0 || pipe(out) != 0 || pipe(err) != 0 || pipe2(exec_failed, O_CLOEXEC) != 0)
    throw Error(std::string("bilevel plot: cannot make pipes: ") + std::strerror(errno));
  const pid_t pid = fork();
  if (pid < 0) throw Error(std::string("bilevel plot: cannot start gnuplot: ") + std::strerror(errno));
  if (pid == 0) {
    dup2(in[0], 0);
    dup2(out[1], 1);
    dup2(err[1], 2);
    for (int fd : {in[0], in[1], out[0], out[1], err[0], err[1], exec_failed[0]}) close(fd);
    char* const argv[] = {const_cast<char*>("gnuplot"), nullptr};
    execvp("gnuplot", argv);
    const int e = errno;  // only reached when exec failed
    (void)!write(exec_failed[1], &e, sizeof e);
    _exit(127);
  }
  close(in[0]);
  close(out[1]);
  close(err[1]);
  close(exec_failed[1]);
  GnuplotResult result;
  int exec_errno = 0;
  result.started = read(exec_failed[0], &exec_errno, sizeof exec_errno) != sizeof exec_errno;
  close(exec_failed[0]);
  // write the script while reading what comes back (gnuplot may write before it has read all)
  struct sigaction ignore {}, previous {};
  ignore.sa_handler = SIG_IGN;
  sigaction(SIGPIPE, &ignore, &previous);
  std::size_t written = 0;
  bool out_open = true, err_open = true;
  fcntl(in[1], F_SETFL, O_NONBLOCK);
  int in_fd = in[1];
  while (out_open || err_open) {
    pollfd fds[3];
    int n = 0, i_out = -1, i_err = -1, i_in = -1;
    if (out_open) fds[i_out = n++] = {out[0], POLLIN, 0};
    if (err_open) fds[i_err = n++] = {err[0], POLLIN, 0};
    if (in_fd >= 0) fds[i_in = n++] = {in_fd, POLLOUT, 0};
    if (poll(fds, static_cast<nfds_t>(n), -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    char buffer[65536];
    if (i_out >= 0 && fds[i_out].revents) {
      const ssize_t got = read(out[0], buffer, sizeof buffer);
      if (got > 0) result.picture.append(buffer, static_cast<std::size_t>(got));
      else out_open = false;
    }
    if (i_err >= 0 && fds[i_err].revents) {
      const ssize_t got = read(err[0], buffer, sizeof buffer);
      if (got > 0 && result.errors.size() < 65536) result.errors.append(buffer, static_cast<std::size_t>(got));
      else if (got <= 0) err_open = false;
    }
    if (i_in >= 0 && fds[i_in].revents) {
      const ssize_t put = write(in_fd, script.data() + written, script.size() - written);
      if (put > 0) written += static_cast<std::size_t>(put);
      if (put < 0 && errno != EAGAIN) written = script.size();  // gnuplot stopped reading
      if (written == script.size()) {
        close(in_fd);
        in_fd = -1;
      }
    }
  }
  if (in_fd >= 0) close(in_fd);
  close(out[0]);
  close(err[0]);
  sigaction(SIGPIPE, &previous, nullptr);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  result.status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return result;
}

int plot(const std::vector<std::string>& files, const std::string& output, int width,
         int height, const std::string& script_copy) {
  const std::string ext = std::filesystem::path(output).extension().string();
  BILEVEL_EXPECTS(ext == ".png" || ext == ".svg",
                  "bilevel plot: -o must name a .png or .svg file, got '" << output << "'");
  for (const std::string& f : files)
    BILEVEL_EXPECTS(!same_file(f, output),
                    "bilevel plot: -o '" << output << "' is the metrics file '" << f
                                         << "' (it would be overwritten by the picture)");
  std::vector<MetricsRun> runs;
  for (const std::string& f : files) {
    std::ifstream in(f, std::ios::binary);
    if (!in) throw InvalidArgument("bilevel plot: cannot open metrics file '" + f + "'");
    runs.push_back(read_metrics(in, f));
  }
  const std::string script = gnuplot_script(runs, ext == ".png", width, height);
  if (!script_copy.empty()) {
    for (const std::string& f : files)
      BILEVEL_EXPECTS(!same_file(f, script_copy),
                      "bilevel plot: --script '" << script_copy << "' is the metrics file '" << f << "'");
    BILEVEL_EXPECTS(!same_file(script_copy, output),
                    "bilevel plot: --script and -o are one file ('" << output << "')");
    write_file_atomically(script_copy, script, "bilevel plot: --script");
  }
  const GnuplotResult g = run_gnuplot(script);
  if (!g.started)
    throw Error("bilevel plot: gnuplot is not installed (Debian: apt-get install gnuplot-nox; "
                "scripts/setup.sh installs it)");
  if (g.status != 0 || g.picture.empty())
    throw Error("bilevel plot: gnuplot failed (exit status " + std::to_string(g.status) + ")" +
                (g.errors.empty() ? std::string() : ": " + g.errors));
  write_file_atomically(output, g.picture, "bilevel plot: -o");
  const std::size_t metrics = shown_metrics(runs).size();
  std::printf("wrote %s: %zu run%s, %zu metric%s against iterations and seconds\n",
              output.c_str(), runs.size(), runs.size() == 1 ? "" : "s", metrics,
              metrics == 1 ? "" : "s");
  return 0;
}

}  // namespace

std::function<int()> add_plot_command(CLI::App& app) {
  struct Args {
    std::vector<std::string> files;
    std::string output, script;
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
  cmd->add_option("--script", a->script,
                  "Also write the gnuplot script to this file (data in datablocks; gnuplot < "
                  "FILE > picture draws it again)");
  return [a, cmd]() -> int {
    if (!cmd->parsed()) return -1;
    return plot(a->files, a->output, a->width, a->height, a->script);
  };
}

}  // namespace bilevel::cli
