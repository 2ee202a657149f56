// The linear-model family's single oracles: the fused linear-model kernels (rows read by index,
// two kernels per call), or composed from gather, GEMM, softmax pass, GEMM; the L2 maps' terms
// (l2_penalty.cpp) added after the per-sample part. The rooms beside it: linear_model_bundled.cpp
// (the calls that bundle oracles or fuse a step), linear_model_setup.cpp (data, residence,
// precision, outer map, memory plan, workspaces), linear_model_metrics.cpp (evaluation),
// linear_model_one_logit.cpp (binary logistic's widened calls).
#include <bilevel/problems/linear_model.hpp>
#include <bilevel/sampling.hpp>

#include "../../kernels/linear_model_kernels.hpp"
#include "../../kernels/softmax_kernels.hpp"
#include "l2_penalty.hpp"
#include "linear_model_chunks.hpp"

#include <algorithm>
#include <cmath>

namespace bilevel {

template <typename T>
const typename LinearModelProblem<T>::Part& LinearModelProblem<T>::part(DataSplit split) const {
  return split == DataSplit::train ? train_ : split == DataSplit::validation ? validation_ : test_;
}

template <typename T>
void LinearModelProblem<T>::check(const char* oracle, ConstMatrixView<T> x,
                                 ConstMatrixView<T> y) const {
  BILEVEL_EXPECTS(x.rows == dim_x() && y.rows == call_dim_y() && x.cols == y.cols,
                  name() << " " << oracle << ": x must be " << dim_x() << " x B and y "
                         << call_dim_y() << " x B, got " << x.rows << " x " << x.cols << " and "
                         << y.rows << " x " << y.cols);
  BILEVEL_EXPECTS(y.ld == y.rows, name() << " " << oracle << ": y must be contiguous");
  // (the L2 maps' entrywise terms take x as one contiguous block)
  BILEVEL_EXPECTS(!penalty_ || x.ld == x.rows, name() << " " << oracle << ": x must be contiguous");
  BILEVEL_EXPECTS(x.cols <= reserved_instances_,
                  name() << " " << oracle << ": " << x.cols << " instances but workspace for "
                         << reserved_instances_ << " (call reserve first)");
}

template <typename T>
void LinearModelProblem<T>::check(const char* oracle, ConstMatrixView<T> x, ConstMatrixView<T> y,
                                  ConstMatrixView<T> v) const {
  check(oracle, x, y);
  BILEVEL_EXPECTS(v.rows == call_dim_y() && v.cols == x.cols && v.ld == v.rows,
                  name() << " " << oracle << ": v must be a contiguous " << call_dim_y() << " x "
                         << x.cols);
}

template <typename T>
bool LinearModelProblem<T>::fused_minibatch_call(const Part& p, const Batch& batch,
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
                  name() << ": the fused oracle path takes at most "
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
                  name() << ": a batch drawn from " << batch.population
                                                    << " samples used on a split of "
                                                    << p.total);
  const index_t sets = batch.independent() ? instances : 1;
  BILEVEL_EXPECTS(!batch.independent() || batch.stride == batch.size,
                  name() << ": independent index sets must be contiguous (stride = size)");
  BILEVEL_EXPECTS(batch.size > 0 && batch.size * sets <= reserved_batch_,
                  name() << ": batch of " << batch.size << " x " << sets
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
    b.draw_epochs = batch.draw.epochs;
  }
  if (sharded()) {
    // global indices; the kernels take this rank's samples and skip the others'
    b.shard_first = p.first;
    b.shard_samples = p.samples;
  }
  return true;
}

