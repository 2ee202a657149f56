// The linear-model problem family: multinomial logistic regression W below (or binary logistic
// regression with one weight vector, LinearModelLoss::binary_logistic), one of three upper
// variables above, all on the same fused oracles (kernels/linear_model_kernels.hpp: one
// loss functor, rows read by index) and the same data, shards, residence and precision.
//
//   y = W in R^{r x C} (column-major; r = d + 1 with the bias as feature d, r = d without a
//       bias, HypercleanData::bias = false),
//   g(x, W) = (1/|b|) sum_{i in b} w_i(x) CE(W' a_i, label_i) + penalty(x, W)     (train)
//   f(W)    = (1/|b'|) sum_{j in b'} CE(W' a_j, label_j)                         (validation)
//
// and the outer map (OuterMap), what x is:
//   sample_weights  (hyper-cleaning, Franceschi et al. ICML 2017; Ji et al. 2021):
//                   x in R^n_train, w_i = sigmoid(x_i), penalty = reg ||W||^2 (reg fixed);
//   per_feature_l2  (benchopt's ijcnn1 map): x = lambda in R^d, w_i = 1, penalty =
//                   (1/2) sum_jc exp(lambda_j) W_jc^2 (the bias row is not penalised);
//   per_class_l2    (benchopt's covtype map): x = lambda in R^C, w_i = 1, penalty =
//                   (1/2) sum_jc exp(lambda_c) W_jc^2 (likewise).
// The per-sample part of every oracle - logits, the loss's coefficients, the back-product, the
// J v scatter of a sample weight - is one call of the fused kernels (or, for shapes they do not
// take, the composed GEMM path); the L2 maps add their entrywise terms E .* W, E .* V and the
// sums of E .* W .* V after it (host/problems/l2_penalty.cpp). `HypercleanProblem` and
// `L2TuningProblem` (hyperclean.hpp, l2_tuning.hpp) are this class, configured by the
// constructor that builds it.
//
// B instances share the data: their W's side by side form an r x (C B) matrix, so the logits of
// a minibatch for all instances come from one read of each sampled row. Full passes
// (evaluation, full batches) run in chunks of samples so that workspaces stay bounded.
#pragma once

#include <bilevel/array.hpp>
#include <bilevel/data.hpp>
#include <bilevel/distributed.hpp>
#include <bilevel/problem.hpp>

#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <vector>

