// MPI_COMM_WORLD as a Communicator (compiled with BILEVEL_WITH_MPI; otherwise mpi_communicator
// says the build has none). CPU backend: MPI_Allreduce in place on the arrays (the CPU executor
// has finished its kernels when the call returns). CUDA: on the device arrays directly when the
// MPI library is CUDA-aware (OpenMPI's MPIX_Query_cuda_support, asked at run time), after the
// stream has finished; otherwise host-staged (synchronise, copy, reduce, copy back). NCCL is the
// other GPU transport (nccl_communicator.cpp).
#include <bilevel/distributed.hpp>
#include <bilevel/error.hpp>

#if BILEVEL_WITH_MPI
#include <mpi.h>
#if __has_include(<mpi-ext.h>)
#include <mpi-ext.h>  // OpenMPI's extensions: MPIX_Query_cuda_support
#endif

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>
#include <vector>
#endif

namespace bilevel {

#if BILEVEL_WITH_MPI
namespace {

void check_mpi(int rc, const char* what) {
  if (rc == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  MPI_Error_string(rc, text, &length);
  throw Error(std::string("MPI ") + what + " failed: " + std::string(text, static_cast<std::size_t>(length)));
}

class MpiCommunicator final : public Communicator {
 public:
  MpiCommunicator() {
    check_mpi(MPI_Comm_rank(MPI_COMM_WORLD, &rank_), "MPI_Comm_rank");
    check_mpi(MPI_Comm_size(MPI_COMM_WORLD, &size_), "MPI_Comm_size");
    // errors come back as codes (turned into exceptions), not as an abort inside MPI
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
#if defined(OMPI_HAVE_MPI_EXT_CUDA) && OMPI_HAVE_MPI_EXT_CUDA
    // built with the extension; whether this library was built CUDA-aware is known at run time
    cuda_aware_ = MPIX_Query_cuda_support() == 1;
#endif
  }
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string transport() const override {
    return "mpi (" + std::to_string(size_) + " ranks" + (cuda_aware_ ? ", CUDA-aware" : "") + ")";
  }
  void allreduce_sum(Executor& exec, float* data, index_t count) override {
    reduce(exec, data, count, MPI_FLOAT);
  }
  void allreduce_sum(Executor& exec, double* data, index_t count) override {
    reduce(exec, data, count, MPI_DOUBLE);
  }
  void allreduce_sum_host(double* data, index_t count) override {
    if (size_ > 1 && count > 0)
      check_mpi(MPI_Allreduce(MPI_IN_PLACE, data, static_cast<int>(count), MPI_DOUBLE, MPI_SUM,
                              MPI_COMM_WORLD),
                "MPI_Allreduce");
  }
  void barrier() override { check_mpi(MPI_Barrier(MPI_COMM_WORLD), "MPI_Barrier"); }
  void abort(int code) override {
    if (size_ > 1) MPI_Abort(MPI_COMM_WORLD, code);
  }

 private:
  template <typename T>
  void reduce(Executor& exec, T* data, index_t count, MPI_Datatype type) {
    if (size_ == 1 || count == 0) return;
    BILEVEL_EXPECTS(count <= INT32_MAX, "MPI all-reduce of " << count << " values (more than 2^31)");
    if (exec.backend() == Backend::cpu) {
      check_mpi(MPI_Allreduce(MPI_IN_PLACE, data, static_cast<int>(count), type, MPI_SUM,
                              MPI_COMM_WORLD),
                "MPI_Allreduce");
      return;
    }
    if (cuda_aware_) {
      // on the device arrays, once the kernels that wrote them are done
      exec.synchronize();
      check_mpi(MPI_Allreduce(MPI_IN_PLACE, data, static_cast<int>(count), type, MPI_SUM,
                              MPI_COMM_WORLD),
                "MPI_Allreduce (CUDA-aware)");
      return;
    }
    // host-staged
    staging_.resize(static_cast<std::size_t>(count) * sizeof(T));
    exec.copy_to_host(staging_.data(), data, static_cast<std::size_t>(count) * sizeof(T));
    check_mpi(MPI_Allreduce(MPI_IN_PLACE, staging_.data(), static_cast<int>(count), type, MPI_SUM,
                            MPI_COMM_WORLD),
              "MPI_Allreduce");
    exec.copy_from_host(data, staging_.data(), static_cast<std::size_t>(count) * sizeof(T));
  }

  int rank_ = 0, size_ = 1;
  bool cuda_aware_ = false;  ///< the MPI library reads and writes device memory
  std::vector<char> staging_;
};

/// MPI_Finalize at exit, after everything that used MPI.
struct Finalizer {
  ~Finalizer() {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (!finalized) MPI_Finalize();
  }
};

}  // namespace

std::shared_ptr<Communicator>& world_slot() {
  static std::shared_ptr<Communicator> world;
  return world;
}

bool mpi_built() { return true; }

std::shared_ptr<Communicator> active_mpi_communicator() { return world_slot(); }

std::shared_ptr<Communicator> mpi_communicator(double startup_timeout_s) {
  std::shared_ptr<Communicator>& world = world_slot();
  if (world) return world;
  int initialized = 0;
  MPI_Initialized(&initialized);
  if (!initialized) {
    int provided = 0;
    check_mpi(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided), "MPI_Init");
    static Finalizer finalizer;
  }
  auto comm = std::make_shared<MpiCommunicator>();
  // start-up: every rank must reach this barrier within the timeout
  MPI_Request request;
  check_mpi(MPI_Ibarrier(MPI_COMM_WORLD, &request), "MPI_Ibarrier");
  const auto start = std::chrono::steady_clock::now();
  for (int done = 0;;) {
    check_mpi(MPI_Test(&request, &done, MPI_STATUS_IGNORE), "MPI_Test");
    if (done) break;
    if (std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() >
        startup_timeout_s) {
      std::fprintf(stderr, "bilevel: rank %d of %d: the other ranks did not start within %.0f s\n",
                   comm->rank(), comm->size(), startup_timeout_s);
      MPI_Abort(MPI_COMM_WORLD, 2);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  world = comm;
  return world;
}

#else

bool mpi_built() { return false; }

std::shared_ptr<Communicator> active_mpi_communicator() { return nullptr; }

std::shared_ptr<Communicator> mpi_communicator(double) {
  throw NotSupported(
      "this build of bilevel has no MPI (configure with an MPI library installed, e.g. Debian's "
      "libopenmpi-dev)");
}

#endif

}  // namespace bilevel
