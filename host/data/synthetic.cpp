#include <bilevel/data.hpp>
#include <bilevel/error.hpp>

#include <cmath>
#include <random>

namespace bilevel {

Dataset make_synthetic(index_t samples, index_t features, int classes, std::uint64_t seed,
                       double separation) {
  BILEVEL_EXPECTS(samples > 0, "synthetic data: --samples must be > 0, got " << samples);
  BILEVEL_EXPECTS(features > 0, "synthetic data: --features must be > 0, got " << features);
  BILEVEL_EXPECTS(classes >= 2, "synthetic data: --classes must be >= 2, got " << classes);
  BILEVEL_EXPECTS(samples * features <= (index_t(1) << 33),
                  "synthetic data: " << samples << " x " << features
                                     << " is too large to generate on the host");
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  const float mean_scale = static_cast<float>(separation / std::sqrt(double(features)));
  std::vector<float> means(static_cast<std::size_t>(classes * features));
  for (auto& m : means) m = mean_scale * normal(rng);
  Dataset d;
  d.source = "synthetic(" + std::to_string(samples) + " x " + std::to_string(features) + ", " +
             std::to_string(classes) + " classes, seed " + std::to_string(seed) + ")";
  d.samples = samples;
  d.features = features;
  d.classes = classes;
  d.x.resize(static_cast<std::size_t>(samples * features));
  d.labels.resize(static_cast<std::size_t>(samples));
  std::uniform_int_distribution<int> pick(0, classes - 1);
  for (index_t i = 0; i < samples; ++i) {
    const int c = pick(rng);
    d.labels[i] = c;
    for (index_t j = 0; j < features; ++j)
      d.x[i * features + j] = means[c * features + j] + normal(rng);
  }
  return d;
}

Dataset make_sparse_logistic(index_t samples, index_t features, index_t informative,
                             std::uint64_t seed) {
  BILEVEL_EXPECTS(samples > 0 && features > 0,
                  "sparse logistic data: samples and features must be > 0, got " << samples
                                                                                << " and " << features);
  BILEVEL_EXPECTS(informative >= 1 && informative <= features,
                  "sparse logistic data: informative features must be in [1, " << features
                                                                                << "], got " << informative);
  BILEVEL_EXPECTS(samples * features <= (index_t(1) << 33),
                  "sparse logistic data: " << samples << " x " << features
                                           << " is too large to generate on the host");
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal(0.0, 1.0);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  std::vector<double> w(static_cast<std::size_t>(informative));
  for (auto& v : w) v = normal(rng) * 2.0 / std::sqrt(static_cast<double>(informative));
  Dataset d;
  d.source = "sparse-logistic(" + std::to_string(samples) + " x " + std::to_string(features) +
             ", " + std::to_string(informative) + " informative, seed " + std::to_string(seed) + ")";
  d.samples = samples;
  d.features = features;
  d.classes = 2;
  d.x.resize(static_cast<std::size_t>(samples * features));
  d.labels.resize(static_cast<std::size_t>(samples));
  for (index_t i = 0; i < samples; ++i) {
    double z = 0;
    for (index_t j = 0; j < features; ++j) {
      const double v = normal(rng);
      d.x[static_cast<std::size_t>(i * features + j)] = static_cast<float>(v);
      if (j < informative) z += w[static_cast<std::size_t>(j)] * v;
    }
    d.labels[static_cast<std::size_t>(i)] = unit(rng) < 1.0 / (1.0 + std::exp(-z)) ? 1 : 0;
  }
  return d;
}

}  // namespace bilevel
