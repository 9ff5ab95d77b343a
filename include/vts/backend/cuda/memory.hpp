#pragma once
// Device memory for Tensor<T, vts::Cuda>: the hooks Storage and Tensor find by argument-dependent
// lookup (allocate, deallocate, fill, copy_strided, copy_to_host, copy_from_host), a caching
// allocator behind them, and pinned host buffers for the data loader.
//
// Caching allocator. A training step asks for the same activation sizes every iteration;
// cudaMalloc/cudaFree cost tens of microseconds each and cudaFree synchronises the device, so
// freed blocks are kept in free lists by size class and handed out again:
//   * sizes up to 1 MiB round up to a multiple of 512 B;
//   * larger sizes round up to one of four classes per power of two (1, 1.25, 1.5, 1.75 · 2^k),
//     and above 16 MiB also to a multiple of 2 MiB: at most 25% of a block is padding, and a
//     request of a slightly different size still finds the block of its class.
// Reuse is stream-ordered on the single vts::cuda stream: a block freed after queueing kernels
// that use it can be handed to the next allocation at once, because everything that next
// allocation's user queues runs after those kernels. When cudaMalloc fails, the cache is released
// and the allocation retried once before a CudaError reports the request and the cache state.
// While a CUDA graph is captured (graph.hpp), allocations come from that graph's pool instead.
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <vector>

#include "vts/backend/cuda/runtime.hpp"
#include "vts/core/shape.hpp"

namespace vts::cuda {

void* allocate(Device, size_t bytes);
void deallocate(Device, void* p, size_t bytes);

struct MemoryStats {
  size_t allocated_bytes = 0;       // in blocks handed out now (class sizes)
  size_t peak_allocated_bytes = 0;
  size_t cached_bytes = 0;          // in free lists
  size_t device_malloc_calls = 0;   // cudaMalloc calls so far (the cache avoids most)
  size_t cache_hits = 0;            // allocations served from a free list
  size_t graph_pool_bytes = 0;      // in free lists of live graphs' pools (graph.hpp), not given out elsewhere
};
MemoryStats memory_stats();
namespace detail {
// The memory of captured CUDA graphs (graph.hpp). While a pool is set (during a capture), every
// allocation comes from it, and a block it handed out returns to it when freed — even after the
// capture — because the graph's replays keep writing it: nothing else may be given the block while
// the graph lives. When the last GraphPool handle goes, its blocks join the ordinary cache.
struct PoolBlocks {
  std::map<size_t, std::vector<void*>> free;
  size_t free_bytes = 0;
  bool retired = false;
};
class GraphPool {
 public:
  GraphPool();
  ~GraphPool();
  GraphPool(const GraphPool&) = delete;
  GraphPool& operator=(const GraphPool&) = delete;

 private:
  friend void set_capture_pool(const GraphPool*);
  std::shared_ptr<PoolBlocks> blocks_;
};
// Allocations come from `pool` until this is called with null.
void set_capture_pool(const GraphPool* pool);
}  // namespace detail

// Frees every cached block back to the driver (synchronises the stream first).
void empty_cache();
// The size class a request of `bytes` is rounded to (exposed for tests and for reasoning).
size_t allocation_size_class(size_t bytes);

// ---- bulk copies (all synchronous with respect to the host) ---------------------------------
// Device → host: waits for the stream, so the host buffer holds the data on return.
void copy_to_host(Device, void* dst, const void* src, size_t bytes);
// Host → device: the source may be reused as soon as the call returns.
void copy_from_host(Device, void* dst, const void* src, size_t bytes);
// Device → device, queued on the stream.
void copy_device(Device, void* dst, const void* src, size_t bytes);

// ---- fill and strided copy (element size 1, 2, 4, 8 or 16 bytes) ------------------------------
void fill_bytes(void* dst, int64_t n, const void* value, size_t elem_size);
// dst[i] = src[i] over `dims`, element strides per operand; up to 8 dimensions after merging.
void copy_strided_bytes(const std::vector<int64_t>& dims, const void* src, const int64_t* src_strides, void* dst,
                        const int64_t* dst_strides, size_t elem_size);

template <class T>
void fill(Device, T* dst, int64_t n, T value) {
  fill_bytes(dst, n, &value, sizeof(T));
}

template <class T>
void copy_strided(Device, const Shape& shape, const T* src, const int64_t* src_strides, T* dst,
                  const int64_t* dst_strides) {
  copy_strided_bytes(shape.dims(), src, src_strides, dst, dst_strides, sizeof(T));
}

// ---- pinned (page-locked) host memory ---------------------------------------------------------
// Host → device copies from pinned memory run at full PCIe/NVLink speed and can overlap kernels;
// the loader fills pinned batches and hands them to copy_from_host_async. Cached by exact size.
void* allocate_pinned(size_t bytes);
void deallocate_pinned(void* p, size_t bytes);
// Queues the copy and returns; `src` must be pinned and must stay untouched until the stream has
// passed this point (synchronize(), or a later copy_to_host).
void copy_from_host_async(Device, void* dst, const void* src, size_t bytes);

namespace detail {
// The RAII owner of one buffer, for both kinds below; Memory says where it comes from and goes back to.
template <class Memory>
class OwnedBuffer {
 public:
  OwnedBuffer() = default;
  explicit OwnedBuffer(size_t bytes) : bytes_(bytes), data_(Memory::allocate(bytes)) {}
  ~OwnedBuffer() { reset(); }
  OwnedBuffer(const OwnedBuffer&) = delete;
  OwnedBuffer& operator=(const OwnedBuffer&) = delete;
  OwnedBuffer(OwnedBuffer&& o) noexcept : bytes_(o.bytes_), data_(o.data_) {
    o.data_ = nullptr;
    o.bytes_ = 0;
  }
  OwnedBuffer& operator=(OwnedBuffer&& o) noexcept {
    if (this != &o) {
      reset();
      bytes_ = o.bytes_;
      data_ = o.data_;
      o.data_ = nullptr;
      o.bytes_ = 0;
    }
    return *this;
  }
  void* data() const { return data_; }
  size_t bytes() const { return bytes_; }
  template <class T>
  T* as() const {
    return static_cast<T*>(data_);
  }
  void reset() {
    if (data_) Memory::release(data_, bytes_);
    data_ = nullptr;
    bytes_ = 0;
  }

 private:
  size_t bytes_ = 0;
  void* data_ = nullptr;
};
struct PinnedMemory {
  static void* allocate(size_t bytes) { return allocate_pinned(bytes); }
  static void release(void* p, size_t bytes) { deallocate_pinned(p, bytes); }
};
struct CachedDeviceMemory {
  static void* allocate(size_t bytes) { return cuda::allocate(Device{}, bytes); }
  static void release(void* p, size_t bytes) { deallocate(Device{}, p, bytes); }
};
}  // namespace detail

// RAII owner of one pinned buffer.
using PinnedBuffer = detail::OwnedBuffer<detail::PinnedMemory>;
// RAII device buffer outside any tensor (scratch space, benchmark buffers), from the same cache.
using DeviceBuffer = detail::OwnedBuffer<detail::CachedDeviceMemory>;

}  // namespace vts::cuda
