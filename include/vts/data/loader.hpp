#pragma once
// Mini-batches over a Dataset, loaded ahead by worker threads.
//
// Determinism: the order of an epoch is a permutation drawn from (seed, epoch), batch b holds
// positions [b*B, (b+1)*B) of that order, and item i's augmentation generator is keyed by
// (seed, epoch, i). Workers only decide *when* a batch is built, never what goes in it, and
// batches are handed out in order; so the batches are the same for any number of workers and
// any thread timing.
//
// Threads: workers claim batch numbers and build whole batches; at most `prefetch` batches are
// built or waiting beyond the one the consumer is using (a bounded queue, so memory stays
// bounded when training is slower than loading). An exception in a worker reaches the consumer
// from next(), for the batch where it happened, with its type and message. The destructor and
// start_epoch() stop the workers and join them.
#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <exception>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "vts/data/dataset.hpp"

namespace vts::data {

struct Batch {
  std::vector<float> images;     // size x spec.channels x spec.height x spec.width
  std::vector<float> labels;     // size x num_classes
  std::vector<int64_t> indices;  // the dataset index of each item (memory banks use it)
  int64_t size = 0;
  ImageSpec spec;
  int num_classes = 0;
  int64_t number = 0;  // position of this batch in its epoch
};

struct LoaderOptions {
  int64_t batch_size = 32;
  bool shuffle = false;    // new permutation each epoch (training); off = dataset order
  bool drop_last = false;  // the reference keeps the last partial batch
  int num_workers = 2;     // 0 = build each batch on the caller's thread inside next()
  int prefetch = 0;        // batches built ahead (at least num_workers); 0 = 2 * num_workers
  uint64_t seed = 0;
};

class Loader {
 public:
  explicit Loader(std::shared_ptr<const Dataset> dataset, LoaderOptions options = {})
      : ds_(std::move(dataset)), opt_(options) {
    VTS_CHECK(ds_ != nullptr, "Loader: expected a dataset, found null");
    VTS_CHECK(opt_.batch_size > 0, "Loader: expected batch_size > 0, found ", opt_.batch_size);
    VTS_CHECK(opt_.num_workers >= 0, "Loader: expected num_workers >= 0, found ", opt_.num_workers);
    VTS_CHECK(opt_.prefetch >= 0, "Loader: expected prefetch >= 0, found ", opt_.prefetch);
    // At least one batch per worker may be in flight, or workers would idle by construction.
    prefetch_ = std::max(opt_.prefetch ? opt_.prefetch : 2 * opt_.num_workers, opt_.num_workers);
    spec_ = ds_->spec();
    classes_ = ds_->num_classes();
  }
  ~Loader() { stop(); }
  Loader(const Loader&) = delete;
  Loader& operator=(const Loader&) = delete;

  const Dataset& dataset() const { return *ds_; }
  const LoaderOptions& options() const { return opt_; }
  int64_t num_batches() const {
    const int64_t n = ds_->size();
    if (opt_.drop_last || n == 0) return n / opt_.batch_size;
    // Rounded up without n + batch_size - 1, which overflows for a "whole dataset" batch size
    // such as INT64_MAX and made the epoch empty.
    return (n - 1) / opt_.batch_size + 1;
  }

  // The item order of an epoch: a seeded permutation with shuffle, else 0..size-1.
  std::vector<int64_t> order(int64_t epoch) const {
    if (!opt_.shuffle) {
      std::vector<int64_t> o(static_cast<size_t>(ds_->size()));
      for (size_t i = 0; i < o.size(); ++i) o[i] = static_cast<int64_t>(i);
      return o;
    }
    Generator g(derive_seed(opt_.seed, Stream::shuffle, static_cast<uint64_t>(epoch)));
    return g.permutation(ds_->size());
  }

  // Begins epoch `epoch` (any integer; the reference counts from 0), abandoning the rest of the
  // current one, and starts the workers. `first_batch`: the batches before it are not built — what a
  // run stopped inside an epoch continues from, with the batches after it those of an unbroken epoch.
  void start_epoch(int64_t epoch, int64_t first_batch = 0) {
    VTS_CHECK(first_batch >= 0 && first_batch <= num_batches(),
              "Loader::start_epoch: expected a first batch from 0 to ", num_batches(), " (the epoch's batches), found ",
              first_batch);
    stop();
    epoch_ = epoch;
    order_ = order(epoch);
    nb_ = num_batches();
    claimed_ = delivered_ = first_batch;
    error_ = nullptr;
    stop_ = false;
    slots_.assign(static_cast<size_t>(std::max(prefetch_, 1)), Slot{});
    started_ = true;
    for (int w = 0; w < opt_.num_workers; ++w) threads_.emplace_back([this] { worker_main(); });
  }

