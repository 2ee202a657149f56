// Data-parallel runs over processes (MPI): a communicator, and the contiguous shard of a
// finite sum that each rank owns. Problems that support sharding (the quadratic so far) keep
// only their shard's samples; minibatch indices are still drawn globally (the same Philox
// draws on every rank), each rank sums the drawn samples it owns, and the partial sums are
// all-reduced, so the iterates are those of one process up to the order of the sums.
#pragma once

#include <bilevel/executor.hpp>
#include <bilevel/types.hpp>

#include <memory>
#include <string>

namespace bilevel {

/// The samples [begin, end) of a finite sum of n owned by one rank.
struct Shard {
  index_t begin = 0, end = 0;
  index_t size() const { return end - begin; }
};

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  /// "local" (one process), "mpi (host memory)", "mpi (host-staged)": what moves the data.
  virtual std::string transport() const = 0;
  /// data[0 .. count) <- its sum over the ranks, in place, after the work enqueued before it on
  /// exec's stream (CPU: at once; CUDA: the stream is synchronised and the values go through
  /// host memory). Collective: every rank calls it with the same count.
  virtual void allreduce_sum(Executor& exec, float* data, index_t count) = 0;
  virtual void allreduce_sum(Executor& exec, double* data, index_t count) = 0;
  /// The same on host memory (metrics, checks).
  virtual void allreduce_sum_host(double* data, index_t count) = 0;
  virtual void barrier() = 0;
  /// True when allreduce_sum can be recorded in a CUDA graph (not for host-staged MPI).
  virtual bool capturable() const { return size() == 1; }
  /// Ends every rank's process with `code` (MPI_Abort): a rank that fails must not leave the
  /// others waiting in a collective. Does nothing for a single process.
  virtual void abort(int code) { (void)code; }

  /// Rank r's share of n samples: contiguous, the first n % size ranks one sample more.
  Shard shard(index_t n) const { return shard_of(n, rank(), size()); }
  static Shard shard_of(index_t n, int rank, int size);
};

/// The communicator of a single process (size 1; allreduce does nothing).
std::shared_ptr<Communicator> local_communicator();

/// True when this build has MPI (configured with an MPI library found).
bool mpi_built();
/// True when this process was started by an MPI launcher (mpirun / mpiexec / srun set the
/// world size in the environment).
bool launched_by_mpi();
/// The world size the launcher announced in the environment (1 when not launched by one).
int launched_world_size();
/// MPI_COMM_WORLD, initialising MPI on first use (finalised at exit). Throws NotSupported when
/// the build has no MPI, and Error when no other rank answers within `startup_timeout_s`
/// seconds (a first barrier, so that a rank that never started does not hang the others).
std::shared_ptr<Communicator> mpi_communicator(double startup_timeout_s = 60.0);

/// The MPI world if this process has initialised it (mpi_communicator was called), else null.
std::shared_ptr<Communicator> active_mpi_communicator();

/// This process's rank among the ranks of its node, and their number, as the launcher
/// announced them (0 and 1 when not launched by one): which GPU a rank takes.
int launched_local_rank();
int launched_local_size();

/// The communicator a command uses: "auto" (MPI when launched by mpirun, else local), "mpi",
/// "off". Throws InvalidArgument for another value, NotSupported for "mpi" without MPI.
std::shared_ptr<Communicator> make_communicator(const std::string& choice);
/// The same for an executor, with "nccl" besides: NCCL between the GPUs, bootstrapped over MPI
/// (over nothing for one process). "auto" picks NCCL when launched by mpirun on the CUDA
/// backend with NCCL available and a GPU per rank of the node, else MPI (host-staged), else
/// local.
std::shared_ptr<Communicator> make_communicator(const std::string& choice, Executor& exec);

/// True when libnccl can be loaded (at run time: $BILEVEL_NCCL_LIBRARY, libnccl.so.2 on the
/// loader's path, or the CUDA toolkit's); else false and *why_not says why.
bool nccl_available(std::string* why_not = nullptr);
/// NCCL between GPUs: the all-reduce runs on exec's stream (capturable in a CUDA graph), the
/// communicator's unique id goes from rank 0 to the others through `bootstrap` (MPI, or the
/// local communicator for one process). Each rank needs its own GPU (NCCL refuses two ranks on
/// one; use MPI then). Throws NotSupported for a CPU executor or without NCCL.
std::shared_ptr<Communicator> nccl_communicator(std::shared_ptr<Communicator> bootstrap,
                                                Executor& exec);

}  // namespace bilevel
