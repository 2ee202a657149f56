// The hyper-cleaning protocol: split, standardize on train, corrupt a fraction of train labels.
#include <bilevel/data.hpp>
#include <bilevel/error.hpp>

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

void standardize(Dataset& d, const std::vector<double>& mean, const std::vector<double>& inv_std) {
  for (index_t i = 0; i < d.samples; ++i)
    for (index_t j = 0; j < d.features; ++j) {
      float& v = d.x[i * d.features + j];
      v = static_cast<float>((v - mean[j]) * inv_std[j]);
    }
}

}  // namespace

HypercleanData prepare_hyperclean(const Dataset& pool, const std::optional<Dataset>& test_pool,
                                  const SplitSizes& sizes, double corruption,
                                  std::uint64_t seed) {
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
  std::mt19937_64 rng(seed);
  std::vector<index_t> order(static_cast<std::size_t>(pool.samples));
  std::iota(order.begin(), order.end(), index_t(0));
  std::shuffle(order.begin(), order.end(), rng);

  HypercleanData h;
  h.train = take(pool, order, 0, sizes.train, "train");
  h.validation = take(pool, order, sizes.train, sizes.validation, "validation");
  if (test_pool) {
    std::vector<index_t> torder(static_cast<std::size_t>(test_pool->samples));
    std::iota(torder.begin(), torder.end(), index_t(0));
    std::shuffle(torder.begin(), torder.end(), rng);
    h.test = take(*test_pool, torder, 0, sizes.test, "test");
    h.test.classes = pool.classes;
  } else {
    h.test = take(pool, order, sizes.train + sizes.validation, sizes.test, "test");
  }

  // standardize with train statistics
  const index_t d = pool.features;
  std::vector<double> mean(static_cast<std::size_t>(d), 0.0), inv_std(static_cast<std::size_t>(d), 0.0);
  for (index_t i = 0; i < h.train.samples; ++i)
    for (index_t j = 0; j < d; ++j) mean[j] += h.train.x[i * d + j];
  for (auto& m : mean) m /= static_cast<double>(h.train.samples);
  for (index_t i = 0; i < h.train.samples; ++i)
    for (index_t j = 0; j < d; ++j) {
      const double c = h.train.x[i * d + j] - mean[j];
      inv_std[j] += c * c;
    }
  for (auto& s : inv_std) {
    const double sd = std::sqrt(s / static_cast<double>(h.train.samples));
    s = sd > 1e-12 ? 1.0 / sd : 1.0;
  }
  standardize(h.train, mean, inv_std);
  standardize(h.validation, mean, inv_std);
  standardize(h.test, mean, inv_std);

  // corrupt exactly round(p n) train labels, each to a different class
  h.clean_train_labels = h.train.labels;
  h.corrupted.assign(static_cast<std::size_t>(h.train.samples), 0);
  const index_t n_bad = static_cast<index_t>(std::llround(corruption * h.train.samples));
  std::vector<index_t> who(static_cast<std::size_t>(h.train.samples));
  std::iota(who.begin(), who.end(), index_t(0));
  std::shuffle(who.begin(), who.end(), rng);
  std::uniform_int_distribution<int> shift(1, pool.classes - 1);
  for (index_t k = 0; k < n_bad; ++k) {
    const index_t i = who[k];
    h.train.labels[i] = (h.train.labels[i] + shift(rng)) % pool.classes;
    h.corrupted[i] = 1;
  }
  return h;
}

}  // namespace bilevel
