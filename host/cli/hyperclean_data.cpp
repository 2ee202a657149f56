#include "hyperclean_data.hpp"

#include "data_source.hpp"
#include "given_splits.hpp"

namespace bilevel::cli {

std::optional<HypercleanData> read_given_splits(HypercleanArgs& a, int ranks) {
  if (!a.given_splits()) return std::nullopt;
  BILEVEL_EXPECTS(ranks == 1, "--validation-data and --test-data run in one process: a "
                              "data-parallel run splits one file into each rank's shard");
  HypercleanData data =
      cli::read_given_splits(a.data, a.validation_data, a.test_data, a.standardize);
  a.train = data.train.samples;
  a.validation = data.validation.samples;
  a.test = data.test.samples;
  a.corruption = 0;
  return data;
}

template <typename T>
HypercleanSetup<T> make_hyperclean_problem(const std::shared_ptr<Executor>& exec,
                                           const std::shared_ptr<Communicator>& comm,
                                           const HypercleanArgs& a,
                                           std::optional<HypercleanData> given) {
  HypercleanSetup<T> s;
  const bool sharded = comm->size() > 1;
  // the memory of this rank's shards (rank 0's is the largest)
  HypercleanArgs mine = a;
  mine.train = comm->shard(a.train).size();
  mine.validation = comm->shard(a.validation).size();
  mine.test = comm->shard(a.test).size();
  if (a.data == "synthetic") {
    // generated on the executor: the features never pass through the host
    const index_t needed = checked_add(checked_add(a.train, a.validation, "--train + --validation"),
                                       a.test, "--train + --validation + --test");
    BILEVEL_EXPECTS(needed <= a.samples, "split sizes do not fit: --samples " << a.samples
                                             << " but the split needs " << needed
                                             << " (train + validation + test)");
    s.memory = plan_memory<T>(*exec, mine, a.features, a.classes, comm->size());
    HypercleanTruth truth;
    // each rank generates only its shard
    s.problem = std::make_unique<HypercleanProblem<T>>(
        exec,
        SyntheticHypercleanSpec{a.train, a.validation, a.test, a.features, a.classes,
                                a.corruption, a.run.seed + 7, 3.0, a.feature_scales,
                                a.correlation},
        a.reg, &truth, comm, parse_data_precision(a.data_precision), s.memory.residence);
    s.corrupted = std::move(truth.corrupted);
    s.description = "synthetic (" + std::to_string(a.features) + " features, generated on " +
                    exec->device_name() + ")";
    return s;
  }
  // one process: the whole file, then the split; ranks: each streams the file and keeps only
  // its shard (the same samples, bit for bit)
  const SplitSizes sizes{a.train, a.validation, a.test};
  const HypercleanProtocol protocol = parse_hyperclean_protocol(a.protocol);
  HypercleanData data;
  if (given) {
    data = std::move(*given);
    data.bias = protocol == HypercleanProtocol::bilevel;  // the protocol's model, as its split's
    s.description = "'" + a.data + "', '" + a.validation_data + "', '" + a.test_data +
                    "' (splits as given, " +
                    (a.standardize ? "standardized on train" : "not standardized") + ")";
  } else if (sharded) {
    data = load_hyperclean_shard(a.data, sizes, a.corruption, a.run.seed, comm->rank(),
                                 comm->size(), "--data", protocol);
    s.description = describe_data_source(a.data, "--data");
  } else {
    const LoadedData loaded = load_data(a.data);
    data = prepare_hyperclean(loaded.pool, loaded.test, sizes, a.corruption, a.run.seed,
                              protocol);
    s.description = loaded.description;
  }
  s.memory = plan_memory<T>(*exec, mine, data.train.features, data.train.classes, comm->size());
  s.problem = std::make_unique<HypercleanProblem<T>>(exec, data, a.reg, comm,
                                                     parse_data_precision(a.data_precision),
                                                     s.memory.residence);
  s.corrupted = data.corrupted;
  return s;
}

template HypercleanSetup<float> make_hyperclean_problem<float>(
    const std::shared_ptr<Executor>&, const std::shared_ptr<Communicator>&, const HypercleanArgs&,
    std::optional<HypercleanData>);
template HypercleanSetup<double> make_hyperclean_problem<double>(
    const std::shared_ptr<Executor>&, const std::shared_ptr<Communicator>&, const HypercleanArgs&,
    std::optional<HypercleanData>);

}  // namespace bilevel::cli
