// The single-process communicator and the choice of a transport (the shard arithmetic: shard.cpp).
#include <bilevel/distributed.hpp>
#include <bilevel/error.hpp>

#include <algorithm>
#include <cstdlib>

namespace bilevel {

namespace {
class LocalCommunicator final : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  std::string transport() const override { return "local"; }
  void allreduce_sum(Executor&, float*, index_t) override {}
  void allreduce_sum(Executor&, double*, index_t) override {}
  void allreduce_sum_host(double*, index_t) override {}
  void barrier() override {}
};
}  // namespace

std::shared_ptr<Communicator> local_communicator() {
  static const auto local = std::make_shared<LocalCommunicator>();
  return local;
}

bool launched_by_mpi() {
  for (const char* name : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK", "MPI_LOCALNRANKS"})
    if (std::getenv(name) != nullptr) return true;
  return false;
}

int launched_world_size() {
  for (const char* name : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "MPI_LOCALNRANKS"})
    if (const char* v = std::getenv(name)) {
      const int n = std::atoi(v);
      if (n >= 1) return n;
    }
  return 1;
}

int launched_local_rank() {
  for (const char* name : {"OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID", "SLURM_LOCALID"})
    if (const char* v = std::getenv(name)) return std::max(0, std::atoi(v));
  return 0;
}

int launched_local_size() {
  for (const char* name : {"OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS"})
    if (const char* v = std::getenv(name)) {
      const int n = std::atoi(v);
      if (n >= 1) return n;
    }
  return 1;
}

std::shared_ptr<Communicator> make_communicator(const std::string& choice) {
  if (choice == "off") return local_communicator();
  if (choice == "mpi") return mpi_communicator();
  if (choice == "auto") return launched_by_mpi() && mpi_built() ? mpi_communicator() : local_communicator();
  if (choice == "nccl")
    throw InvalidArgument("the nccl transport needs the executor: make_communicator(choice, exec)");
  throw InvalidArgument("unknown distributed transport '" + choice + "' (known: auto mpi nccl off)");
}

std::shared_ptr<Communicator> make_communicator(const std::string& choice, Executor& exec) {
  if (choice == "nccl")
    return nccl_communicator(launched_by_mpi() ? mpi_communicator() : local_communicator(), exec);
  if (choice != "auto") return make_communicator(choice);
  if (!launched_by_mpi() || !mpi_built()) return local_communicator();
  auto mpi = mpi_communicator();
  // NCCL when every rank of this node has a GPU of its own (NCCL refuses shared ones)
  if (mpi->size() > 1 && exec.backend() == Backend::cuda && nccl_available() &&
      launched_local_size() <= cuda_device_count())
    return nccl_communicator(mpi, exec);
  return mpi;
}

}  // namespace bilevel
