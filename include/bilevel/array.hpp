// Owning arrays on an executor's memory (RAII).
#pragma once

#include <bilevel/error.hpp>
#include <bilevel/executor.hpp>
#include <bilevel/types.hpp>

#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace bilevel {

/// A rows x cols column-major matrix owned on an executor. Moves, never copies implicitly.
template <typename T>
class Array {
 public:
  Array() = default;
  /// Where the values live: the executor's memory, or host memory its kernels read in place
  /// (Executor::allocate_mapped; data larger than the device).
  enum class Residence { executor, host_mapped };

  Array(std::shared_ptr<Executor> exec, index_t rows, index_t cols = 1,
        Residence residence = Residence::executor)
      : exec_(std::move(exec)), rows_(rows), cols_(cols), mapped_(residence == Residence::host_mapped) {
    BILEVEL_EXPECTS(exec_ != nullptr, "Array needs an executor");
    BILEVEL_EXPECTS(rows >= 0 && cols >= 0,
                    "Array shape must be non-negative, got " << rows << " x " << cols);
    // rows * cols * sizeof(T) must not wrap
    checked_mul(checked_mul(rows, cols, "Array of " + std::to_string(rows) + " x " +
                                            std::to_string(cols) + " values"),
                static_cast<index_t>(sizeof(T)), "Array bytes");
    if (size() > 0 && mapped_) {
      data_ = static_cast<T*>(exec_->allocate_mapped(bytes()));
    } else if (size() > 0) {
      data_ = static_cast<T*>(exec_->allocate(bytes()));
      exec_->note_allocation(static_cast<long long>(bytes()));
    }
  }
  /// Uploads host values (size rows * cols, column-major).
  Array(std::shared_ptr<Executor> exec, index_t rows, index_t cols, const std::vector<T>& host)
      : Array(std::move(exec), rows, cols) {
    BILEVEL_EXPECTS(static_cast<index_t>(host.size()) == size(),
                    "Array upload: expected " << size() << " values, got " << host.size());
    upload(host);
  }
  ~Array() { reset(); }
  Array(Array&& o) noexcept { swap(o); }
  Array& operator=(Array&& o) noexcept {
    if (this != &o) {
      reset();
      swap(o);
    }
    return *this;
  }
  Array(const Array&) = delete;
  Array& operator=(const Array&) = delete;

  T* data() { return data_; }
  const T* data() const { return data_; }
  index_t rows() const { return rows_; }
  index_t cols() const { return cols_; }
  index_t size() const { return rows_ * cols_; }
  std::size_t bytes() const { return static_cast<std::size_t>(size()) * sizeof(T); }
  Executor& executor() const { return *exec_; }
  bool host_mapped() const { return mapped_; }

  MatrixView<T> view() { return MatrixView<T>(data_, rows_, cols_); }
  ConstMatrixView<T> view() const { return ConstMatrixView<T>(data_, rows_, cols_); }
  ConstMatrixView<T> cview() const { return view(); }

  void upload(const std::vector<T>& host) {
    BILEVEL_EXPECTS(static_cast<index_t>(host.size()) == size(),
                    "Array upload: expected " << size() << " values, got " << host.size());
    if (size() > 0) exec_->copy_from_host(data_, host.data(), bytes());
  }
  std::vector<T> to_host() const {
    std::vector<T> host(static_cast<std::size_t>(size()));
    if (size() > 0) exec_->copy_to_host(host.data(), data_, bytes());
    return host;
  }

 private:
  void reset() noexcept {
    if (data_ != nullptr && mapped_) {
      exec_->deallocate_mapped(data_);
    } else if (data_ != nullptr) {
      exec_->deallocate(data_);
      exec_->note_allocation(-static_cast<long long>(bytes()));
    }
    data_ = nullptr;
    rows_ = cols_ = 0;
  }
  void swap(Array& o) noexcept {
    std::swap(exec_, o.exec_);
    std::swap(data_, o.data_);
    std::swap(rows_, o.rows_);
    std::swap(cols_, o.cols_);
    std::swap(mapped_, o.mapped_);
  }

  std::shared_ptr<Executor> exec_;
  T* data_ = nullptr;
  index_t rows_ = 0;
  index_t cols_ = 0;
  bool mapped_ = false;
};

/// `count` values in host memory that an executor can copy into asynchronously (page-locked
/// on CUDA), for results read back while the device keeps working.
template <typename T>
class HostBuffer {
 public:
  HostBuffer() = default;
  HostBuffer(std::shared_ptr<Executor> exec, index_t count)
      : exec_(std::move(exec)), count_(count) {
    BILEVEL_EXPECTS(exec_ != nullptr && count >= 0, "HostBuffer needs an executor and count >= 0");
    if (count_ > 0) data_ = static_cast<T*>(exec_->allocate_host(bytes()));
  }
  ~HostBuffer() {
    if (data_ != nullptr) exec_->deallocate_host(data_);
  }
  HostBuffer(HostBuffer&& o) noexcept { swap(o); }
  HostBuffer& operator=(HostBuffer&& o) noexcept {
    HostBuffer(std::move(o)).swap(*this);
    return *this;
  }
  HostBuffer(const HostBuffer&) = delete;
  HostBuffer& operator=(const HostBuffer&) = delete;

  T* data() { return data_; }
  const T* data() const { return data_; }
  index_t size() const { return count_; }
  std::size_t bytes() const { return static_cast<std::size_t>(count_) * sizeof(T); }
  /// Enqueues the copy of `src` (size() values on the executor) into this buffer.
  void copy_async_from(const T* src) {
    if (count_ > 0) exec_->copy_to_host_async(data_, src, bytes());
  }

 private:
  void swap(HostBuffer& o) noexcept {
    std::swap(exec_, o.exec_);
    std::swap(data_, o.data_);
    std::swap(count_, o.count_);
  }
  std::shared_ptr<Executor> exec_;
  T* data_ = nullptr;
  index_t count_ = 0;
};

}  // namespace bilevel
