// The linear-model family's setup: the splits uploaded or generated (shards included), their
// residence (executor or host memory) and precision (T or bf16), the outer map (sample weights,
// or an L2 map and its terms), the memory plan, and the workspaces reserved for a run's shapes. The oracles are in linear_model.cpp, the evaluation in
// linear_model_metrics.cpp: one class, its members explicitly instantiated where they are defined.
#include <bilevel/problems/linear_model.hpp>
#include <bilevel/sampling.hpp>

#include "../../kernels/linear_model_kernels.hpp"
#include "../../kernels/softmax_kernels.hpp"
#include "l2_penalty.hpp"

#include <algorithm>
#include <cmath>
#include <random>

namespace bilevel {
namespace {

/// Columns of one sample each (the features, then a bias row of 1 when `bias`), as type T.
template <typename T>
std::vector<T> feature_columns(const Dataset& d, bool bias) {
  const index_t rows = d.features + (bias ? 1 : 0);
  std::vector<T> out(static_cast<std::size_t>(rows * d.samples));
  for (index_t i = 0; i < d.samples; ++i) {
    for (index_t j = 0; j < d.features; ++j) out[i * rows + j] = static_cast<T>(d.x[i * d.features + j]);
    if (bias) out[i * rows + d.features] = T(1);
  }
  return out;
}

}  // namespace

DataPrecision parse_data_precision(const std::string& text) {
  if (text == "same") return DataPrecision::same;
  if (text == "bf16") return DataPrecision::bf16;
  BILEVEL_EXPECTS(false, "data precision must be same or bf16, got '" << text << "'");
  return DataPrecision::same;
}

DataResidence parse_data_residence(const std::string& text) {
  if (text == "device") return DataResidence::device;
  if (text == "host") return DataResidence::host;
  BILEVEL_EXPECTS(false, "data residence must be device or host, got '" << text << "'");
  return DataResidence::device;
}

template <typename T>
typename Array<T>::Residence LinearModelProblem<T>::placement(const Part* part) const {
  return part == &train_ && residence_ == DataResidence::host ? Array<T>::Residence::host_mapped
                                                              : Array<T>::Residence::executor;
}

template <typename T>
LinearModelProblem<T>::LinearModelProblem(std::shared_ptr<Executor> exec, const HypercleanData& data,
                                        double reg, DataPrecision precision,
                                        DataResidence residence)
    : LinearModelProblem(std::move(exec), data, reg, local_communicator(), precision, residence) {}

template <typename T>
LinearModelProblem<T>::LinearModelProblem(std::shared_ptr<Executor> exec, const HypercleanData& data,
                                        double reg, std::shared_ptr<Communicator> comm,
                                        DataPrecision precision, DataResidence residence)
    : comm_(std::move(comm)), exec_(std::move(exec)), reg_(reg) {
  BILEVEL_EXPECTS(exec_ != nullptr, "LinearModelProblem needs an executor");
  BILEVEL_EXPECTS(comm_ != nullptr, "LinearModelProblem needs a communicator");
  BILEVEL_EXPECTS(reg >= 0.0, "hyperclean: regularization must be >= 0, got " << reg);
  data.train.validate();
  data.validation.validate();
  data.test.validate();
  bias_ = data.bias;
  rows_ = data.train.features + (bias_ ? 1 : 0);
  classes_ = data.train.classes;
  BILEVEL_EXPECTS(data.validation.features == data.train.features &&
                      data.test.features == data.train.features,
                  "hyperclean: the splits have different feature counts");
  BILEVEL_EXPECTS(data.validation.classes <= classes_ && data.test.classes <= classes_,
                  "hyperclean: validation or test has more classes than train");
  softmax_ = kernels::make_softmax_kernels<T>(*exec_);
  fused_ = kernels::make_linear_model_kernels<T>(*exec_);
  residence_ = residence;
  // this rank's samples of each split (all of them for one process)
  // (data from load_hyperclean_shard holds this rank's shard already)
  const auto upload = [&](const Dataset& whole, Part& p, const char* split) {
    const index_t total = whole.whole_samples();
    BILEVEL_EXPECTS(total >= comm_->size(),
                    "hyperclean: the " << split << " split's " << total
                                       << " samples cannot be shared by " << comm_->size()
                                       << " ranks (each needs one)");
    const Shard s = comm_->shard(total);
    if (whole.total != 0)
      BILEVEL_EXPECTS(whole.first == s.begin && whole.samples == s.size(),
                      "hyperclean: the " << split << " data holds samples [" << whole.first
                                         << ", " << whole.first + whole.samples << ") of "
                                         << total << " but rank " << comm_->rank() << " of "
                                         << comm_->size() << " owns [" << s.begin << ", "
                                         << s.end << ")");
    Dataset d;
    const Dataset* mine = &whole;
    if (whole.total == 0 && s.size() != whole.samples) {
      d.source = whole.source;
      d.samples = s.size();
      d.features = whole.features;
      d.classes = whole.classes;
      d.x.assign(whole.x.begin() + s.begin * whole.features, whole.x.begin() + s.end * whole.features);
      d.labels.assign(whole.labels.begin() + s.begin, whole.labels.begin() + s.end);
      mine = &d;
    }
    p.samples = mine->samples;
    p.first = s.begin;
    p.total = total;
    p.x = Array<T>(exec_, rows_, mine->samples, placement(&p));
    p.x.upload(feature_columns<T>(*mine, bias_));
    p.labels = Array<std::int32_t>(exec_, mine->samples, 1, mine->labels);
  };
  upload(data.train, train_, "train");
  upload(data.validation, validation_, "validation");
  upload(data.test, test_, "test");
  if (precision == DataPrecision::bf16) store_as_bf16();
}

template <typename T>
LinearModelProblem<T>::LinearModelProblem(std::shared_ptr<Executor> exec, const HypercleanData& data,
                                          L2Penalty penalty, LinearModelLoss loss)
    : LinearModelProblem(std::move(exec), data, 0.0) {
  map_ = penalty == L2Penalty::per_feature ? OuterMap::per_feature_l2 : OuterMap::per_class_l2;
  one_logit_ = loss == LinearModelLoss::binary_logistic;
  BILEVEL_EXPECTS(!one_logit_ || classes_ == 2,
                  "l2-tuning: binary logistic regression needs two classes; the training split "
                  "has "
                      << classes_);
  BILEVEL_EXPECTS(!one_logit_ || penalty == L2Penalty::per_feature,
                  "l2-tuning: binary logistic regression has one weight column; a per-class "
                  "penalty has nothing to weigh (use per-feature)");
  penalty_ = std::make_unique<L2PenaltyTerms<T>>(exec_, rows_, features(), classes_, penalty);
}

template <typename T>
std::string LinearModelProblem<T>::name() const {
  return map_ == OuterMap::sample_weights ? "hyperclean" : "l2-tuning";
}

template <typename T>
index_t LinearModelProblem<T>::dim_x() const {
  return penalty_ ? penalty_->dim_x() : train_.samples;
}

template <typename T>
L2Penalty LinearModelProblem<T>::penalty_map() const {
  BILEVEL_EXPECTS(penalty_ != nullptr, name() << ": sample weights have no L2 penalty map");
  return penalty_->map();
}

template <typename T>
void LinearModelProblem<T>::set_max_weight(double max_weight) {
  BILEVEL_EXPECTS(penalty_ != nullptr,
                  name() << ": a largest weight bounds an L2 map's weights; sample weights have "
                            "none");
  penalty_->set_max_weight(max_weight);
}

template <typename T>
void LinearModelProblem<T>::project_x(MatrixView<T> x) {
  if (penalty_) penalty_->project(x);
}

template <typename T>
LinearModelProblem<T>::LinearModelProblem(std::shared_ptr<Executor> exec,
                                        const SyntheticHypercleanSpec& spec, double reg,
                                        HypercleanTruth* truth, DataPrecision precision,
                                        DataResidence residence)
    : LinearModelProblem(std::move(exec), spec, reg, truth, local_communicator(), precision,
                        residence) {}

template <typename T>
LinearModelProblem<T>::LinearModelProblem(std::shared_ptr<Executor> exec,
                                        const SyntheticHypercleanSpec& spec, double reg,
                                        HypercleanTruth* truth, std::shared_ptr<Communicator> comm,
                                        DataPrecision precision, DataResidence residence)
    : comm_(std::move(comm)), exec_(std::move(exec)), reg_(reg) {
  residence_ = residence;
  BILEVEL_EXPECTS(exec_ != nullptr, "LinearModelProblem needs an executor");
  BILEVEL_EXPECTS(comm_ != nullptr, "LinearModelProblem needs a communicator");
  BILEVEL_EXPECTS(reg >= 0.0, "hyperclean: regularization must be >= 0, got " << reg);
  BILEVEL_EXPECTS(spec.train > 0 && spec.validation > 0 && spec.test > 0,
                  "synthetic data: split sizes must be positive");
  BILEVEL_EXPECTS(spec.features > 0, "synthetic data: --features must be > 0, got " << spec.features);
  BILEVEL_EXPECTS(spec.classes >= 2, "synthetic data: --classes must be >= 2, got " << spec.classes);
  BILEVEL_EXPECTS(spec.corruption >= 0.0 && spec.corruption <= 1.0,
                  "--corruption must be in [0, 1], got " << spec.corruption);
  rows_ = spec.features + 1;
  classes_ = spec.classes;
  softmax_ = kernels::make_softmax_kernels<T>(*exec_);
  fused_ = kernels::make_linear_model_kernels<T>(*exec_);
  std::mt19937_64 rng(spec.seed);
  // class means with a bias row of 1: rows_ x C (small: made on the host)
  std::normal_distribution<double> normal(0.0, spec.separation / std::sqrt(double(spec.features)));
  std::vector<T> means(static_cast<std::size_t>(rows_ * classes_));
  for (index_t c = 0; c < classes_; ++c) {
    for (index_t j = 0; j < spec.features; ++j) means[c * rows_ + j] = static_cast<T>(normal(rng));
    means[c * rows_ + spec.features] = T(1);
  }
  BILEVEL_EXPECTS(spec.feature_scale_spread >= 1.0 && std::isfinite(spec.feature_scale_spread),
                  "synthetic data: the feature scale spread must be >= 1, got "
                      << spec.feature_scale_spread);
  BILEVEL_EXPECTS(spec.correlation >= 0.0 && std::isfinite(spec.correlation),
                  "synthetic data: the correlation must be >= 0, got " << spec.correlation);
  BILEVEL_EXPECTS(spec.correlation == 0.0 || spec.latent_factors >= 1,
                  "synthetic data: correlated noise needs latent factors >= 1, got "
                      << spec.latent_factors);
  const bool mixed = spec.feature_scale_spread > 1.0 || spec.correlation > 0.0;
  // the harder generator's S and U, from their own random stream (the default data unchanged)
  const index_t d = spec.features, k = spec.correlation > 0.0 ? spec.latent_factors : 0;
  Array<T> mixing;  // M = S [I | sqrt(c) U]: d x (d + k)
  if (mixed) {
    std::mt19937_64 mix_rng(spec.seed ^ 0x9e3779b97f4a7c15ULL);
    std::uniform_real_distribution<double> unit(-1.0, 1.0);
    std::normal_distribution<double> factor(0.0, 1.0 / std::sqrt(double(std::max<index_t>(k, 1))));
    std::vector<double> scale(static_cast<std::size_t>(d));
    for (auto& sj : scale) sj = std::pow(spec.feature_scale_spread, unit(mix_rng));
    std::vector<T> m(static_cast<std::size_t>(checked_mul(d, d + k, "synthetic data: mixing")), T(0));
    for (index_t j = 0; j < d; ++j) m[j + j * d] = static_cast<T>(scale[j]);
    for (index_t f = 0; f < k; ++f)
      for (index_t j = 0; j < d; ++j)
        m[j + (d + f) * d] = static_cast<T>(scale[j] * std::sqrt(spec.correlation) * factor(mix_rng));
    mixing = Array<T>(exec_, d, d + k, m);
    // mean' = S mean
    for (index_t c = 0; c < classes_; ++c)
      for (index_t j = 0; j < d; ++j) means[c * rows_ + j] = static_cast<T>(means[c * rows_ + j] * scale[j]);
  }
  constexpr index_t kMixChunk = 8192;
  Array<T> latent = mixed ? Array<T>(exec_, d + k, kMixChunk) : Array<T>();
  Array<T> d_means(exec_, rows_, classes_, means);
  std::uniform_int_distribution<int> pick(0, classes_ - 1), shift(1, classes_ - 1);
  // Samples [first, first + m) of a split into dst (rows_ x m), `true_labels` holding the
  // split's labels from `first` on: the same numbers whether a split is generated at once, in
  // chunks or in shards starting anywhere.
  const auto generate_columns = [&](MatrixView<T> dst, const std::int32_t* true_labels,
                                    index_t first, std::uint32_t stream) {
    Ops<T>& ops = exec_->ops<T>();
    const index_t m = dst.cols;
    // A = means[:, true label] (bias row included)
    ops.gather_columns(d_means.view(), true_labels, dst);
    if (!mixed) {
      // A[0:d, :] += N(0, 1)   (positions of the whole split)
      ops.add_normal(spec.seed, stream, T(1), MatrixView<T>(dst.data, d, m, rows_), first * d);
      return;
    }
    for (index_t off = 0; off < m;) {
      // the columns [lo, hi) of mixing chunk `part` of the split that fall in [first, first + m)
      const index_t part = (first + off) / kMixChunk, lo = (first + off) - part * kMixChunk;
      const index_t hi = std::min(kMixChunk, lo + (m - off));
      MatrixView<T> zw(latent.data(), d + k, hi, d + k);
      // [z; w] ~ N(0, I) (a Philox stream per split and chunk, columns from the chunk's start)
      ops.fill(zw, T(0));
      ops.add_normal(spec.seed, (stream << 20) + static_cast<std::uint32_t>(part), T(1), zw);
      // A[0:d, columns] += S [I | sqrt(c) U] [z; w][:, lo:hi]
      ops.gemm(Op::none, Op::none, T(1), mixing.view(),
               ConstMatrixView<T>(latent.data() + lo * (d + k), d + k, hi - lo, d + k), T(1),
               MatrixView<T>(dst.data + off * rows_, d, hi - lo, rows_));
      off += hi - lo;
    }
  };
  // The training split in bf16 and in host memory: generated chunk by chunk on the executor
  // and rounded into host memory, so that no full-precision copy of it is ever held.
  const bool chunked_train = precision == DataPrecision::bf16 && residence == DataResidence::host;
  // A split: every rank draws all its labels (the same host stream), keeps and generates only
  // its shard's samples.
  const auto generate = [&](Part& p, index_t n, std::uint32_t stream, std::vector<std::int32_t>* clean) {
    BILEVEL_EXPECTS(n >= comm_->size(), "synthetic data: a split of " << n
                                            << " samples cannot be shared by " << comm_->size()
                                            << " ranks (each needs one)");
    std::vector<std::int32_t> labels(static_cast<std::size_t>(n));
    for (auto& l : labels) l = pick(rng);
    if (clean) *clean = labels;
    const Shard shard = comm_->shard(n);
    p.samples = shard.size();
    p.first = shard.begin;
    p.total = n;
    const index_t local = p.samples;
    Array<std::int32_t> true_labels(
        exec_, local, 1,
        std::vector<std::int32_t>(labels.begin() + shard.begin, labels.begin() + shard.end));
    if (chunked_train && &p == &train_) {
      p.x_bf16 = Array<std::uint16_t>(exec_, rows_, local, Array<std::uint16_t>::Residence::host_mapped);
      const index_t chunk = std::min(local, kGenerationChunk);
      Array<T> buffer(exec_, rows_, chunk);
      for (index_t off = 0; off < local; off += chunk) {
        const index_t m = std::min(chunk, local - off);
        generate_columns(MatrixView<T>(buffer.data(), rows_, m, rows_), true_labels.data() + off,
                         shard.begin + off, stream);
        // x_bf16[:, chunk] = round(buffer)
        fused_->round_to_bf16(buffer.data(), rows_ * m, p.x_bf16.data() + off * rows_);
      }
      exec_->synchronize();
    } else {
      p.x = Array<T>(exec_, rows_, local, placement(&p));
      generate_columns(p.x.view(), true_labels.data(), shard.begin, stream);
    }
    p.labels = std::move(true_labels);
  };
  std::vector<std::int32_t> clean;
  generate(train_, spec.train, 1, &clean);
  generate(validation_, spec.validation, 2, nullptr);
  generate(test_, spec.test, 3, nullptr);
  // corrupt round(p n) train labels (the samples are i.i.d.: the first ones are a random choice)
  std::vector<std::int32_t> noisy = clean;
  std::vector<std::uint8_t> corrupted(static_cast<std::size_t>(spec.train), 0);
  const index_t n_bad = static_cast<index_t>(std::llround(spec.corruption * spec.train));
  for (index_t i = 0; i < n_bad; ++i) {
    noisy[i] = (noisy[i] + shift(rng)) % classes_;
    corrupted[i] = 1;
  }
  train_.labels.upload(std::vector<std::int32_t>(noisy.begin() + train_.first,
                                                 noisy.begin() + train_.first + train_.samples));
  if (truth != nullptr) {
    truth->clean_train_labels = std::move(clean);
    truth->corrupted = std::move(corrupted);
  }
  if (precision == DataPrecision::bf16) store_as_bf16();
}

template <typename T>
void LinearModelProblem<T>::store_as_bf16() {
  for (Part* p : {&train_, &validation_, &test_}) {
    if (p->x.size() == 0 && p->x_bf16.size() > 0) continue;  // generated as bf16 already
    // x_bf16 = round(x) (nearest, ties to even), then the T copy goes
    p->x_bf16 = Array<std::uint16_t>(exec_, rows_, p->samples,
                                     p == &train_ && residence_ == DataResidence::host
                                         ? Array<std::uint16_t>::Residence::host_mapped
                                         : Array<std::uint16_t>::Residence::executor);
    fused_->round_to_bf16(p->x.data(), rows_ * p->samples, p->x_bf16.data());
    exec_->synchronize();
    p->x = Array<T>();
  }
  bf16_ = true;
}

template <typename T>
std::size_t LinearModelProblem<T>::feature_bytes() const {
  std::size_t bytes = 0;
  for (const Part* p : {&train_, &validation_, &test_})
    bytes += static_cast<std::size_t>(rows_ * p->samples) *
             (bf16_ ? sizeof(std::uint16_t) : sizeof(T));
  return bytes;
}

template <typename T>
void LinearModelProblem<T>::columns_as_t(const Part& p, const sample_index_t* idx, index_t offset,
                                        index_t count, T* dst) {
  if (bf16_) {
    // dst = the bf16 columns widened to T
    fused_->expand_bf16_columns(p.x_bf16.data(), rows_, idx, offset, count, dst);
  } else if (idx != nullptr) {
    // dst = the columns of the batch's samples
    exec_->ops<T>().gather_columns(p.x.view(), idx, MatrixView<T>(dst, rows_, count));
  } else {
    exec_->ops<T>().copy(ConstMatrixView<T>(p.x.data() + offset * rows_, rows_, count),
                         MatrixView<T>(dst, rows_, count));
  }
}

template <typename T>
LinearModelProblem<T>::~LinearModelProblem() = default;

template <typename T>
HypercleanMemory LinearModelProblem<T>::memory_plan(index_t train, index_t validation,
                                                   index_t test, index_t features, int classes,
                                                   index_t instances, index_t batch,
                                                   DataPrecision precision,
                                                   bool independent_batches, int x_arrays,
                                                   DataResidence residence) {
  const std::string what = "memory plan";
  const index_t rows = checked_add(features, 1, what);
  const index_t n = checked_add(checked_add(train, validation, what), test, what);
  const index_t cb = checked_mul(classes, instances, what);
  const index_t stored = precision == DataPrecision::bf16 ? 2 : static_cast<index_t>(sizeof(T));
  const index_t t = static_cast<index_t>(sizeof(T));
  HypercleanMemory m;
  // features (one column per sample, bias row included), labels, the corruption mask
  m.features = static_cast<std::size_t>(checked_add(
      checked_add(checked_mul(checked_mul(rows, n, what), stored, what), checked_mul(n, 4, what),
                  what),
      checked_mul(train, t, what), what));
  if (residence == DataResidence::host) {
    // the training features move to host memory; bf16 ones are generated through one chunk
    // of T on the executor
    m.host = static_cast<std::size_t>(checked_mul(checked_mul(rows, train, what), stored, what));
    m.features -= m.host;
    if (precision == DataPrecision::bf16)
      m.features += static_cast<std::size_t>(checked_mul(
          checked_mul(rows, std::min(train, kGenerationChunk), what), t, what));
  }
  // reserve(): gathered, z, u, per-sample, ones, scalars, upper coefficients, bf16 chunk
  const index_t rb = std::max<index_t>(independent_batches ? checked_mul(batch, instances, what) : batch, 1);
  const index_t chunk = std::max<index_t>(rb, 8192);
  index_t w = checked_mul(rows, rb, what);
  w = checked_add(w, checked_mul(checked_mul(chunk, cb, what), 2, what), what);
  w = checked_add(w, checked_mul(chunk, instances + 1, what), what);
  w = checked_add(w, instances, what);
  w = checked_add(w, checked_mul(rb, cb, what), what);
  if (precision == DataPrecision::bf16) w = checked_add(w, checked_mul(rows, chunk, what), what);
  m.workspaces = static_cast<std::size_t>(checked_mul(w, t, what));
  // the solver: x-sized (x, h, diff, fx, ...) and y-sized (y, gy, v, hv, fy, ...) arrays
  const index_t per_instance = checked_add(checked_mul(x_arrays, train, what),
                                           checked_mul(12, checked_mul(rows, classes, what), what), what);
  m.solver = static_cast<std::size_t>(checked_mul(checked_mul(per_instance, instances, what), t, what));
  return m;
}

template <typename T>
void LinearModelProblem<T>::reserve(index_t instances, index_t max_batch) {
  BILEVEL_EXPECTS(instances > 0, name() << ": reserve needs instances > 0, got " << instances);
  max_batch = std::max<index_t>(max_batch, 1);
  if (instances <= reserved_instances_ && max_batch <= reserved_batch_) return;
  reserved_instances_ = std::max(reserved_instances_, instances);
  reserved_batch_ = std::max(reserved_batch_, max_batch);
  chunk_ = std::max<index_t>(reserved_batch_, 8192);
  const index_t cb = classes_ * reserved_instances_;
  gathered_ = Array<T>(exec_, rows_, reserved_batch_);
  z_ = Array<T>(exec_, chunk_, fused_logits_ ? 2 * cb : cb);
  u_ = Array<T>(exec_, chunk_, cb);
  wv_ = fused_logits_ ? Array<T>(exec_, rows_, 2 * cb) : Array<T>();
  per_sample_ = Array<T>(exec_, chunk_, reserved_instances_);
  upper_rg_ = Array<T>(exec_, reserved_batch_, cb);
  expanded_ = bf16_ ? Array<T>(exec_, rows_, chunk_) : Array<T>();
  ones_ = Array<T>(exec_, chunk_, 1);
  scalars_ = Array<T>(exec_, reserved_instances_, 1);
  exec_->ops<T>().fill(ones_.view(), T(1));
  if (penalty_) penalty_->reserve(reserved_instances_);
  if (one_logit_) {
    // binary logistic's widened y and v (class 0's columns stay 0) and outputs
    for (Array<T>& a : wide_in_) {
      a = Array<T>(exec_, model_dim_y(), reserved_instances_);
      exec_->ops<T>().fill(a.view(), T(0));
    }
    for (Array<T>& a : wide_out_) a = Array<T>(exec_, model_dim_y(), reserved_instances_);
  }
}

// The members defined above, for both precisions (linear_model.cpp instantiates the class and
// the members defined there).
#define BILEVEL_LINEAR_MODEL_SETUP(T)                                                              \
  template typename Array<T>::Residence LinearModelProblem<T>::placement(const Part*) const;      \
  template LinearModelProblem<T>::LinearModelProblem(std::shared_ptr<Executor>,                    \
                                                   const HypercleanData&, double, DataPrecision, \
                                                   DataResidence);                               \
  template LinearModelProblem<T>::LinearModelProblem(                                              \
      std::shared_ptr<Executor>, const HypercleanData&, double, std::shared_ptr<Communicator>,   \
      DataPrecision, DataResidence);                                                             \
  template LinearModelProblem<T>::LinearModelProblem(std::shared_ptr<Executor>,                    \
                                                   const SyntheticHypercleanSpec&, double,       \
                                                   HypercleanTruth*, DataPrecision,              \
                                                   DataResidence);                               \
  template LinearModelProblem<T>::LinearModelProblem(                                              \
      std::shared_ptr<Executor>, const SyntheticHypercleanSpec&, double, HypercleanTruth*,       \
      std::shared_ptr<Communicator>, DataPrecision, DataResidence);                              \
  template LinearModelProblem<T>::LinearModelProblem(std::shared_ptr<Executor>,                  \
                                                     const HypercleanData&, L2Penalty,           \
                                                     LinearModelLoss);                           \
  template std::string LinearModelProblem<T>::name() const;                                       \
  template index_t LinearModelProblem<T>::dim_x() const;                                          \
  template L2Penalty LinearModelProblem<T>::penalty_map() const;                                  \
  template void LinearModelProblem<T>::set_max_weight(double);                                    \
  template void LinearModelProblem<T>::project_x(MatrixView<T>);                                  \
  template LinearModelProblem<T>::~LinearModelProblem();                                           \
  template void LinearModelProblem<T>::store_as_bf16();                                           \
  template std::size_t LinearModelProblem<T>::feature_bytes() const;                              \
  template void LinearModelProblem<T>::columns_as_t(const Part&, const sample_index_t*, index_t,  \
                                                   index_t, T*);                                 \
  template HypercleanMemory LinearModelProblem<T>::memory_plan(index_t, index_t, index_t,         \
                                                              index_t, int, index_t, index_t,    \
                                                              DataPrecision, bool, int,          \
                                                              DataResidence);                    \
  template void LinearModelProblem<T>::reserve(index_t, index_t);
BILEVEL_LINEAR_MODEL_SETUP(float)
BILEVEL_LINEAR_MODEL_SETUP(double)
#undef BILEVEL_LINEAR_MODEL_SETUP

}  // namespace bilevel
