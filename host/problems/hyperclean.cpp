// The hyper-cleaning problem's oracles: the fused linear-model kernels (rows read by index,
// two kernels per call), or composed from gather, GEMM, softmax pass, GEMM.
#include <bilevel/problems/hyperclean.hpp>
#include <bilevel/sampling.hpp>

#include "../../kernels/linear_model_kernels.hpp"
#include "../../kernels/softmax_kernels.hpp"

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
typename Array<T>::Residence HypercleanProblem<T>::placement(const Part* part) const {
  return part == &train_ && residence_ == DataResidence::host ? Array<T>::Residence::host_mapped
                                                              : Array<T>::Residence::executor;
}

template <typename T>
HypercleanProblem<T>::HypercleanProblem(std::shared_ptr<Executor> exec, const HypercleanData& data,
                                        double reg, DataPrecision precision,
                                        DataResidence residence)
    : HypercleanProblem(std::move(exec), data, reg, local_communicator(), precision, residence) {}

template <typename T>
HypercleanProblem<T>::HypercleanProblem(std::shared_ptr<Executor> exec, const HypercleanData& data,
                                        double reg, std::shared_ptr<Communicator> comm,
                                        DataPrecision precision, DataResidence residence)
    : comm_(std::move(comm)), exec_(std::move(exec)), reg_(reg) {
  BILEVEL_EXPECTS(exec_ != nullptr, "HypercleanProblem needs an executor");
  BILEVEL_EXPECTS(comm_ != nullptr, "HypercleanProblem needs a communicator");
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
HypercleanProblem<T>::HypercleanProblem(std::shared_ptr<Executor> exec,
                                        const SyntheticHypercleanSpec& spec, double reg,
                                        HypercleanTruth* truth, DataPrecision precision,
                                        DataResidence residence)
    : HypercleanProblem(std::move(exec), spec, reg, truth, local_communicator(), precision,
                        residence) {}

template <typename T>
HypercleanProblem<T>::HypercleanProblem(std::shared_ptr<Executor> exec,
                                        const SyntheticHypercleanSpec& spec, double reg,
                                        HypercleanTruth* truth, std::shared_ptr<Communicator> comm,
                                        DataPrecision precision, DataResidence residence)
    : comm_(std::move(comm)), exec_(std::move(exec)), reg_(reg) {
  residence_ = residence;
  BILEVEL_EXPECTS(exec_ != nullptr, "HypercleanProblem needs an executor");
  BILEVEL_EXPECTS(comm_ != nullptr, "HypercleanProblem needs a communicator");
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
void HypercleanProblem<T>::store_as_bf16() {
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
std::size_t HypercleanProblem<T>::feature_bytes() const {
  std::size_t bytes = 0;
  for (const Part* p : {&train_, &validation_, &test_})
    bytes += static_cast<std::size_t>(rows_ * p->samples) *
             (bf16_ ? sizeof(std::uint16_t) : sizeof(T));
  return bytes;
}

template <typename T>
void HypercleanProblem<T>::columns_as_t(const Part& p, const sample_index_t* idx, index_t offset,
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
HypercleanProblem<T>::~HypercleanProblem() = default;

template <typename T>
HypercleanMemory HypercleanProblem<T>::memory_plan(index_t train, index_t validation,
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
void HypercleanProblem<T>::reserve(index_t instances, index_t max_batch) {
  BILEVEL_EXPECTS(instances > 0, "hyperclean: reserve needs instances > 0, got " << instances);
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
}

template <typename T>
const typename HypercleanProblem<T>::Part& HypercleanProblem<T>::part(DataSplit split) const {
  return split == DataSplit::train ? train_ : split == DataSplit::validation ? validation_ : test_;
}

template <typename T>
template <typename F>
void HypercleanProblem<T>::for_each_chunk(const Part& p, const Batch& batch, index_t instances,
                                          F&& f) {
  // the composed path reads the indices from memory: a deferred batch's are drawn now
  draw_batch_indices(*exec_, batch);
  if (batch.independent()) {
    BILEVEL_EXPECTS(batch.population <= p.samples,
                    "hyperclean: a batch drawn from " << batch.population
                                                      << " samples used on a split of "
                                                      << p.samples);
    BILEVEL_EXPECTS(batch.stride == batch.size, "hyperclean: independent index sets must be "
                                                "contiguous (stride = size)");
    BILEVEL_EXPECTS(batch.size > 0 && batch.size * instances <= reserved_batch_,
                    "hyperclean: independent batches of " << batch.size << " samples for "
                                                          << instances
                                                          << " instances but workspace for "
                                                          << reserved_batch_
                                                          << " (call reserve first)");
    // every instance's samples, instance after instance: one gather (the index sets are
    // contiguous)
    MatrixView<T> g(gathered_.data(), rows_, batch.size * instances);
    columns_as_t(p, batch.indices, 0, batch.size * instances, g.data);
    f(Chunk{ConstMatrixView<T>(g.data, rows_, batch.size), batch.indices, 0, batch.size, true});
    return;
  }
  if (!batch.full() && batch.size < p.samples) {
    BILEVEL_EXPECTS(batch.population <= p.samples,
                    "hyperclean: a batch drawn from " << batch.population
                                                      << " samples used on a split of "
                                                      << p.samples);
    BILEVEL_EXPECTS(batch.size > 0 && batch.size <= reserved_batch_,
                    "hyperclean: batch of " << batch.size << " samples but workspace for "
                                            << reserved_batch_ << " (call reserve first)");
    MatrixView<T> g(gathered_.data(), rows_, batch.size);
    // A_b = columns of the batch's samples
    columns_as_t(p, batch.indices, 0, batch.size, g.data);
    f(Chunk{g, batch.indices, 0, batch.size});
    return;
  }
  for (index_t off = 0; off < p.samples; off += chunk_) {
    const index_t m = std::min(chunk_, p.samples - off);
    if (bf16_) {
      // A_c = the chunk's columns widened to T
      columns_as_t(p, nullptr, off, m, expanded_.data());
      f(Chunk{ConstMatrixView<T>(expanded_.data(), rows_, m), nullptr, off, m});
    } else {
      f(Chunk{ConstMatrixView<T>(p.x.data() + off * rows_, rows_, m), nullptr, off, m});
    }
  }
}

template <typename T>
void HypercleanProblem<T>::check(const char* oracle, ConstMatrixView<T> x,
                                 ConstMatrixView<T> y) const {
  BILEVEL_EXPECTS(x.rows == dim_x() && y.rows == dim_y() && x.cols == y.cols,
                  "hyperclean " << oracle << ": x must be " << dim_x() << " x B and y "
                                << dim_y() << " x B, got " << x.rows << " x " << x.cols
                                << " and " << y.rows << " x " << y.cols);
  BILEVEL_EXPECTS(y.ld == y.rows, "hyperclean " << oracle << ": y must be contiguous");
  BILEVEL_EXPECTS(x.cols <= reserved_instances_,
                  "hyperclean " << oracle << ": " << x.cols << " instances but workspace for "
                                << reserved_instances_ << " (call reserve first)");
}

template <typename T>
bool HypercleanProblem<T>::fused_minibatch_call(const Part& p, const Batch& batch,
                                                index_t instances, const T* x, index_t ldx,
                                                const kernels::LinearModelOutputs<T>& o,
                                                const kernels::LinearModelWorkspace<T>& ws,
                                                kernels::LinearModelCall<T>& call) {
  BILEVEL_EXPECTS(path_ != OraclePath::composed || !sharded(),
                  "hyperclean: a run split over ranks takes the fused oracle path only (not "
                  "the composed one)");
  if (path_ == OraclePath::composed) return false;
  const bool minibatch = !batch.full() && batch.size < p.total;
  const index_t columns = (minibatch && batch.independent() ? 1 : instances) * classes_;
  const bool fits = columns <= fused_->max_columns() && classes_ <= 64;
  BILEVEL_EXPECTS(fits || (path_ == OraclePath::automatic && !sharded()),
                  "hyperclean: the fused oracle path takes at most "
                      << fused_->max_columns() << " columns of C x B and 64 classes on "
                      << to_string(exec_->backend()) << ", got " << columns << " and " << classes_
                      << (sharded() ? " (a run split over ranks needs the fused path: fewer "
                                      "instances or classes per run)"
                                    : " (use the composed or automatic path)"));
  if (!fits) return false;
  kernels::LinearModelBatch<T>& b = call.batch;
  b = kernels::LinearModelBatch<T>{};
  b.data = bf16_ ? nullptr : p.x.data();
  b.data_bf16 = bf16_ ? p.x_bf16.data() : nullptr;
  b.rows = rows_;
  b.labels = p.labels.data();
  b.classes = classes_;
  b.instances = instances;
  b.x = x;
  b.ldx = ldx;
  b.scale = T(1) / static_cast<T>(minibatch ? batch.size : p.total);
  call.outputs = o;
  call.workspace = ws;
  if (!minibatch) return true;  // a full pass: the caller goes chunk by chunk
  BILEVEL_EXPECTS(batch.population <= p.total,
                  "hyperclean: a batch drawn from " << batch.population
                                                    << " samples used on a split of "
                                                    << p.total);
  const index_t sets = batch.independent() ? instances : 1;
  BILEVEL_EXPECTS(!batch.independent() || batch.stride == batch.size,
                  "hyperclean: independent index sets must be contiguous (stride = size)");
  BILEVEL_EXPECTS(batch.size > 0 && batch.size * sets <= reserved_batch_,
                  "hyperclean: batch of " << batch.size << " x " << sets
                                          << " samples but workspace for " << reserved_batch_
                                          << " (call reserve first)");
  b.indices = batch.indices;
  b.count = batch.size;
  b.index_stride = batch.independent() ? batch.stride : 0;
  if (batch.draw.deferred) {
    // drawn inside the kernels (no draw launch); the buffer stays unwritten
    b.drawn = true;
    b.draw_seed = batch.draw.seed;
    b.draw_stream = batch.draw.stream;
    b.draw_step = batch.draw.step;
    b.draw_step_on_device = batch.draw.step_on_device;
    b.population = batch.population;
  }
  if (sharded()) {
    // global indices; the kernels take this rank's samples and skip the others'
    b.shard_first = p.first;
    b.shard_samples = p.samples;
  }
  return true;
}

template <typename T>
bool HypercleanProblem<T>::fused_oracle(const Part& p, const Batch& batch, index_t instances,
                                        const T* x, index_t ldx,
                                        kernels::LinearModelOutputs<T> o) {
  // coefficients Rg, Rh (count x C B) and the J v terms (count x B) in the logits workspaces
  const kernels::LinearModelWorkspace<T> ws{z_.data(), u_.data(), per_sample_.data(), chunk_};
  kernels::LinearModelCall<T> call;
  if (!fused_minibatch_call(p, batch, instances, x, ldx, o, ws, call)) return false;
  if (call.batch.indices != nullptr) {
    fused_->softmax_cross_entropy(&call, 1);
    return true;
  }
  // full pass: range after range, the first one initializing the outputs; a range's rows fit
  // half the device's shared cache (L2), so that the back-product reads from the cache what the
  // coefficient kernel read from memory: the data read from memory once (the CPU kernels size
  // their own ranges)
  const std::size_t cache = exec_->shared_cache_bytes();
  const index_t row_bytes = rows_ * static_cast<index_t>(bf16_ ? 2 : sizeof(T));
  const index_t range =
      cache > 0 ? std::clamp<index_t>(static_cast<index_t>(cache / 2) / row_bytes, 256, chunk_)
                : chunk_;
  for (index_t off = 0; off < p.samples; off += range) {
    call.batch.offset = off;
    call.batch.count = std::min(range, p.samples - off);
    call.outputs.accumulate = off > 0;
    fused_->softmax_cross_entropy(&call, 1);
  }
  return true;
}

template <typename T>
bool HypercleanProblem<T>::sharded() const {
  return comm_->size() > 1;
}

template <typename T>
bool HypercleanProblem<T>::capturable() const {
  return comm_->capturable();
}

template <typename T>
T HypercleanProblem<T>::reg2() const {
  return comm_->rank() == 0 ? static_cast<T>(2 * reg_) : T(0);
}

template <typename T>
void HypercleanProblem<T>::reduce(T* data, index_t count) {
  if (sharded()) comm_->allreduce_sum(*exec_, data, count);
}

template <typename T>
void HypercleanProblem<T>::require_fused(bool fused, const char* oracle) const {
  BILEVEL_EXPECTS(fused || !sharded(),
                  "hyperclean " << oracle << ": a run split over " << comm_->size()
                                << " ranks takes the fused oracle path only (contiguous views, "
                                   "C x B up to "
                                << fused_->max_columns() << " on " << to_string(exec_->backend())
                                << "); this call would take the composed one");
}

template <typename T>
MatrixView<T> HypercleanProblem<T>::weights_view(ConstMatrixView<T> y) const {
  return MatrixView<T>(const_cast<T*>(y.data), rows_, classes_ * y.cols, rows_);
}

template <typename T>
void HypercleanProblem<T>::logits(const Chunk& c, ConstMatrixView<T> y, MatrixView<T> z,
                                  index_t instances) {
  Ops<T>& ops = exec_->ops<T>();
  if (!c.independent) {
    // Z = A_c' W: one GEMM of width C B
    ops.gemm(Op::transpose, Op::none, T(1), c.a, weights_view(y), T(0), z);
    return;
  }
  // Z_b = A_b' W_b for every instance b: one strided-batched GEMM of width C
  ops.gemm_strided_batched(Op::transpose, Op::none, T(1), c.a, rows_ * c.count,
                           ConstMatrixView<T>(y.data, rows_, classes_, rows_), rows_ * classes_,
                           T(0), MatrixView<T>(z.data, c.count, classes_, z.ld), z.ld * classes_,
                           instances);
}

template <typename T>
void HypercleanProblem<T>::accumulate(const Chunk& c, ConstMatrixView<T> z, MatrixView<T> out,
                                      index_t instances) {
  Ops<T>& ops = exec_->ops<T>();
  if (!c.independent) {
    // out += A_c Z
    ops.gemm(Op::none, Op::none, T(1), c.a, z, T(1), weights_view(out));
    return;
  }
  // out_b += A_b Z_b
  ops.gemm_strided_batched(Op::none, Op::none, T(1), c.a, rows_ * c.count,
                           ConstMatrixView<T>(z.data, c.count, classes_, z.ld), z.ld * classes_,
                           T(1), MatrixView<T>(out.data, rows_, classes_, rows_),
                           rows_ * classes_, instances);
}

template <typename T>
void HypercleanProblem<T>::grad_y_g(const Batch& batch, ConstMatrixView<T> x,
                                    ConstMatrixView<T> y, MatrixView<T> out) {
  check("grad_y_g", x, y);
  const index_t nb = x.cols, cb = classes_ * nb;
  {
    // gy = 2 reg W + A_b Rg, one read of each sampled row
    kernels::LinearModelOutputs<T> o;
    o.w = y.data;
    o.grad = out.data;
    o.reg2 = reg2();
    const bool fused = out.ld == out.rows && fused_oracle(train_, batch, nb, x.data, x.ld, o);
    require_fused(fused, "grad_y_g");
    if (fused) {
      // sharded: gy summed over the ranks
      reduce(out.data, out.rows * out.cols);
      return;
    }
  }
  Ops<T>& ops = exec_->ops<T>();
  const index_t s = batch.full() ? train_.total : std::min(batch.size, train_.total);
  // gy = 2 reg W
  ops.axpby(static_cast<T>(2 * reg_), y, T(0), out);
  for_each_chunk(train_, batch, nb, [&](const Chunk& c) {
    MatrixView<T> z(z_.data(), c.count, cb, z_.rows());
    // Z = A_c' W   (logits of every sample and instance)
    logits(c, y, z, nb);
    // Z <- sigmoid(x_i) / s (softmax(Z) - e_label)
    softmax_->gradient({c.count, classes_, nb, train_.labels.data() + c.offset, c.indices,
                        x.data + c.offset, x.ld, T(1) / static_cast<T>(s), c.index_stride()},
                       z.data, z.ld);
    // gy += A_c Z
    accumulate(c, z, out, nb);
  });
}

template <typename T>
void HypercleanProblem<T>::grad_x_g(const Batch& batch, ConstMatrixView<T> x,
                                    ConstMatrixView<T> y, MatrixView<T> out) {
  check("grad_x_g", x, y);
  BILEVEL_EXPECTS(out.rows == dim_x() && out.cols == x.cols,
                  "hyperclean grad_x_g: out must be " << dim_x() << " x " << x.cols);
  {
    // gx_i = sigmoid'(x_i) / s CE(W' a_i, label_i) for the batch's samples, 0 elsewhere: the
    // J v scatter of the fused kernels with the loss in place of the J v term (sharded: each
    // rank writes its own samples' rows, nothing to reduce)
    kernels::LinearModelOutputs<T> o;
    o.w = y.data;
    o.jv = out.data;
    o.ldjv = out.ld;
    o.jv_rows = dim_x();
    o.jv_loss = true;
    const bool fused = fused_oracle(train_, batch, x.cols, x.data, x.ld, o);
    require_fused(fused, "grad_x_g");
    if (fused) return;
  }
  Ops<T>& ops = exec_->ops<T>();
  const index_t nb = x.cols, cb = classes_ * nb;
  const index_t s = batch.full() ? train_.total : std::min(batch.size, train_.total);
  // gx = 0 (only the batch's samples get a value)
  ops.fill(out, T(0));
  for_each_chunk(train_, batch, nb, [&](const Chunk& c) {
    MatrixView<T> z(z_.data(), c.count, cb, z_.rows());
    // Z = A_c' W
    logits(c, y, z, nb);
    // gx_i += sigmoid'(x_i) / s CE(Z_i, label_i)
    softmax_->loss_cross({c.count, classes_, nb, train_.labels.data() + c.offset, c.indices,
                          x.data + c.offset, x.ld, T(1) / static_cast<T>(s), c.index_stride()},
                         z.data, z.ld, out.data + c.offset, out.ld);
  });
}

template <typename T>
void HypercleanProblem<T>::hvp_jvp_f(const Batch& batch, ConstMatrixView<T> x,
                                     ConstMatrixView<T> y, ConstMatrixView<T> v,
                                     MatrixView<T> hv, MatrixView<T> jv) {
  check("hvp_jvp_f", x, y);
  Ops<T>& ops = exec_->ops<T>();
  const index_t nb = x.cols, cb = classes_ * nb;
  const index_t s = batch.full() ? validation_.total : std::min(batch.size, validation_.total);
  // J_f v = 0: f does not depend on x
  if (!jv.empty()) ops.fill(jv, T(0));
  if (hv.empty()) return;
  {
    // hv = A_b Rh (unweighted), one read of each sampled row
    kernels::LinearModelOutputs<T> o;
    o.w = y.data;
    o.v = v.data;
    o.hv = hv.data;
    const bool fused =
        hv.ld == hv.rows && v.ld == v.rows && fused_oracle(validation_, batch, nb, nullptr, 0, o);
    require_fused(fused, "hvp_jvp_f");
    if (fused) {
      reduce(hv.data, hv.rows * hv.cols);
      return;
    }
  }
  ops.fill(hv, T(0));
  for_each_chunk(validation_, batch, nb, [&](const Chunk& c) {
    MatrixView<T> z(z_.data(), c.count, cb, z_.rows());
    MatrixView<T> u(u_.data(), c.count, cb, u_.rows());
    // Z = A_c' W; U = A_c' V
    logits(c, y, z, nb);
    logits(c, v, u, nb);
    // U <- (diag p - p p') U / s
    softmax_->hvp_jvp({c.count, classes_, nb, validation_.labels.data() + c.offset, c.indices,
                       nullptr, 0, T(1) / static_cast<T>(s), c.index_stride()},
                      z.data, z.ld, u.data, u.ld, nullptr, 0);
    // hv += A_c U
    accumulate(c, u, hv, nb);
  });
}

template <typename T>
void HypercleanProblem<T>::grad_f(const Batch& batch, ConstMatrixView<T> x, ConstMatrixView<T> y,
                                  MatrixView<T> fx, MatrixView<T> fy) {
  check("grad_f", x, y);
  Ops<T>& ops = exec_->ops<T>();
  const index_t nb = x.cols, cb = classes_ * nb;
  const index_t s = batch.full() ? validation_.total : std::min(batch.size, validation_.total);
  // fx = 0: f does not depend on the sample weights
  if (!fx.empty()) ops.fill(fx, T(0));
  {
    // fy = A_b Rg (unweighted), one read of each sampled row
    kernels::LinearModelOutputs<T> o;
    o.w = y.data;
    o.grad = fy.data;
    const bool fused = fy.ld == fy.rows && fused_oracle(validation_, batch, nb, nullptr, 0, o);
    require_fused(fused, "grad_f");
    if (fused) {
      reduce(fy.data, fy.rows * fy.cols);
      return;
    }
  }
  ops.fill(fy, T(0));
  for_each_chunk(validation_, batch, nb, [&](const Chunk& c) {
    MatrixView<T> z(z_.data(), c.count, cb, z_.rows());
    // Z = A_c' W
    logits(c, y, z, nb);
    // Z <- (softmax(Z) - e_label) / s
    softmax_->gradient({c.count, classes_, nb, validation_.labels.data() + c.offset, c.indices,
                        nullptr, 0, T(1) / static_cast<T>(s), c.index_stride()},
                       z.data, z.ld);
    // fy += A_c Z
    accumulate(c, z, fy, nb);
  });
}

template <typename T>
void HypercleanProblem<T>::hvp_jvp(const Batch& batch, ConstMatrixView<T> x, ConstMatrixView<T> y,
                                   ConstMatrixView<T> v, MatrixView<T> hv, MatrixView<T> jv) {
  check("hvp_jvp", x, y);
  BILEVEL_EXPECTS(v.rows == dim_y() && v.cols == x.cols && v.ld == v.rows,
                  "hyperclean hvp_jvp: v must be a contiguous " << dim_y() << " x " << x.cols);
  const bool fused = lower_fused(batch, x, y, v, MatrixView<T>(), hv, jv);
  require_fused(fused, "hvp_jvp");
  if (fused) {
    if (!hv.empty()) reduce(hv.data, hv.rows * hv.cols);
    return;
  }
  Ops<T>& ops = exec_->ops<T>();
  const index_t nb = x.cols, cb = classes_ * nb;
  const index_t s = batch.full() ? train_.total : std::min(batch.size, train_.total);
  // jv = 0 (only the batch's samples get a value)
  if (!jv.empty()) ops.fill(jv, T(0));
  // hv = 2 reg v
  if (!hv.empty()) ops.axpby(static_cast<T>(2 * reg_), v, T(0), hv);
  if (fused_logits_) {
    // [W V]: the two weight matrices side by side
    ops.copy(y, MatrixView<T>(wv_.data(), dim_y(), nb));
    ops.copy(v, MatrixView<T>(wv_.data() + dim_y() * nb, dim_y(), nb));
  }
  for_each_chunk(train_, batch, nb, [&](const Chunk& c) {
    // (independent batches: W_b and V_b are not side by side; two GEMMs)
    const bool fused = fused_logits_ && !c.independent;
    MatrixView<T> z(z_.data(), c.count, cb, z_.rows());
    MatrixView<T> u = fused ? MatrixView<T>(z_.data() + cb * z_.rows(), c.count, cb, z_.rows())
                            : MatrixView<T>(u_.data(), c.count, cb, u_.rows());
    if (fused) {
      // [Z U] = A_c' [W V]
      ops.gemm(Op::transpose, Op::none, T(1), c.a, ConstMatrixView<T>(wv_.data(), rows_, 2 * cb, rows_),
               T(0), MatrixView<T>(z_.data(), c.count, 2 * cb, z_.rows()));
    } else {
      // Z = A_c' W; U = A_c' V
      logits(c, y, z, nb);
      logits(c, v, u, nb);
    }
    // U <- sigmoid(x_i)/s (diag p - p p') U;  jv_i += sigmoid'(x_i)/s (p - e_label) . U
    softmax_->hvp_jvp({c.count, classes_, nb, train_.labels.data() + c.offset, c.indices,
                       x.data + c.offset, x.ld, T(1) / static_cast<T>(s), c.index_stride()},
                      z.data, z.ld, u.data, u.ld,
                      jv.empty() ? nullptr : jv.data + c.offset, jv.ld);
    // hv += A_c U
    if (!hv.empty()) accumulate(c, u, hv, nb);
  });
}

template <typename T>
bool HypercleanProblem<T>::lower_outputs(ConstMatrixView<T> y, ConstMatrixView<T> v,
                                         MatrixView<T> gy, MatrixView<T> hv, MatrixView<T> jv,
                                         kernels::LinearModelOutputs<T>& o) const {
  const bool contiguous = (gy.empty() || gy.ld == gy.rows) && (hv.empty() || hv.ld == hv.rows) &&
                          (jv.empty() || jv.rows == dim_x());
  if (!contiguous) return false;
  // gy = 2 reg W + A_b Rg; hv = 2 reg V + A_b Rh; jv = sigmoid'(x) (J v terms), zero elsewhere
  o = kernels::LinearModelOutputs<T>{};
  o.w = y.data;
  o.v = v.data;
  o.grad = gy.empty() ? nullptr : gy.data;
  o.hv = hv.empty() ? nullptr : hv.data;
  o.jv = jv.empty() ? nullptr : jv.data;
  o.ldjv = jv.ld;
  o.jv_rows = dim_x();
  o.reg2 = reg2();
  return true;
}

template <typename T>
void HypercleanProblem<T>::lower_step(const Batch& batch, ConstMatrixView<T> x, MatrixView<T> y,
                                      const T* steps, MatrixView<T> work) {
  check("lower_step", x, y);
  if (!sharded() && !batch.full() && y.ld == y.rows) {
    // y <- y - steps gy, gy = 2 reg W + A_b Rg: the step in the back-product's epilogue
    kernels::LinearModelOutputs<T> o;
    o.w = y.data;
    o.grad = y.data;
    o.reg2 = reg2();
    o.step = steps;
    if (fused_oracle(train_, batch, x.cols, x.data, x.ld, o)) return;
  }
  Problem<T>::lower_step(batch, x, y, steps, work);
}

template <typename T>
void HypercleanProblem<T>::neumann_term(const Batch& batch, ConstMatrixView<T> x,
                                        ConstMatrixView<T> y, const T* eta, MatrixView<T> r,
                                        MatrixView<T> sum, MatrixView<T> work) {
  check("neumann_term", x, y);
  if (!sharded() && !batch.full() && r.ld == r.rows && sum.ld == sum.rows) {
    // r <- r - eta H r, sum <- sum + r: the term in the back-product's epilogue
    kernels::LinearModelOutputs<T> o;
    o.w = y.data;
    o.v = r.data;
    o.hv = r.data;
    o.reg2 = reg2();
    o.step = eta;
    o.sum = sum.data;
    if (fused_oracle(train_, batch, x.cols, x.data, x.ld, o)) return;
  }
  Problem<T>::neumann_term(batch, x, y, eta, r, sum, work);
}

template <typename T>
bool HypercleanProblem<T>::lower_fused(const Batch& batch, ConstMatrixView<T> x,
                                       ConstMatrixView<T> y, ConstMatrixView<T> v,
                                       MatrixView<T> gy, MatrixView<T> hv, MatrixView<T> jv) {
  kernels::LinearModelOutputs<T> o;
  return lower_outputs(y, v, gy, hv, jv, o) &&
         fused_oracle(train_, batch, x.cols, x.data, x.ld, o);
}

template <typename T>
void HypercleanProblem<T>::lower_oracles(const Batch& batch, ConstMatrixView<T> x,
                                         ConstMatrixView<T> y, ConstMatrixView<T> v,
                                         MatrixView<T> gy, MatrixView<T> hv, MatrixView<T> jv) {
  check("lower_oracles", x, y);
  BILEVEL_EXPECTS(v.rows == dim_y() && v.cols == x.cols && v.ld == v.rows,
                  "hyperclean lower_oracles: v must be a contiguous " << dim_y() << " x "
                                                                      << x.cols);
  const bool fused = lower_fused(batch, x, y, v, gy, hv, jv);
  require_fused(fused, "lower_oracles");
  if (fused) {
    if (!gy.empty()) reduce(gy.data, gy.rows * gy.cols);
    if (!hv.empty()) reduce(hv.data, hv.rows * hv.cols);
    return;
  }
  Problem<T>::lower_oracles(batch, x, y, v, gy, hv, jv);
}

template <typename T>
void HypercleanProblem<T>::single_point_oracles(const Batch& lower, const Batch& upper,
                                                ConstMatrixView<T> x, ConstMatrixView<T> y,
                                                ConstMatrixView<T> v, MatrixView<T> gy,
                                                MatrixView<T> hv, MatrixView<T> jv,
                                                MatrixView<T> fx, MatrixView<T> fy) {
  check("single_point_oracles", x, y);
  BILEVEL_EXPECTS(v.rows == dim_y() && v.cols == x.cols && v.ld == v.rows,
                  "hyperclean single_point_oracles: v must be a contiguous " << dim_y() << " x "
                                                                             << x.cols);
  const index_t nb = x.cols;
  kernels::LinearModelCall<T> calls[2];
  kernels::LinearModelOutputs<T> lo;
  // lower: gy, hv, jv as lower_oracles
  if (fy.ld == fy.rows && lower_outputs(y, v, gy, hv, jv, lo)) {
    // upper: fy = A_b' Rg' (unweighted validation loss)
    kernels::LinearModelOutputs<T> up;
    up.w = y.data;
    up.grad = fy.data;
    const kernels::LinearModelWorkspace<T> lower_ws{z_.data(), u_.data(), per_sample_.data(),
                                                    chunk_};
    const kernels::LinearModelWorkspace<T> upper_ws{upper_rg_.data(), nullptr, nullptr,
                                                    upper_rg_.rows()};
    if (fused_minibatch_call(train_, lower, nb, x.data, x.ld, lo, lower_ws, calls[0]) &&
        fused_minibatch_call(validation_, upper, nb, nullptr, 0, up, upper_ws, calls[1]) &&
        calls[0].batch.indices != nullptr && calls[1].batch.indices != nullptr &&
        calls[1].batch.count <= upper_rg_.rows()) {
      // fx = 0: f does not depend on the sample weights
      if (!fx.empty()) exec_->ops<T>().fill(fx, T(0));
      fused_->softmax_cross_entropy(calls, 2);
      if (!gy.empty()) reduce(gy.data, gy.rows * gy.cols);
      if (!hv.empty()) reduce(hv.data, hv.rows * hv.cols);
      reduce(fy.data, fy.rows * fy.cols);
      return;
    }
  }
  // (sharded: grad_f and lower_oracles reduce their own sums)
  Problem<T>::single_point_oracles(lower, upper, x, y, v, gy, hv, jv, fx, fy);
}

template <typename T>
void HypercleanProblem<T>::values(const Batch& lower, const Batch& upper, ConstMatrixView<T> x,
                                  ConstMatrixView<T> y, T* f_out, T* g_out) {
  check("values", x, y);
  BILEVEL_EXPECTS(!sharded() || (lower.full() && upper.full()),
                  "hyperclean values: a run split over ranks evaluates f and g on full passes "
                  "only");
  Ops<T>& ops = exec_->ops<T>();
  const index_t nb = x.cols, cb = classes_ * nb;
  const auto sum_losses = [&](const Part& p, const Batch& batch, const T* weights, T* out) {
    const index_t s = batch.full() ? p.total : std::min(batch.size, p.total);
    bool first = true;
    for_each_chunk(p, batch, nb, [&](const Chunk& c) {
      MatrixView<T> z(z_.data(), c.count, cb, z_.rows());
      MatrixView<T> l(per_sample_.data(), c.count, nb, per_sample_.rows());
      // Z = A_c' W
      logits(c, y, z, nb);
      // L = w CE(Z, label) / s
      softmax_->loss({c.count, classes_, nb, p.labels.data() + c.offset, c.indices,
                      weights ? weights + c.offset : nullptr, x.ld, T(1) / static_cast<T>(s), c.index_stride()},
                     z.data, z.ld, l.data, l.ld);
      // out (+)= L' 1
      ops.gemm(Op::transpose, Op::none, T(1), l, ConstMatrixView<T>(ones_.data(), c.count, 1),
               first ? T(0) : T(1), MatrixView<T>(out, nb, 1));
      first = false;
    });
  };
  // f = mean validation CE
  if (f_out != nullptr) {
    sum_losses(validation_, upper, nullptr, f_out);
    reduce(f_out, nb);
  }
  if (g_out != nullptr) {
    // g = mean weighted train CE + reg ||W||^2 (the sum over the ranks' samples first)
    sum_losses(train_, lower, x.data, g_out);
    reduce(g_out, nb);
    ops.batch_dot(y, y, scalars_.data());
    ops.axpby(static_cast<T>(reg_), ConstMatrixView<T>(scalars_.data(), nb, 1), T(1),
              MatrixView<T>(g_out, nb, 1));
  }
}

template <typename T>
std::vector<double> HypercleanProblem<T>::reduce_part(DataSplit split, ConstMatrixView<T> y,
                                                      bool accuracy) {
  reduce_part_into(split, y, accuracy, scalars_.data());
  std::vector<T> host(static_cast<std::size_t>(y.cols));
  exec_->copy_to_host(host.data(), scalars_.data(), host.size() * sizeof(T));
  return std::vector<double>(host.begin(), host.end());
}

template <typename T>
void HypercleanProblem<T>::reduce_part_into(DataSplit split, ConstMatrixView<T> y, bool accuracy,
                                            T* out) {
  BILEVEL_EXPECTS(y.rows == dim_y() && y.ld == y.rows && y.cols <= reserved_instances_,
                  "hyperclean: y must be a contiguous " << dim_y() << " x B (B <= "
                                                        << reserved_instances_ << ")");
  const Part& p = part(split);
  Ops<T>& ops = exec_->ops<T>();
  const index_t nb = y.cols, cb = classes_ * nb;
  bool first = true;
  for_each_chunk(p, Batch{nullptr, p.samples}, 1, [&](const Chunk& c) {
    MatrixView<T> z(z_.data(), c.count, cb, z_.rows());
    MatrixView<T> l(per_sample_.data(), c.count, nb, per_sample_.rows());
    // Z = A_c' W
    logits(c, y, z, nb);
    const kernels::SoftmaxBatch<T> b{c.count, classes_, nb, p.labels.data() + c.offset, nullptr,
                                     nullptr, 0, T(1) / static_cast<T>(p.total)};
    // L = [argmax Z == label] or CE(Z, label) / n
    if (accuracy)
      softmax_->correct(b, z.data, z.ld, l.data, l.ld);
    else
      softmax_->loss(b, z.data, z.ld, l.data, l.ld);
    // out (+)= L' 1 (accuracy: / n)
    const T scale = accuracy ? T(1) / static_cast<T>(p.total) : T(1);
    ops.gemm(Op::transpose, Op::none, scale, l, ConstMatrixView<T>(ones_.data(), c.count, 1),
             first ? T(0) : T(1), MatrixView<T>(out, nb, 1));
    first = false;
  });
  reduce(out, nb);
}

template <typename T>
void HypercleanProblem<T>::set_detection_truth(const std::vector<std::uint8_t>& corrupted) {
  BILEVEL_EXPECTS(static_cast<index_t>(corrupted.size()) == train_.total,
                  "hyperclean: the detection truth needs " << train_.total << " values, got "
                                                           << corrupted.size());
  // this rank's samples' entries
  const auto begin = corrupted.begin() + train_.first;
  corrupted_ = Array<T>(exec_, train_.samples, 1, std::vector<T>(begin, begin + train_.samples));
}

template <typename T>
std::vector<std::string> HypercleanProblem<T>::evaluation_metric_names() const {
  if (corrupted_.size() == 0) return {"test_accuracy"};
  return {"test_accuracy", "flagged", "true_positives"};
}

template <typename T>
void HypercleanProblem<T>::evaluation_metrics(ConstMatrixView<T> x, ConstMatrixView<T> y,
                                              T* out) {
  const index_t nb = y.cols;
  // accuracy of W on the test split
  reduce_part_into(DataSplit::test, y, true, out);
  if (corrupted_.size() == 0) return;
  Ops<T>& ops = exec_->ops<T>();
  // flagged = #{i : x_i < 0} (sigmoid(x_i) < 0.5); true positives = those corrupted
  ops.batch_count_below(x, T(0), nullptr, out + nb);
  ops.batch_count_below(x, T(0), corrupted_.data(), out + 2 * nb);
  reduce(out + nb, 2 * nb);
}

template <typename T>
std::vector<T> HypercleanProblem<T>::features_of(DataSplit split) {
  const Part& p = part(split);
  Array<T> out(exec_, rows_, p.samples);
  columns_as_t(p, nullptr, 0, p.samples, out.data());
  return out.to_host();
}

template <typename T>
std::vector<double> HypercleanProblem<T>::accuracy(DataSplit split, ConstMatrixView<T> y) {
  return reduce_part(split, y, true);
}

template <typename T>
std::vector<double> HypercleanProblem<T>::mean_loss(DataSplit split, ConstMatrixView<T> y) {
  return reduce_part(split, y, false);
}

template class HypercleanProblem<float>;
template class HypercleanProblem<double>;

}  // namespace bilevel