namespace bilevel {

namespace kernels {
template <typename T>
class SoftmaxKernels;
template <typename T>
class LinearModelKernels;
template <typename T>
struct LinearModelOutputs;
template <typename T>
struct LinearModelWorkspace;
template <typename T>
struct LinearModelCall;
}

template <typename T>
class L2PenaltyTerms;  // host/problems/l2_penalty.hpp: the L2 maps' entrywise terms

/// What the upper variable x of a linear-model problem is (see the top of this file).
enum class OuterMap { sample_weights, per_feature_l2, per_class_l2 };

/// The lower level's loss: softmax cross-entropy over C classes (W has C columns), or binary
/// logistic regression with one logit per sample (two classes, W one column w: loss
/// log(1 + exp(-s w' a)) with s = +1 for class 1 and -1 for class 0; benchopt's ijcnn1 model).
enum class LinearModelLoss { softmax, binary_logistic };
/// "softmax" | "binary"; InvalidArgument naming the text otherwise.
LinearModelLoss parse_linear_model_loss(const std::string& text);

/// Which entries of W one L2 weight exp(lambda_k) penalises (the L2 outer maps).
enum class L2Penalty { per_feature, per_class };
/// "per-feature" | "per-class"; InvalidArgument naming the text otherwise.
L2Penalty parse_l2_penalty(const std::string& text);
std::string to_string(L2Penalty penalty);

/// How the features are stored on the executor: in the problem's precision T, or as bf16 (half
/// the bytes of every pass over the data; all arithmetic and all state stay in T). bf16 keeps
/// 8 significant bits: a feature is stored with a relative error of at most 2^-8.
enum class DataPrecision { same, bf16 };

/// Parses "same" (the problem's own precision) and "bf16"; throws InvalidArgument naming the
/// text otherwise.
DataPrecision parse_data_precision(const std::string& text);

/// Where the training features live: the executor's memory, or host memory its kernels read in
/// place (Array::Residence::host_mapped: on CUDA, page-locked and mapped, so the minibatch rows
/// cross the bus at each use) - training sets larger than the device. Validation and test
/// features, labels and all state stay on the executor.
enum class DataResidence { device, host };
DataResidence parse_data_residence(const std::string& text);  ///< "device" | "host"

/// How the minibatch and full-pass oracles of the linear-model family are computed. `fused`: the
/// linear-model kernel family (kernels/linear_model_kernels.hpp: rows read by index, two
/// kernels per call, deterministic); `composed`: gather, GEMM, softmax pass, GEMM (cuBLAS /
/// OpenBLAS); `automatic`: fused where the backend's fused path takes the shape (CUDA: C x B
/// up to 256 and C <= 64; the CPU: every shape), composed otherwise.
enum class OraclePath { automatic, fused, composed };

enum class DataSplit { train, validation, test };

/// Synthetic hyper-cleaning data generated on the executor: features never pass through the
/// host, so the size is bounded by device memory. Gaussian class clusters as make_synthetic
/// (class means ~ N(0, separation^2 / d I), sample = mean of its true class + N(0, I), labels
/// uniform); the train labels of a fraction `corruption` of the samples are replaced by a
/// different class. Not standardized: the features have unit noise by construction.
struct SyntheticHypercleanSpec {
  index_t train = 20000, validation = 5000, test = 10000;
  index_t features = 100;
  int classes = 10;
  double corruption = 0.5;
  std::uint64_t seed = 0;
  double separation = 3.0;
  /// Harder, more realistic data (both off by default): feature j is scaled by s_j, log-uniform
  /// in [1/feature_scale_spread, feature_scale_spread] (features of different units, as
  /// unstandardized real data), and the noise gets a shared low-rank part: noise = z + U w with
  /// z ~ N(0, I), w ~ N(0, correlation I) of `latent_factors` entries and U with N(0, 1/k)
  /// entries (features correlated through k latent factors). Sample = S (mean + noise).
  double feature_scale_spread = 1.0;
  double correlation = 0.0;
  index_t latent_factors = 8;
};

/// The host-side truth of device-generated data, for the detection scores.
struct HypercleanTruth {
  std::vector<std::int32_t> clean_train_labels;
  std::vector<std::uint8_t> corrupted;
};

/// What a hyper-cleaning run holds on its executor, in bytes (LinearModelProblem::memory_plan).
struct HypercleanMemory {
  std::size_t features = 0;    ///< the splits' features on the executor (and labels)
  std::size_t host = 0;        ///< training features kept in host memory (DataResidence::host)
  std::size_t workspaces = 0;  ///< the oracles' workspaces for B instances and the batch
  std::size_t solver = 0;      ///< the solver's and estimator's state (an upper bound)
  std::size_t total() const { return features + workspaces + solver; }
};

template <typename T>
class LinearModelProblem final : public Problem<T> {
 public:
  /// The memory a run will hold, computed before anything is allocated: the features of
  /// train + validation + test samples of `features` features as stored, the workspaces for
  /// `instances` instances and batches of `batch` (per instance with independent batches), and
  /// the solver's state: `x_arrays` x-sized arrays per instance (the presets hold 4 to 6: see
  /// solver_x_arrays) and 12 y-sized ones.
  static HypercleanMemory memory_plan(index_t train, index_t validation, index_t test,
                                      index_t features, int classes, index_t instances,
                                      index_t batch, DataPrecision precision,
                                      bool independent_batches = false, int x_arrays = 6,
                                      DataResidence residence = DataResidence::device);
  /// Hyper-cleaning (OuterMap::sample_weights). Uploads the three splits (train with its
  /// corrupted labels). `reg` is the L2 weight; `precision` how the features are stored.
  LinearModelProblem(std::shared_ptr<Executor> exec, const HypercleanData& data, double reg,
                     DataPrecision precision = DataPrecision::same,
                     DataResidence residence = DataResidence::device);
  /// Data-parallel: this rank keeps its shard (comm->shard(n)) of each split's samples, and x
  /// is its shard of the sample weights (dim_x() = its training samples; lower_samples() and
  /// upper_samples() stay the whole splits', from which minibatches are drawn, the same on
  /// every rank). Each oracle sums the drawn samples this rank owns and all-reduces the sums
  /// over y (gy, fy, H v, values, metrics); J v and grad_x g stay with their samples. So P
  /// ranks compute the iterates of one process, up to the order of the sums. Every rank needs
  /// at least one sample of each split. Oracles run on the fused path only.
  LinearModelProblem(std::shared_ptr<Executor> exec, const HypercleanData& data, double reg,
                     std::shared_ptr<Communicator> comm,
                     DataPrecision precision = DataPrecision::same,
                     DataResidence residence = DataResidence::device);
  /// Generates the data on the executor (see SyntheticHypercleanSpec); `truth` receives the
  /// clean train labels and the corruption mask.
  LinearModelProblem(std::shared_ptr<Executor> exec, const SyntheticHypercleanSpec& spec,
                     double reg, HypercleanTruth* truth,
                     DataPrecision precision = DataPrecision::same,
                     DataResidence residence = DataResidence::device);
  /// Data-parallel generation: this rank generates only its shard of each split: the same
  /// numbers as those samples of the one-process data (bit for bit with the plain generator,
  /// to rounding with the mixed one, whose GEMM then runs over chunks of other widths);
  /// `truth` gets the whole splits' truth.
  LinearModelProblem(std::shared_ptr<Executor> exec, const SyntheticHypercleanSpec& spec,
                     double reg, HypercleanTruth* truth, std::shared_ptr<Communicator> comm,
                     DataPrecision precision = DataPrecision::same,
                     DataResidence residence = DataResidence::device);
  /// L2 tuning (OuterMap::per_feature_l2 or per_class_l2): the three splits (labels
  /// uncorrupted; classes from the training split; a bias row when data.bias), every sample
  /// weight 1, x the log L2 weights of the penalty map.
  /// `loss` binary_logistic: two classes, W the one column w (dim_y() = r), the softmax of
  /// logits (0, w' a) (exactly the binary logistic loss) computed by the family's two-class
  /// kernels with class 0's column held at 0.
  LinearModelProblem(std::shared_ptr<Executor> exec, const HypercleanData& data,
                     L2Penalty penalty, LinearModelLoss loss = LinearModelLoss::softmax);
  ~LinearModelProblem() override;

