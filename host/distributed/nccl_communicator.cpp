// NCCL between GPUs as a Communicator: its all-reduce runs on the CUDA executor's stream (so a
// solver iteration that contains it can be captured in a CUDA graph), bootstrapped over another
// communicator (MPI: rank 0's unique id reaches every rank through an all-reduce of its bytes).
// libnccl is loaded at run time (dlopen): the library neither links it nor needs it unless NCCL
// is asked for, and the toolkit's 200 MB libnccl need not travel with the binaries. Compiled
// with the toolkit's nccl.h (BILEVEL_WITH_NCCL); without it nccl_available() is false.
#include <bilevel/distributed.hpp>
#include <bilevel/error.hpp>

#include <cstdlib>
#include <string>
#include <vector>

#if BILEVEL_WITH_NCCL
#include <cuda_runtime.h>
#include <dlfcn.h>
#include <nccl.h>
#endif

namespace bilevel {

#if BILEVEL_WITH_NCCL
namespace {

/// The entry points this communicator uses, from a dlopen'ed libnccl.
struct NcclLibrary {
  void* handle = nullptr;
  std::string path, why_not;
  ncclResult_t (*get_unique_id)(ncclUniqueId*) = nullptr;
  ncclResult_t (*comm_init_rank)(ncclComm_t*, int, ncclUniqueId, int) = nullptr;
  ncclResult_t (*all_reduce)(const void*, void*, size_t, ncclDataType_t, ncclRedOp_t, ncclComm_t,
                             cudaStream_t) = nullptr;
  ncclResult_t (*comm_destroy)(ncclComm_t) = nullptr;
  const char* (*error_string)(ncclResult_t) = nullptr;
  ncclResult_t (*get_version)(int*) = nullptr;
};

/// Loads libnccl once: $BILEVEL_NCCL_LIBRARY if set, else libnccl.so.2 from the loader's
/// path, else the CUDA toolkit's lib folder this build was configured with.
const NcclLibrary& nccl_library() {
  static const NcclLibrary lib = [] {
    NcclLibrary l;
    std::vector<std::string> candidates;
    if (const char* env = std::getenv("BILEVEL_NCCL_LIBRARY")) candidates.emplace_back(env);
    candidates.emplace_back("libnccl.so.2");
#ifdef BILEVEL_NCCL_TOOLKIT_LIBRARY
    candidates.emplace_back(BILEVEL_NCCL_TOOLKIT_LIBRARY);
#endif
    std::string tried;
    for (const std::string& c : candidates) {
      l.handle = dlopen(c.c_str(), RTLD_NOW | RTLD_LOCAL);
      if (l.handle != nullptr) {
        l.path = c;
        break;
      }
      tried += (tried.empty() ? "" : ", ") + c;
    }
    if (l.handle == nullptr) {
      l.why_not = "libnccl was not found (tried " + tried +
                  "; set BILEVEL_NCCL_LIBRARY to its path)";
      return l;
    }
    const auto symbol = [&](auto& fn, const char* name) {
      fn = reinterpret_cast<std::remove_reference_t<decltype(fn)>>(dlsym(l.handle, name));
      if (fn == nullptr && l.why_not.empty())
        l.why_not = l.path + " lacks " + name;
    };
    symbol(l.get_unique_id, "ncclGetUniqueId");
    symbol(l.comm_init_rank, "ncclCommInitRank");
    symbol(l.all_reduce, "ncclAllReduce");
    symbol(l.comm_destroy, "ncclCommDestroy");
    symbol(l.error_string, "ncclGetErrorString");
    symbol(l.get_version, "ncclGetVersion");
    return l;
  }();
  return lib;
}

void check_nccl(ncclResult_t rc, const char* what) {
  if (rc == ncclSuccess) return;
  throw Error(std::string("NCCL ") + what + " failed: " + nccl_library().error_string(rc));
}

class NcclCommunicator final : public Communicator {
 public:
  NcclCommunicator(std::shared_ptr<Communicator> bootstrap, Executor& exec)
      : bootstrap_(std::move(bootstrap)) {
    const NcclLibrary& lib = nccl_library();
    // rank 0's unique id, to every rank: the sum of its bytes and the others' zeros
    ncclUniqueId id{};
    if (bootstrap_->rank() == 0) check_nccl(lib.get_unique_id(&id), "ncclGetUniqueId");
    std::vector<double> bytes(sizeof id.internal, 0.0);
    if (bootstrap_->rank() == 0)
      for (std::size_t i = 0; i < bytes.size(); ++i)
        bytes[i] = static_cast<unsigned char>(id.internal[i]);
    bootstrap_->allreduce_sum_host(bytes.data(), static_cast<index_t>(bytes.size()));
    for (std::size_t i = 0; i < bytes.size(); ++i)
      id.internal[i] = static_cast<char>(static_cast<unsigned char>(bytes[i]));
    (void)exec;  // the executor's device is the current one (NCCL binds the communicator to it)
    check_nccl(lib.comm_init_rank(&comm_, bootstrap_->size(), id, bootstrap_->rank()),
               "ncclCommInitRank (ranks sharing one GPU need --distributed mpi)");
    int version = 0;
    lib.get_version(&version);
    version_ = version;
  }
  ~NcclCommunicator() override {
    if (comm_ != nullptr) nccl_library().comm_destroy(comm_);
  }
  int rank() const override { return bootstrap_->rank(); }
  int size() const override { return bootstrap_->size(); }
  std::string transport() const override {
    return "nccl " + std::to_string(version_) + " (" + std::to_string(size()) +
           (size() == 1 ? " rank" : " ranks") + ", bootstrapped over " + bootstrap_->transport() +
           ")";
  }
  void allreduce_sum(Executor& exec, float* data, index_t count) override {
    reduce(exec, data, count, ncclFloat);
  }
  void allreduce_sum(Executor& exec, double* data, index_t count) override {
    reduce(exec, data, count, ncclDouble);
  }
  void allreduce_sum_host(double* data, index_t count) override {
    bootstrap_->allreduce_sum_host(data, count);
  }
  void barrier() override { bootstrap_->barrier(); }
  bool capturable() const override { return true; }
  void abort(int code) override { bootstrap_->abort(code); }