template <typename T>
bool LinearModelProblem<T>::fused_oracle(const Part& p, const Batch& batch, index_t instances,
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
bool LinearModelProblem<T>::sharded() const {
  return comm_->size() > 1;
}

template <typename T>
bool LinearModelProblem<T>::capturable() const {
  return comm_->capturable();
}

template <typename T>
T LinearModelProblem<T>::reg2() const {
  return comm_->rank() == 0 ? static_cast<T>(2 * reg_) : T(0);
}

template <typename T>
void LinearModelProblem<T>::reduce(T* data, index_t count) {
  if (sharded()) comm_->allreduce_sum(*exec_, data, count);
}

template <typename T>
void LinearModelProblem<T>::require_fused(bool fused, const char* oracle) const {
  BILEVEL_EXPECTS(fused || !sharded(),
                  "hyperclean " << oracle << ": a run split over " << comm_->size()
                                << " ranks takes the fused oracle path only (contiguous views, "
                                   "C x B up to "
                                << fused_->max_columns() << " on " << to_string(exec_->backend())
                                << "); this call would take the composed one");
}

template <typename T>
MatrixView<T> LinearModelProblem<T>::weights_view(ConstMatrixView<T> y) const {
  return MatrixView<T>(const_cast<T*>(y.data), rows_, classes_ * y.cols, rows_);
}

template <typename T>
void LinearModelProblem<T>::logits(const Chunk& c, ConstMatrixView<T> y, MatrixView<T> z,
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
void LinearModelProblem<T>::accumulate(const Chunk& c, ConstMatrixView<T> z, MatrixView<T> out,
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
void LinearModelProblem<T>::grad_y_g(const Batch& batch, ConstMatrixView<T> x,
                                    ConstMatrixView<T> y, MatrixView<T> out) {
  check("grad_y_g", x, y);
  if (narrow_call()) {
    // binary logistic: the two-class body on [0 w]; gy = its class-1 columns
    const WideCall wide(*this);
    grad_y_g(batch, x, widen(y, 0), wide_output(out, 0));
    narrow(0, out);
    return;
  }
  const index_t nb = x.cols, cb = classes_ * nb;
  {
    // gy = 2 reg W + A_b Rg, one read of each sampled row
    kernels::LinearModelOutputs<T> o;
    o.w = y.data;
    o.grad = out.data;
    o.reg2 = reg2();
    const bool fused = out.ld == out.rows && fused_oracle(train_, batch, nb, sample_weights(x),
                                                          sample_weights_ld(x), o);
    require_fused(fused, "grad_y_g");
    if (fused) {
      // sharded: gy summed over the ranks
      reduce(out.data, out.rows * out.cols);
      // L2 maps: gy += E .* W
      add_penalty_terms(x, y, ConstMatrixView<T>(), out, MatrixView<T>(), MatrixView<T>());
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
    // Z <- w_i / s (softmax(Z) - e_label), w_i = sigmoid(x_i) or 1
    softmax_->gradient({c.count, classes_, nb, train_.labels.data() + c.offset, c.indices,
                        weights_at(x, c.offset), sample_weights_ld(x), T(1) / static_cast<T>(s),
                        c.index_stride()},
                       z.data, z.ld);
    // gy += A_c Z
    accumulate(c, z, out, nb);
  });
  // L2 maps: gy += E .* W
  add_penalty_terms(x, y, ConstMatrixView<T>(), out, MatrixView<T>(), MatrixView<T>());
}

template <typename T>
void LinearModelProblem<T>::grad_x_g(const Batch& batch, ConstMatrixView<T> x,
                                    ConstMatrixView<T> y, MatrixView<T> out) {
  check("grad_x_g", x, y);
  BILEVEL_EXPECTS(out.rows == dim_x() && out.cols == x.cols,
                  name() << " grad_x_g: out must be " << dim_x() << " x " << x.cols);
  if (narrow_call()) {
    const WideCall wide(*this);
    grad_x_g(batch, x, widen(y, 0), out);
    return;
  }
  if (penalty_) {
    // L2 maps: gx_k = (1/2) exp(lambda_k) sum of W .* W over lambda_k's entries
    penalty_->jvp(penalty_->expand(x), y, y, T(0.5), out);
    return;
  }
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
void LinearModelProblem<T>::hvp_jvp_f(const Batch& batch, ConstMatrixView<T> x,
                                     ConstMatrixView<T> y, ConstMatrixView<T> v,
                                     MatrixView<T> hv, MatrixView<T> jv) {
  check("hvp_jvp_f", x, y);
  if (narrow_call()) {
    const WideCall wide(*this);
    hvp_jvp_f(batch, x, widen(y, 0), widen(v, 1), wide_output(hv, 0), jv);
    narrow(0, hv);
    return;
  }
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
void LinearModelProblem<T>::grad_f(const Batch& batch, ConstMatrixView<T> x, ConstMatrixView<T> y,
                                  MatrixView<T> fx, MatrixView<T> fy) {
  check("grad_f", x, y);
  if (narrow_call()) {
    const WideCall wide(*this);
    grad_f(batch, x, widen(y, 0), fx, wide_output(fy, 0));
    narrow(0, fy);
    return;
  }
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
void LinearModelProblem<T>::hvp_jvp(const Batch& batch, ConstMatrixView<T> x, ConstMatrixView<T> y,
                                   ConstMatrixView<T> v, MatrixView<T> hv, MatrixView<T> jv) {
  check("hvp_jvp", x, y, v);
  if (narrow_call()) {
    const WideCall wide(*this);
    hvp_jvp(batch, x, widen(y, 0), widen(v, 1), wide_output(hv, 0), jv);
    narrow(0, hv);
    return;
  }
  const bool fused = lower_fused(batch, x, y, v, MatrixView<T>(), hv, jv);
  require_fused(fused, "hvp_jvp");
  if (fused) {
    if (!hv.empty()) reduce(hv.data, hv.rows * hv.cols);
    add_penalty_terms(x, y, v, MatrixView<T>(), hv, jv);
    return;
  }
  Ops<T>& ops = exec_->ops<T>();
  const index_t nb = x.cols, cb = classes_ * nb;
  const index_t s = batch.full() ? train_.total : std::min(batch.size, train_.total);
  // sample weights: jv = 0 (only the batch's samples get a value); L2 maps: the penalty's, below
  MatrixView<T> sample_jv = penalty_ ? MatrixView<T>() : jv;
  if (!sample_jv.empty()) ops.fill(sample_jv, T(0));
  // hv = 2 reg v
  if (!hv.empty()) ops.axpby(static_cast<T>(2 * reg_), v, T(0), hv);
  if (fused_logits_) {
    // [W V]: the two weight matrices side by side
    ops.copy(y, MatrixView<T>(wv_.data(), model_dim_y(), nb));
    ops.copy(v, MatrixView<T>(wv_.data() + model_dim_y() * nb, model_dim_y(), nb));
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
    // U <- w_i/s (diag p - p p') U;  jv_i += sigmoid'(x_i)/s (p - e_label) . U (sample weights)
    softmax_->hvp_jvp({c.count, classes_, nb, train_.labels.data() + c.offset, c.indices,
                       weights_at(x, c.offset), sample_weights_ld(x), T(1) / static_cast<T>(s),
                       c.index_stride()},
                      z.data, z.ld, u.data, u.ld,
                      sample_jv.empty() ? nullptr : sample_jv.data + c.offset, sample_jv.ld);
    // hv += A_c U
    if (!hv.empty()) accumulate(c, u, hv, nb);
  });
  add_penalty_terms(x, y, v, MatrixView<T>(), hv, jv);
}

template <typename T>
void LinearModelProblem<T>::add_penalty_terms(ConstMatrixView<T> x, ConstMatrixView<T> y,
                                              ConstMatrixView<T> v, MatrixView<T> gy,
                                              MatrixView<T> hv, MatrixView<T> jv) {
  if (!penalty_) return;
  // E = exp(lambda) on W's entries, once for the call's terms
  const ConstMatrixView<T> e = penalty_->expand(x);
  // gy += E .* W;  hv += E .* V;  jv_k = exp(lambda_k) sum of W .* V over lambda_k's entries
  if (!gy.empty()) penalty_->add_product(e, y, gy);
  if (!hv.empty()) penalty_->add_product(e, v, hv);
  if (!jv.empty()) penalty_->jvp(e, y, v, T(1), jv);
}

template <typename T>
void LinearModelProblem<T>::values(const Batch& lower, const Batch& upper, ConstMatrixView<T> x,
                                  ConstMatrixView<T> y, T* f_out, T* g_out) {
  check("values", x, y);
  if (narrow_call()) {
    const WideCall wide(*this);
    values(lower, upper, x, widen(y, 0), f_out, g_out);
    return;
  }
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
                      weights ? weights + c.offset : nullptr, sample_weights_ld(x),
                      T(1) / static_cast<T>(s), c.index_stride()},
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
    sum_losses(train_, lower, sample_weights(x), g_out);
    reduce(g_out, nb);
    ops.batch_dot(y, y, scalars_.data());
    ops.axpby(static_cast<T>(reg_), ConstMatrixView<T>(scalars_.data(), nb, 1), T(1),
              MatrixView<T>(g_out, nb, 1));
    // L2 maps: g += (1/2) sum E .* W .* W
    if (penalty_) penalty_->add_value(penalty_->expand(x), y, g_out);
  }
}

template class LinearModelProblem<float>;
template class LinearModelProblem<double>;

}  // namespace bilevel