  /// "hyperclean" (sample weights) or "l2-tuning" (the L2 maps).
  std::string name() const override;
  std::shared_ptr<Executor> executor() const override { return exec_; }
  /// n_train (this rank's training samples), d (per-feature L2) or C (per-class L2).
  index_t dim_x() const override;
  OuterMap outer_map() const { return map_; }
  /// The L2 map (throws InvalidArgument for sample weights, which have none).
  L2Penalty penalty_map() const;
  /// L2 maps: keeps every weight at most `max_weight` (project_x clamps lambda to
  /// log max_weight): a larger one would make the lower level's curvature, and so its stable
  /// step, depend on the upper iterate. Default: no bound. (Sample weights: refused.)
  void set_max_weight(double max_weight);
  void project_x(MatrixView<T> x) override;
  /// r C (softmax), r (binary logistic: one column)
  index_t dim_y() const override { return one_logit_ ? rows_ : rows_ * classes_; }
  LinearModelLoss loss() const {
    return one_logit_ ? LinearModelLoss::binary_logistic : LinearModelLoss::softmax;
  }
  index_t lower_samples() const override { return train_.total; }
  index_t upper_samples() const override { return validation_.total; }
  /// This rank's training samples [first, first + dim_x()) of lower_samples() (all: 0).
  index_t first_train_sample() const { return train_.first; }
  Communicator* upper_shards() const override { return sharded() ? comm_.get() : nullptr; }
  bool capturable() const override;
  /// Minibatches drawn inside the fused kernels (no draw launch); the composed path draws them
  /// into memory itself (draw_batch_indices).
  bool draws_minibatches() const override { return true; }
  /// The SGD step on W and the Neumann term fused into the back-product (two kernels each,
  /// where grad_y_g or hvp_jvp and a separate update took three); the composed path, a full
  /// batch or sharded data (the sums are all-reduced before any step) take the defaults.
  void lower_step(const Batch& batch, ConstMatrixView<T> x, MatrixView<T> y, const T* steps,
                  MatrixView<T> work) override;
  void neumann_term(const Batch& batch, ConstMatrixView<T> x, ConstMatrixView<T> y,
                    const T* eta, MatrixView<T> r, MatrixView<T> sum,
                    MatrixView<T> work) override;
  index_t feature_rows() const { return rows_; }  ///< d + 1 (d without a bias)
  index_t features() const { return rows_ - (bias_ ? 1 : 0); }  ///< d
  bool has_bias() const { return bias_; }  ///< HypercleanData::bias (synthetic data: true)
  bool supports_independent_batches() const override { return true; }