 private:
  void reduce(Executor& exec, void* data, index_t count, ncclDataType_t type) {
    BILEVEL_EXPECTS(exec.backend() == Backend::cuda,
                    "NCCL all-reduce on a " << to_string(exec.backend())
                                            << " executor: NCCL needs the CUDA backend");
    if (count == 0) return;
    // in place, on the executor's stream (recorded like any kernel when captured)
    check_nccl(nccl_library().all_reduce(data, data, static_cast<std::size_t>(count), type,
                                         ncclSum, comm_,
                                         static_cast<cudaStream_t>(exec.native_stream())),
               "ncclAllReduce");
  }

  std::shared_ptr<Communicator> bootstrap_;
  ncclComm_t comm_ = nullptr;
  int version_ = 0;
};

}  // namespace

bool nccl_available(std::string* why_not) {
  const NcclLibrary& lib = nccl_library();
  if (why_not != nullptr) *why_not = lib.why_not;
  return lib.why_not.empty();
}

std::shared_ptr<Communicator> nccl_communicator(std::shared_ptr<Communicator> bootstrap,
                                                Executor& exec) {
  BILEVEL_EXPECTS(bootstrap != nullptr, "nccl_communicator needs a bootstrap communicator");
  if (exec.backend() != Backend::cuda)
    throw NotSupported("NCCL runs between GPUs: the executor is " + to_string(exec.backend()) +
                       " (use --distributed mpi, or the CUDA backend)");
  std::string why;
  if (!nccl_available(&why)) throw NotSupported("NCCL is not available: " + why);
  return std::make_shared<NcclCommunicator>(std::move(bootstrap), exec);
}

#else

bool nccl_available(std::string* why_not) {
  if (why_not != nullptr) *why_not = "this build has no NCCL (nccl.h was not found at configure time)";
  return false;
}

std::shared_ptr<Communicator> nccl_communicator(std::shared_ptr<Communicator>, Executor& exec) {
  if (exec.backend() != Backend::cuda)
    throw NotSupported("NCCL runs between GPUs: the executor is " + to_string(exec.backend()) +
                       " (use --distributed mpi, or the CUDA backend)");
  throw NotSupported("this build has no NCCL (nccl.h was not found at configure time)");
}

#endif

}  // namespace bilevel
