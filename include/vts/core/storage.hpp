#pragma once
// Reference-counted storage. Memory comes from the device's allocator, found by
// argument-dependent lookup on the device tag (`allocate(Cpu{}, bytes)`), so a tensor type never
// names a backend.
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <new>
#include <vector>

#include "vts/core/device.hpp"
#include "vts/core/error.hpp"

namespace vts::cpu {

// A training step allocates the same activation sizes every iteration; handing freed blocks back
// by exact size avoids the page faults a fresh mmap'd block costs on each step. One per process,
// shared by every thread (a block freed on one thread is handed out on another): every member that
// touches the cache takes the lock.
class CachingHostAllocator {
 public:
  static CachingHostAllocator& instance() {
    static CachingHostAllocator* a = new CachingHostAllocator();  // outlives static tensors
    return *a;
  }
  void* allocate(size_t bytes) {
    bytes = round_up(bytes);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      auto it = free_.find(bytes);
      if (it != free_.end() && !it->second.empty()) {
        void* p = it->second.back();
        it->second.pop_back();
        cached_bytes_ -= bytes;
        return p;
      }
    }
    void* p = std::aligned_alloc(kAlignment, bytes);
    if (!p) throw std::bad_alloc();
    return p;
  }
  void deallocate(void* p, size_t bytes) {
    if (!p) return;
    bytes = round_up(bytes);
    std::lock_guard<std::mutex> lock(mutex_);
    if (cached_bytes_ + bytes > kMaxCachedBytes) {
      std::free(p);
      return;
    }
    free_[bytes].push_back(p);
    cached_bytes_ += bytes;
  }
  void release_cached() {
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto& [size, blocks] : free_)
      for (void* p : blocks) std::free(p);
    free_.clear();
    cached_bytes_ = 0;
  }
  size_t cached_bytes() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return cached_bytes_;
  }

  static constexpr size_t kAlignment = 64;

 private:
  static size_t round_up(size_t b) { return b == 0 ? kAlignment : (b + kAlignment - 1) / kAlignment * kAlignment; }
  static constexpr size_t kMaxCachedBytes = size_t(8) << 30;
  mutable std::mutex mutex_;
  std::map<size_t, std::vector<void*>> free_;
  size_t cached_bytes_ = 0;
};

inline void* allocate(Device, size_t bytes) { return CachingHostAllocator::instance().allocate(bytes); }
inline void deallocate(Device, void* p, size_t bytes) { CachingHostAllocator::instance().deallocate(p, bytes); }
inline void empty_cache() { CachingHostAllocator::instance().release_cached(); }

}  // namespace vts::cpu

namespace vts {

template <class D>
class Storage {
 public:
  explicit Storage(size_t bytes) : bytes_(bytes), data_(allocate(D{}, bytes)) {}
  ~Storage() { deallocate(D{}, data_, bytes_); }
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  void* data() const { return data_; }
  size_t bytes() const { return bytes_; }

  // Counts the in-place writes made through the library (Tensor::fill_, copy_, index_copy_, the
  // initialisers, optimizer steps), for every view of this storage at once: a tensor kept for a
  // backward pass records the count, and a write after that is caught there (autograd's Saved).
  // Atomic, so threads that write disjoint parts of one tensor do not race on the count.
  uint64_t version() const { return version_.load(std::memory_order_relaxed); }
  void bump_version() { version_.fetch_add(1, std::memory_order_relaxed); }

 private:
  size_t bytes_;
  void* data_;
  std::atomic<uint64_t> version_{0};
};

}  // namespace vts