  /// The truly corrupted training samples (1) of a run, for the evaluation metrics "flagged"
  /// and "true_positives" (samples with sigmoid(x_i) < 0.5, and those of them corrupted): one
  /// value per training sample of the whole split (sharded: each rank keeps its own).
  void set_detection_truth(const std::vector<std::uint8_t>& corrupted);
  /// "test_accuracy", and with a detection truth "flagged" and "true_positives".
  std::vector<std::string> evaluation_metric_names() const override;
  void evaluation_metrics(ConstMatrixView<T> x, ConstMatrixView<T> y, T* out) override;
  /// H v + J v with the logits of W and of V from one GEMM, A' [W V], instead of two: one pass
  /// over each block of data instead of two, for two small copies of W and V side by side.
  /// Off by default until it is measured on a GPU (on the 2-core CPU it was neutral: -4% at
  /// B = 1 to +9% at B = 64). Takes effect at the next reserve().
  void set_fused_logits_gemm(bool on) {
    fused_logits_ = on;
    reserved_instances_ = reserved_batch_ = 0;
  }
  /// The oracle path (default automatic). `fused` on a shape the backend's fused kernels do
  /// not take throws InvalidArgument at the oracle call.
  void set_oracle_path(OraclePath path) { path_ = path; }
  OraclePath oracle_path() const { return path_; }
  int classes() const { return classes_; }
  DataPrecision data_precision() const { return bf16_ ? DataPrecision::bf16 : DataPrecision::same; }
  DataResidence data_residence() const { return residence_; }
  /// Bytes of the stored features of all three splits.
  std::size_t feature_bytes() const;
  double regularization() const { return reg_; }

