// The hyper-cleaning protocol: split, standardize on train, corrupt a fraction of train labels;
// on the whole data (prepare_hyperclean) or, streaming the file, on one rank's shard
// (load_hyperclean_shard). Both make the same random choices from the sizes and the seed alone
// (HypercleanPlan) and sum the train statistics in the same order (TrainStatistics), so a
// shard is bit for bit those samples of the whole.
#include <bilevel/data.hpp>
#include <bilevel/distributed.hpp>
#include <bilevel/error.hpp>

#include "row_file.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

namespace bilevel {
namespace {

Dataset take(const Dataset& from, const std::vector<index_t>& order, index_t begin, index_t count,
             const std::string& name) {
  Dataset d;
  d.source = from.source + " [" + name + "]";
  d.samples = count;
  d.features = from.features;
  d.classes = from.classes;
  d.x.resize(static_cast<std::size_t>(count * from.features));
  d.labels.resize(static_cast<std::size_t>(count));
  for (index_t i = 0; i < count; ++i) {
    const index_t k = order[begin + i];
    std::copy_n(from.x.begin() + k * from.features, from.features, d.x.begin() + i * from.features);
    d.labels[i] = from.labels[k];
  }
  return d;
}

/// What the split is drawn from: a pool's (or the test pool's) name and sizes.
struct PoolShape {
  std::string source;
  index_t samples = 0, features = 0;
  int classes = 0;
};

void check_split(const PoolShape& pool, const std::optional<PoolShape>& test_pool,
                 const SplitSizes& sizes, double corruption) {
  BILEVEL_EXPECTS(corruption >= 0.0 && corruption <= 1.0,
                  "--corruption must be in [0, 1], got " << corruption);
  BILEVEL_EXPECTS(sizes.train > 0 && sizes.validation > 0 && sizes.test > 0,
                  "split sizes must be positive, got train " << sizes.train << ", validation "
                                                             << sizes.validation << ", test "
                                                             << sizes.test);
  const index_t from_pool =
      checked_add(checked_add(sizes.train, sizes.validation, "--train + --validation"),
                  test_pool ? 0 : sizes.test, "--train + --validation + --test");
  BILEVEL_EXPECTS(from_pool <= pool.samples,
                  "split sizes do not fit: " << pool.source << " has " << pool.samples
                                             << " samples, the split needs " << from_pool
                                             << (test_pool ? " (train + validation)"
                                                           : " (train + validation + test)"));
  if (test_pool) {
    BILEVEL_EXPECTS(sizes.test <= test_pool->samples,
                    "split sizes do not fit: " << test_pool->source << " has "
                                               << test_pool->samples << " test samples, "
                                               << sizes.test << " asked for");
    BILEVEL_EXPECTS(test_pool->features == pool.features,
                    test_pool->source << " has " << test_pool->features << " features, "
                                      << pool.source << " " << pool.features);
    BILEVEL_EXPECTS(test_pool->classes <= pool.classes,
                    test_pool->source << " has a label outside the training classes [0, "
                                      << pool.classes << ")");
  }
}

/// The protocol's random choices, from the sizes and the seed alone (no data).
struct HypercleanPlan {
  std::vector<index_t> order;       ///< pool indices: train, validation (, test) in turn
  std::vector<index_t> test_order;  ///< test pool indices (with a test pool)
  std::vector<std::uint8_t> corrupted;  ///< per train sample: 1 when its label changes
  std::vector<int> shift;           ///< per train sample: the new label is (y + shift) % C
  /// pool index -> 1 when the sample is in the train split
  std::vector<std::uint8_t> in_train;
};

HypercleanPlan plan_hyperclean(index_t pool_samples, std::optional<index_t> test_samples,
                               int classes, const SplitSizes& sizes, double corruption,
                               std::uint64_t seed, HypercleanProtocol protocol) {
  HypercleanPlan plan;
  std::mt19937_64 rng(seed);
  plan.order.resize(static_cast<std::size_t>(pool_samples));
  std::iota(plan.order.begin(), plan.order.end(), index_t(0));
  std::shuffle(plan.order.begin(), plan.order.end(), rng);
  if (test_samples) {
    plan.test_order.resize(static_cast<std::size_t>(*test_samples));
    std::iota(plan.test_order.begin(), plan.test_order.end(), index_t(0));
    std::shuffle(plan.test_order.begin(), plan.test_order.end(), rng);
  }
  const index_t n = sizes.train;
  plan.corrupted.assign(static_cast<std::size_t>(n), 0);
  plan.shift.assign(static_cast<std::size_t>(n), 0);
  plan.in_train.assign(static_cast<std::size_t>(pool_samples), 0);
  for (index_t i = 0; i < n; ++i) plan.in_train[plan.order[i]] = 1;
  if (protocol == HypercleanProtocol::benchopt) {
    // each label replaced with probability p by a uniform class: (y + s) % C with s uniform in
    // [0, C) is uniform over the classes; s = 0 keeps the true label
    std::uniform_real_distribution<double> coin(0.0, 1.0);
    std::uniform_int_distribution<int> any(0, classes - 1);
    for (index_t i = 0; i < n; ++i) {
      if (coin(rng) >= corruption) continue;
      plan.shift[i] = any(rng);
      plan.corrupted[i] = plan.shift[i] != 0 ? 1 : 0;
    }
    return plan;
  }
  // corrupt exactly round(p n) train labels, each to a different class
  const index_t n_bad = static_cast<index_t>(std::llround(corruption * n));
  std::vector<index_t> who(static_cast<std::size_t>(n));
  std::iota(who.begin(), who.end(), index_t(0));
  std::shuffle(who.begin(), who.end(), rng);
  std::uniform_int_distribution<int> shift(1, classes - 1);
  for (index_t k = 0; k < n_bad; ++k) {
    plan.shift[who[k]] = shift(rng);
    plan.corrupted[who[k]] = 1;
  }
  return plan;
}

/// The train mean and 1 / standard deviation of every feature (constant features: 1), summed in
/// double over the train samples in the pool's order: one pass of add_to_mean, then one of
/// add_to_variance.
class TrainStatistics {
 public:
  TrainStatistics(index_t features, index_t samples)
      : samples_(samples), mean_(static_cast<std::size_t>(features), 0.0),
        inv_std_(static_cast<std::size_t>(features), 0.0) {}
  void add_to_mean(const float* row) {
    for (std::size_t j = 0; j < mean_.size(); ++j) mean_[j] += row[j];
  }
  void finish_mean() {
    for (auto& m : mean_) m /= static_cast<double>(samples_);
  }
  void add_to_variance(const float* row) {
    for (std::size_t j = 0; j < mean_.size(); ++j) {
      const double c = row[j] - mean_[j];
      inv_std_[j] += c * c;
    }
  }
  void finish() {
    for (auto& s : inv_std_) {
      const double sd = std::sqrt(s / static_cast<double>(samples_));
      s = sd > 1e-12 ? 1.0 / sd : 1.0;
    }
  }
  void standardize(Dataset& d) const {
    for (index_t i = 0; i < d.samples; ++i)
      for (index_t j = 0; j < d.features; ++j) {
        float& v = d.x[i * d.features + j];
        v = static_cast<float>((v - mean_[j]) * inv_std_[j]);
      }
  }

