// How many threads the `bilevel` tool starts on the CPU when the user does not say (--threads,
// OMP_NUM_THREADS). Measured on the 2-core VM, 2026-12-03, a SOBA iteration at B = 1
// (docs/design.md, "Threads on a shared machine"):
//
//   2 threads, idle machine:            libgomp's default wait 734 us, OMP_WAIT_POLICY=passive
//                                       3946 us, GOMP_SPINCOUNT=3000 732 us
//   2 threads, one core busy elsewhere: default 6497 us, passive 1261 us, spin 3000 4122 us
//   1 thread,  one core busy elsewhere: 1046 us
//
// A parallel region waits for its slowest thread, and a thread that shares its core with a
// busy process gets that core one time slice in two: no wait policy makes up for more threads
// than idle cores, and a passive wait costs 5x on an idle machine (each region wakes its
// threads through the kernel). So the tool keeps OpenMP's default wait and starts one thread
// per core that was idle when it started, measured over 100 ms of /proc/stat. (libgomp reads
// its wait policy from the environment before main(), so a program cannot change it for
// itself anyway.)
#include "commands.hpp"

#include <sched.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <thread>

namespace bilevel::cli {
namespace {

bool g_threads_given = false;

/// cpuN -> (idle, total) jiffies from /proc/stat.
std::map<int, std::pair<unsigned long long, unsigned long long>> cpu_times() {
  std::map<int, std::pair<unsigned long long, unsigned long long>> out;
  std::ifstream in("/proc/stat");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("cpu", 0) != 0 || line.size() < 4 || !std::isdigit(line[3])) continue;
    std::istringstream fields(line.substr(3));
    int cpu = 0;
    unsigned long long v[8] = {};
    fields >> cpu;
    for (auto& x : v) fields >> x;  // user nice system idle iowait irq softirq steal
    unsigned long long total = 0;
    for (auto x : v) total += x;
    out[cpu] = {v[3] + v[4], total};
  }
  return out;
}

}  // namespace

void note_threads_given() { g_threads_given = true; }

int idle_cores(double* busy_elsewhere) {
  cpu_set_t allowed;
  CPU_ZERO(&allowed);
  if (sched_getaffinity(0, sizeof allowed, &allowed) != 0) return -1;
  const auto before = cpu_times();
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  const auto after = cpu_times();
  double idle = 0, cores = 0;
  for (const auto& [cpu, t] : after) {
    if (cpu >= CPU_SETSIZE || !CPU_ISSET(cpu, &allowed)) continue;
    const auto it = before.find(cpu);
    if (it == before.end() || t.second <= it->second.second) continue;
    cores += 1;
    idle += static_cast<double>(t.first - it->second.first) /
            static_cast<double>(t.second - it->second.second);
  }
  if (cores == 0) return -1;
  if (busy_elsewhere) *busy_elsewhere = cores - idle;
  return std::max(1, static_cast<int>(std::lround(std::min(idle, cores))));
}

void choose_cpu_threads() {
  if (g_threads_given || std::getenv("OMP_NUM_THREADS") != nullptr) return;
  double busy = 0;
  const int idle = idle_cores(&busy);
  if (idle < 1 || idle >= cpu_threads()) return;
  std::fprintf(stderr,
               "bilevel: %.1f of the %d cores were busy with other work at start: %d CPU "
               "thread%s (--threads N chooses)\n",
               busy, cpu_threads(), idle, idle == 1 ? "" : "s");
  set_cpu_threads(idle);
}

}  // namespace bilevel::cli