  void reserve(index_t instances, index_t max_batch) override;
  void grad_y_g(const Batch& batch, ConstMatrixView<T> x, ConstMatrixView<T> y,
                MatrixView<T> out) override;
  /// Sample weights: out_i = (1/|b|) sum over the batch's copies of sample i of
  /// sigmoid'(x_i) CE_i (first-order methods: F2SA, LV-HBA); zero for samples outside the
  /// batch. L2 maps: out_k = (1/2) exp(lambda_k) times the sum of W^2 over the entries lambda_k
  /// penalises (the penalty's gradient; the loss does not depend on lambda).
  void grad_x_g(const Batch& batch, ConstMatrixView<T> x, ConstMatrixView<T> y,
                MatrixView<T> out) override;
  void grad_f(const Batch& batch, ConstMatrixView<T> x, ConstMatrixView<T> y, MatrixView<T> fx,
              MatrixView<T> fy) override;
  /// f's Hessian in W on the validation batch (the HVP of the unweighted loss); f does not
  /// depend on x: J_f = 0 (BDA).
  void hvp_jvp_f(const Batch& batch, ConstMatrixView<T> x, ConstMatrixView<T> y,
                 ConstMatrixView<T> v, MatrixView<T> hv, MatrixView<T> jv) override;
  void hvp_jvp(const Batch& batch, ConstMatrixView<T> x, ConstMatrixView<T> y,
               ConstMatrixView<T> v, MatrixView<T> hv, MatrixView<T> jv) override;
  /// gy, H v and J v from one read of each sampled row (fused path; composed: three GEMM
  /// passes as grad_y_g + hvp_jvp).
  void lower_oracles(const Batch& batch, ConstMatrixView<T> x, ConstMatrixView<T> y,
                     ConstMatrixView<T> v, MatrixView<T> gy, MatrixView<T> hv,
                     MatrixView<T> jv) override;
  /// f is the unweighted, unpenalised validation loss: it does not depend on x (any map).
  bool upper_depends_on_x() const override { return false; }
  /// fy on the upper batch and gy, H v, J v on the lower batch in the same two kernels
  /// (fused path; composed: grad_f + lower_oracles).
  void single_point_oracles(const Batch& lower, const Batch& upper, ConstMatrixView<T> x,
                            ConstMatrixView<T> y, ConstMatrixView<T> v, MatrixView<T> gy,
                            MatrixView<T> hv, MatrixView<T> jv, MatrixView<T> fx,
                            MatrixView<T> fy) override;
  void values(const Batch& lower, const Batch& upper, ConstMatrixView<T> x, ConstMatrixView<T> y,
              T* f_out, T* g_out) override;

  /// The features of a split as stored, widened to T, one column per sample (bias row last),
  /// copied to the host (for inspection and tests). Synchronises.
  std::vector<T> features_of(DataSplit split);
  /// Per-instance accuracy of W (y: dy x B) on a split. Synchronises (reads back B values).
  std::vector<double> accuracy(DataSplit split, ConstMatrixView<T> y);
  /// Per-instance mean cross-entropy of W on a split (unweighted). Synchronises.
  std::vector<double> mean_loss(DataSplit split, ConstMatrixView<T> y);