 private:
  index_t samples_;
  std::vector<double> mean_, inv_std_;
};

/// The statistics of the train rows that `each_train_row(visit)` visits, in the order it visits
/// them: one walk for the means, a second for the variances.
template <typename EachTrainRow>
TrainStatistics train_statistics(index_t features, index_t samples, EachTrainRow each_train_row) {
  TrainStatistics stats(features, samples);
  each_train_row([&](const float* row) { stats.add_to_mean(row); });
  stats.finish_mean();
  each_train_row([&](const float* row) { stats.add_to_variance(row); });
  stats.finish();
  return stats;
}

/// Replaces the planned train labels; `first`: the index of d's first sample in the split.
void corrupt(Dataset& d, const HypercleanPlan& plan, index_t first, int classes) {
  for (index_t i = 0; i < d.samples; ++i)
    if (plan.corrupted[first + i]) d.labels[i] = (d.labels[i] + plan.shift[first + i]) % classes;
}

}  // namespace

HypercleanProtocol parse_hyperclean_protocol(const std::string& text) {
  if (text == "bilevel") return HypercleanProtocol::bilevel;
  if (text == "benchopt") return HypercleanProtocol::benchopt;
  BILEVEL_EXPECTS(false, "hyper-cleaning protocol must be bilevel or benchopt, got '" << text << "'");
  return HypercleanProtocol::bilevel;
}

std::string to_string(HypercleanProtocol protocol) {
  return protocol == HypercleanProtocol::benchopt ? "benchopt" : "bilevel";
}

HypercleanData prepare_hyperclean(const Dataset& pool, const std::optional<Dataset>& test_pool,
                                  const SplitSizes& sizes, double corruption,
                                  std::uint64_t seed, HypercleanProtocol protocol) {
  std::optional<PoolShape> test_shape;
  if (test_pool)
    test_shape = PoolShape{test_pool->source, test_pool->samples, test_pool->features,
                           test_pool->classes};
  check_split(PoolShape{pool.source, pool.samples, pool.features, pool.classes}, test_shape, sizes,
              corruption);
  const HypercleanPlan plan =
      plan_hyperclean(pool.samples, test_pool ? std::optional<index_t>(test_pool->samples)
                                              : std::nullopt,
                      pool.classes, sizes, corruption, seed, protocol);
  HypercleanData h;
  h.bias = protocol == HypercleanProtocol::bilevel;
  h.train = take(pool, plan.order, 0, sizes.train, "train");
  h.validation = take(pool, plan.order, sizes.train, sizes.validation, "validation");
  if (test_pool) {
    h.test = take(*test_pool, plan.test_order, 0, sizes.test, "test");
    h.test.classes = pool.classes;
  } else {
    h.test = take(pool, plan.order, sizes.train + sizes.validation, sizes.test, "test");
  }

  // standardize with train statistics (summed in the pool's order, as the shard loader does)
  const index_t d = pool.features;
  const TrainStatistics stats = train_statistics(d, sizes.train, [&](auto visit) {
    for (index_t k = 0; k < pool.samples; ++k)
      if (plan.in_train[k]) visit(pool.x.data() + k * d);
  });
  stats.standardize(h.train);
  stats.standardize(h.validation);
  stats.standardize(h.test);

  h.clean_train_labels = h.train.labels;
  corrupt(h.train, plan, 0, pool.classes);
  h.corrupted = plan.corrupted;
  return h;
}

HypercleanData prepare_given_splits(Dataset train, Dataset validation, Dataset test,
                                    bool standardize) {
  for (const Dataset* split : {&train, &validation, &test}) {
    split->validate();
    BILEVEL_EXPECTS(split->features == train.features,
                    "'" << split->source << "' has " << split->features << " features, '"
                        << train.source << "' (train) " << train.features);
  }
  HypercleanData h;
  const int classes = std::max({train.classes, validation.classes, test.classes});
  if (standardize) {
    // with train statistics, summed in the train split's order
    const index_t d = train.features;
    const TrainStatistics stats = train_statistics(d, train.samples, [&](auto visit) {
      for (index_t k = 0; k < train.samples; ++k) visit(train.x.data() + k * d);
    });
    for (Dataset* split : {&train, &validation, &test}) stats.standardize(*split);
  }
  h.train = std::move(train);
  h.validation = std::move(validation);
  h.test = std::move(test);
  for (Dataset* split : {&h.train, &h.validation, &h.test}) split->classes = classes;
  h.clean_train_labels = h.train.labels;
  h.corrupted.assign(static_cast<std::size_t>(h.train.samples), 0);
  return h;
}

HypercleanData load_hyperclean_shard(const std::string& spec, const SplitSizes& sizes,
                                     double corruption, std::uint64_t seed, int rank, int ranks,
                                     const std::string& what, HypercleanProtocol protocol) {
  BILEVEL_EXPECTS(ranks >= 1 && rank >= 0 && rank < ranks,
                  "load_hyperclean_shard: rank " << rank << " of " << ranks);
  const detail::DataFiles files = detail::resolve_data_files(spec, what);
  const std::unique_ptr<detail::RowFile> pool =
      files.idx ? detail::open_idx_rows(files.train_images, files.train_labels)
                : detail::open_libsvm_rows(files.libsvm);
  std::unique_ptr<detail::RowFile> test_pool;
  if (files.idx) test_pool = detail::open_idx_rows(files.test_images, files.test_labels);
  const auto shape = [](const detail::RowFile& f) {
    return PoolShape{f.source(), f.samples(), f.features(), f.classes()};
  };
  check_split(shape(*pool), test_pool ? std::optional<PoolShape>(shape(*test_pool)) : std::nullopt,
              sizes, corruption);
  for (const auto& [n, split] : {std::pair{sizes.train, "train"},
                                 std::pair{sizes.validation, "validation"},
                                 std::pair{sizes.test, "test"}})
    BILEVEL_EXPECTS(n >= ranks, "the " << split << " split's " << n
                                       << " samples cannot be shared by " << ranks
                                       << " ranks (each needs one)");
  const HypercleanPlan plan =
      plan_hyperclean(pool->samples(), test_pool ? std::optional<index_t>(test_pool->samples())
                                                 : std::nullopt,
                      pool->classes(), sizes, corruption, seed, protocol);
  const index_t d = pool->features();
  const int classes = pool->classes();

  // this rank's shard of each split, and where each of its samples lies in its file
  struct Slot {
    index_t row;       // in the file
    Dataset* split;
    index_t position;  // in the shard
  };
  std::vector<Slot> pool_slots, test_slots;
  HypercleanData h;
  h.bias = protocol == HypercleanProtocol::bilevel;
  const auto plan_shard = [&](Dataset& out, const std::string& name, index_t total,
                              const std::vector<index_t>& order, index_t offset,
                              std::vector<Slot>& slots, const detail::RowFile& file) {
    const Shard s = Communicator::shard_of(total, rank, ranks);
    out.source = file.source() + " [" + name + "]";
    out.samples = s.size();
    out.first = s.begin;
    out.total = total;
    out.features = d;
    out.classes = classes;
    out.x.assign(static_cast<std::size_t>(checked_mul(s.size(), d, what + ": shard x features")),
                 0.0f);
    out.labels.resize(static_cast<std::size_t>(s.size()));
    for (index_t i = 0; i < s.size(); ++i) {
      const index_t row = order[offset + s.begin + i];
      out.labels[i] = file.labels()[row];
      slots.push_back({row, &out, i});
    }
  };
  plan_shard(h.train, "train", sizes.train, plan.order, 0, pool_slots, *pool);
  plan_shard(h.validation, "validation", sizes.validation, plan.order, sizes.train, pool_slots,
             *pool);
  if (test_pool)
    plan_shard(h.test, "test", sizes.test, plan.test_order, 0, test_slots, *test_pool);
  else
    plan_shard(h.test, "test", sizes.test, plan.order, sizes.train + sizes.validation,
               pool_slots, *pool);
  const auto by_row = [](const Slot& a, const Slot& b) { return a.row < b.row; };
  std::sort(pool_slots.begin(), pool_slots.end(), by_row);
  std::sort(test_slots.begin(), test_slots.end(), by_row);
  const auto copy_rows = [d](const std::vector<Slot>& slots) {
    return [&slots, d, next = std::size_t{0}](index_t row, const float* x) mutable {
      for (; next < slots.size() && slots[next].row == row; ++next)
        std::copy_n(x, d, slots[next].split->x.begin() + slots[next].position * d);
    };
  };

  // pass 1: the train sums, and this rank's samples; pass 2: the train variances
  std::vector<std::uint8_t> wanted = plan.in_train;
  for (const Slot& s : pool_slots) wanted[s.row] = 1;
  TrainStatistics stats(d, sizes.train);
  auto copy_pool = copy_rows(pool_slots);
  pool->for_each_row(&wanted, [&](index_t row, const float* x) {
    if (plan.in_train[row]) stats.add_to_mean(x);
    copy_pool(row, x);
  });
  stats.finish_mean();
  pool->for_each_row(&plan.in_train,
                     [&](index_t, const float* x) { stats.add_to_variance(x); });
  stats.finish();
  if (test_pool) {
    std::vector<std::uint8_t> test_wanted(static_cast<std::size_t>(test_pool->samples()), 0);
    for (const Slot& s : test_slots) test_wanted[s.row] = 1;
    test_pool->for_each_row(&test_wanted, copy_rows(test_slots));
  }
  for (Dataset* split : {&h.train, &h.validation, &h.test}) stats.standardize(*split);

  h.clean_train_labels = h.train.labels;
  corrupt(h.train, plan, h.train.first, classes);
  h.corrupted = plan.corrupted;
  return h;
}

}  // namespace bilevel