  // Moves the next batch of the epoch into `batch` (its old buffers are recycled, so passing the
  // same Batch each time avoids reallocating). Returns false once the epoch is exhausted.
  // Rethrows a worker's exception; after that the epoch stays failed until start_epoch().
  bool next(Batch& batch) {
    VTS_CHECK(started_, "Loader::next: expected start_epoch() to have been called first");
    if (error_) std::rethrow_exception(error_);
    if (opt_.num_workers == 0) {
      if (delivered_ >= nb_) return false;
      try {
        fill(delivered_, batch);
      } catch (...) {
        error_ = std::current_exception();
        throw;
      }
      ++delivered_;
      return true;
    }
    std::unique_lock lk(mu_);
    if (delivered_ >= nb_) return false;
    Slot& slot = slots_[static_cast<size_t>(delivered_ % prefetch_)];
    ready_cv_.wait(lk, [&] { return slot.ready; });
    Batch got = std::move(slot.batch);
    std::exception_ptr err = slot.error;
    slot = Slot{};
    ++delivered_;
    if (err) {
      error_ = err;
      lk.unlock();
      stop();
      std::rethrow_exception(err);
    }
    std::swap(batch, got);
    if (got.images.capacity() != 0) free_.push_back(std::move(got));
    lk.unlock();
    work_cv_.notify_all();
    return true;
  }

  int64_t epoch() const { return epoch_; }

 private:
  struct Slot {
    bool ready = false;
    Batch batch;
    std::exception_ptr error;
  };

  // Builds batch b of the current epoch into out. Called without the lock: it reads only state
  // that start_epoch() fixes before the workers start.
  void fill(int64_t b, Batch& out) const {
    const int64_t n = static_cast<int64_t>(order_.size());
    const int64_t begin = b * opt_.batch_size, end = std::min(begin + opt_.batch_size, n);
    const int64_t count = end - begin;
    const int64_t numel = spec_.numel();
    out.size = count;
    out.spec = spec_;
    out.num_classes = classes_;
    out.number = b;
    out.images.resize(static_cast<size_t>(count * numel));
    out.labels.resize(static_cast<size_t>(count * classes_));
    out.indices.resize(static_cast<size_t>(count));
    for (int64_t j = 0; j < count; ++j) {
      if (stop_.load(std::memory_order_relaxed)) return;  // being cancelled: the batch is discarded
      const int64_t idx = order_[static_cast<size_t>(begin + j)];
      Generator rng(derive_seed(opt_.seed, Stream::augment, static_cast<uint64_t>(epoch_), static_cast<uint64_t>(idx)));
      ds_->get(idx, out.images.data() + j * numel, out.labels.data() + j * classes_, rng);
      out.indices[static_cast<size_t>(j)] = idx;
    }
  }

  void worker_main() {
    std::unique_lock lk(mu_);
    for (;;) {
      work_cv_.wait(lk, [&] { return stop_ || claimed_ >= nb_ || claimed_ < delivered_ + prefetch_; });
      if (stop_ || claimed_ >= nb_) return;
      const int64_t b = claimed_++;
      Batch buf;
      if (!free_.empty()) {
        buf = std::move(free_.back());
        free_.pop_back();
      }
      lk.unlock();
      std::exception_ptr err;
      try {
        fill(b, buf);
      } catch (...) {
        err = std::current_exception();
      }
      lk.lock();
      Slot& slot = slots_[static_cast<size_t>(b % prefetch_)];
      slot.batch = std::move(buf);
      slot.error = err;
      slot.ready = true;
      ready_cv_.notify_all();
    }
  }

  // Cancels the epoch in progress and joins the workers. Safe to call repeatedly.
  void stop() {
    {
      std::lock_guard lk(mu_);
      stop_ = true;
    }
    work_cv_.notify_all();
    for (auto& t : threads_) t.join();
    threads_.clear();
    for (auto& s : slots_)
      if (s.ready && s.batch.images.capacity() != 0) free_.push_back(std::move(s.batch));
    slots_.clear();
  }

  std::shared_ptr<const Dataset> ds_;
  LoaderOptions opt_;
  int prefetch_ = 0;
  ImageSpec spec_;
  int classes_ = 0;

  // Fixed by start_epoch() while no worker runs.
  int64_t epoch_ = 0;
  std::vector<int64_t> order_;
  int64_t nb_ = 0;
  bool started_ = false;
  std::exception_ptr error_;  // consumer thread only

  std::mutex mu_;
  std::condition_variable work_cv_, ready_cv_;
  std::atomic<bool> stop_{false};
  int64_t claimed_ = 0, delivered_ = 0;  // guarded by mu_ (delivered_ is the consumer's cursor)
  std::vector<Slot> slots_;              // ring of prefetch_ entries, batch b in b % prefetch_
  std::vector<Batch> free_;              // recycled buffers
  std::vector<std::thread> threads_;
};

}  // namespace vts::data