 private:
  struct Part {
    index_t samples = 0;              // this rank's samples (all of them without shards)
    index_t first = 0, total = 0;     // the first one's index in the whole split, its size
    Array<T> x;                       // rows_ x samples: one column per sample (bias row = 1)
    Array<std::uint16_t> x_bf16;      // the same as bf16 (DataPrecision::bf16; x is then empty)
    Array<std::int32_t> labels;
  };
  /// A block of samples of a part, ready for GEMM: columns (rows_ x count), their data indices
  /// (nullptr: consecutive from `offset`). With independent batches every instance has its own
  /// columns, instance b's at a.data + b rows_ count, and indices at indices + b count.
  struct Chunk {
    ConstMatrixView<T> a;
    const sample_index_t* indices;
    index_t offset;
    index_t count;
    bool independent = false;
    index_t index_stride() const { return independent ? count : 0; }
  };
  /// Z = A_c' W (the logits of every sample and instance; per instance with independent batches).
  void logits(const Chunk& c, ConstMatrixView<T> y, MatrixView<T> z, index_t instances);
  /// out += A_c Z (weights-shaped out, dy x B).
  void accumulate(const Chunk& c, ConstMatrixView<T> z, MatrixView<T> out, index_t instances);
  /// f(chunk) over the batch's samples of a part (`instances`: the call's B, for independent
  /// batches).
  template <typename F>
  void for_each_chunk(const Part& part, const Batch& batch, index_t instances, F&& f);
  const Part& part(DataSplit split) const;
  /// Stores every split's features as bf16 (rounded to nearest), releasing the T copies.
  void store_as_bf16();
  /// Samples generated at a time into bf16 host-resident training data (a multiple of the
  /// mixing chunk of 8192): the executor holds one such chunk in T during generation.
  static constexpr index_t kGenerationChunk = 65536;
  /// Where a split's T features go (the training split's: host memory with DataResidence::host).
  typename Array<T>::Residence placement(const Part* part) const;
  /// dst (rows_ x count) = the features of samples idx[i] (idx == nullptr: offset + i) as T.
  void columns_as_t(const Part& p, const sample_index_t* idx, index_t offset, index_t count,
                    T* dst);
  /// The fused oracles (outputs `o`, weights x or nullptr) over the batch's samples of a part,
  /// chunk by chunk for full passes. Returns false when the composed path is to be used.
  bool fused_oracle(const Part& part, const Batch& batch, index_t instances, const T* x,
                    index_t ldx, kernels::LinearModelOutputs<T> o);
  /// The call of one minibatch on the fused path (its workspace: `ws`), or false when the
  /// composed path is to be used or the batch is a full pass.
  bool fused_minibatch_call(const Part& part, const Batch& batch, index_t instances, const T* x,
                            index_t ldx, const kernels::LinearModelOutputs<T>& o,
                            const kernels::LinearModelWorkspace<T>& ws,
                            kernels::LinearModelCall<T>& call);
  /// The fused kernels' outputs for gy, hv, jv of g (any may be empty); false when a view is
  /// not contiguous (the composed path then).
  bool lower_outputs(ConstMatrixView<T> y, ConstMatrixView<T> v, MatrixView<T> gy,
                     MatrixView<T> hv, MatrixView<T> jv, kernels::LinearModelOutputs<T>& o) const;
  /// gy, hv, jv of g (any may be empty) on the fused path; false: use the composed one.
  bool lower_fused(const Batch& batch, ConstMatrixView<T> x, ConstMatrixView<T> y,
                   ConstMatrixView<T> v, MatrixView<T> gy, MatrixView<T> hv, MatrixView<T> jv);
  void check(const char* oracle, ConstMatrixView<T> x, ConstMatrixView<T> y) const;
  /// check, and v the same contiguous shape as y (the second-order oracles).
  void check(const char* oracle, ConstMatrixView<T> x, ConstMatrixView<T> y,
             ConstMatrixView<T> v) const;
  MatrixView<T> weights_view(ConstMatrixView<T> y) const;  // (d+1) x (C B)
  /// Per-instance sum over a whole part of a per-sample quantity (loss or correct).
  std::vector<double> reduce_part(DataSplit split, ConstMatrixView<T> y, bool accuracy);
  /// The same into out (B values on the executor), without reading back.
  void reduce_part_into(DataSplit split, ConstMatrixView<T> y, bool accuracy, T* out);
  /// x's pointer and leading dimension as the kernels' sample-weight logits: x itself for
  /// sample weights, none (every weight 1) for the L2 maps.
  const T* sample_weights(ConstMatrixView<T> x) const {
    return map_ == OuterMap::sample_weights ? x.data : nullptr;
  }
  index_t sample_weights_ld(ConstMatrixView<T> x) const {
    return map_ == OuterMap::sample_weights ? x.ld : 0;
  }
  /// The sample-weight logits of the samples from `offset` on (none for the L2 maps).
  const T* weights_at(ConstMatrixView<T> x, index_t offset) const {
    return map_ == OuterMap::sample_weights ? x.data + offset : nullptr;
  }
  /// L2 maps: gy += E .* W, hv += E .* V, jv = the penalty's J v (any may be empty; after the
  /// per-sample part, whose J v is then 0). Sample weights: nothing.
  void add_penalty_terms(ConstMatrixView<T> x, ConstMatrixView<T> y, ConstMatrixView<T> v,
                         MatrixView<T> gy, MatrixView<T> hv, MatrixView<T> jv);
  // Binary logistic (one_logit_): W = [0 w] per instance, and every oracle of the public
  // interface widens its y (and v) into workspaces of r x 2B with class 0's columns at 0, runs
  // the two-class body (wide_call_ set meanwhile), and keeps the class-1 columns of its
  // y-shaped outputs (host/problems/linear_model_one_logit.cpp).
  bool one_logit_ = false;
  bool wide_call_ = false;
  Array<T> wide_in_[2];   // y and v widened: r x 2B, class 0's columns 0
  Array<T> wide_out_[3];  // y-shaped outputs (gy, hv, fy) as the two-class body writes them
  /// True in a public oracle of a binary logistic problem before its y is widened.
  bool narrow_call() const { return one_logit_ && !wide_call_; }
  /// Rows of the y the body works on: r C (for binary logistic, once widened).
  index_t model_dim_y() const { return rows_ * classes_; }
  /// The rows of y this call takes: dim_y() at the interface, r C inside a widened call.
  index_t call_dim_y() const { return narrow_call() ? rows_ : model_dim_y(); }
  /// y (r x B) into workspace `slot` as [0 y_b] per instance; empty stays empty.
  ConstMatrixView<T> widen(ConstMatrixView<T> y, int slot);
  /// The wide workspace for a y-shaped output (empty for an empty one).
  MatrixView<T> wide_output(MatrixView<T> out, int slot);
  /// out (r x B) = the class-1 columns of workspace `slot` (nothing for an empty out).
  void narrow(int slot, MatrixView<T> out);
  /// Sets wide_call_ while a widened body runs (reset on the way out, thrown or not).
  struct WideCall {
    explicit WideCall(LinearModelProblem& p) : p_(p) { p_.wide_call_ = true; }
    ~WideCall() { p_.wide_call_ = false; }
    WideCall(const WideCall&) = delete;
    WideCall& operator=(const WideCall&) = delete;
    LinearModelProblem& p_;
  };
  OuterMap map_ = OuterMap::sample_weights;
  std::unique_ptr<L2PenaltyTerms<T>> penalty_;  // the L2 maps' terms (null for sample weights)
  Array<T> corrupted_;  // n_train 0/1 mask (set_detection_truth)
  std::shared_ptr<Communicator> comm_;
  bool sharded() const;
  /// The L2 term's 2 reg on rank 0, 0 on the others (summed once by the all-reduce).
  T reg2() const;
  /// data[0 .. count) summed over the ranks (sharded runs; nothing otherwise).
  void reduce(T* data, index_t count);
  /// Refuses what a sharded run does not do (the composed path: `oracle` names the call).
  void require_fused(bool fused, const char* oracle) const;
  DataResidence residence_ = DataResidence::device;

  std::shared_ptr<Executor> exec_;
  std::unique_ptr<kernels::SoftmaxKernels<T>> softmax_;
  std::unique_ptr<kernels::LinearModelKernels<T>> fused_;
  OraclePath path_ = OraclePath::automatic;
  index_t rows_ = 0;
  bool bias_ = true;  // the last feature row is the constant 1
  int classes_ = 0;
  double reg_ = 0;
  Part train_, validation_, test_;
  index_t chunk_ = 8192;
  index_t reserved_instances_ = 0, reserved_batch_ = 0;
  Array<T> gathered_;   // rows_ x max_batch
  Array<T> z_, u_;      // chunk x (C B); z_ is chunk x (2 C B) with fused logits: [Z U]
  Array<T> wv_;         // rows_ x (2 C B): [W V] side by side (fused logits only)
  bool fused_logits_ = false;
  bool bf16_ = false;
  Array<T> expanded_;   // rows_ x chunk: a chunk of bf16 features as T (composed full passes)
  Array<T> per_sample_; // chunk x B
  Array<T> ones_;       // chunk
  Array<T> upper_rg_;   // max_batch x (C B): fy's coefficients in single_point_oracles
  Array<T> scalars_;    // B
};

extern template class LinearModelProblem<float>;
extern template class LinearModelProblem<double>;

}  // namespace bilevel
