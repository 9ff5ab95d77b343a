// Device memory: the caching allocator, pinned host buffers, copies, fill and strided copy.
// Design notes are in include/vts/backend/cuda/memory.hpp.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <sstream>
#include <unordered_map>
#include <vector>

#include "common/check.cuh"
#include "common/types.cuh"
#include "vts/backend/cuda/memory.hpp"
#include "vts/backend/cuda/profile.hpp"

namespace vts::cuda {

namespace {

size_t round_up(size_t x, size_t m) { return (x + m - 1) / m * m; }

class DeviceCache {
 public:
  static DeviceCache& instance() {
    static DeviceCache* c = new DeviceCache();  // never destroyed: static tensors free into it late
    return *c;
  }

  void* allocate(size_t bytes) {
    const size_t cls = allocation_size_class(bytes);
    std::shared_ptr<detail::PoolBlocks> pool;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      pool = capture_pool_;
      auto& lists = pool ? pool->free : free_;
      auto it = lists.find(cls);
      if (it != lists.end() && !it->second.empty()) {
        void* p = it->second.back();
        if (pool) owner_[p] = pool;  // first: if the map cannot grow, the block stays in the list
        it->second.pop_back();
        if (pool) {
          pool->free_bytes -= cls;
          stats_.graph_pool_bytes -= cls;
        } else {
          stats_.cached_bytes -= cls;
        }
        stats_.cache_hits++;
        note_allocated(cls);
        return p;
      }
    }
    void* p = nullptr;
    cudaError_t e = cudaMalloc(&p, cls);
    if (e == cudaErrorMemoryAllocation && !pool) {
      // Out of memory: give the cache back to the driver and try once more. (Not while a graph is
      // being captured: releasing synchronises the stream, which a capture forbids.)
      cudaGetLastError();
      release_cached();
      e = cudaMalloc(&p, cls);
    }
    if (e != cudaSuccess) {
      cudaGetLastError();
      std::ostringstream what;
      what << "cudaMalloc(" << cls << " bytes for a request of " << bytes
           << (pool ? ", for a graph being captured" : "") << ")";
      {
        std::lock_guard<std::mutex> lock(mutex_);
        what << " [allocated " << stats_.allocated_bytes << " B, cached " << stats_.cached_bytes
             << " B, in graph pools " << stats_.graph_pool_bytes << " B]";
      }
      detail::throw_cuda_error("CUDA", static_cast<int>(e), cudaGetErrorString(e), what.str().c_str(), __FILE__,
                               __LINE__);
    }
    std::lock_guard<std::mutex> lock(mutex_);
    stats_.device_malloc_calls++;
    note_allocated(cls);
    if (pool) {
      try {
        owner_[p] = pool;
      } catch (...) {
        stats_.allocated_bytes -= cls;
        VTS_CUDA_CHECK_NOTHROW(cudaFree(p));
        throw;
      }
    }
    return p;
  }

  void deallocate(void* p, size_t bytes) noexcept {
    if (!p) return;
    const size_t cls = allocation_size_class(bytes);
    std::lock_guard<std::mutex> lock(mutex_);
    stats_.allocated_bytes -= cls;
    // A block a graph's capture handed out goes back to that graph's pool: the graph's replays still
    // write it, so nothing outside the graph may be given it while the graph lives.
    if (!owner_.empty()) {
      const auto it = owner_.find(p);
      if (it != owner_.end()) {
        const std::shared_ptr<detail::PoolBlocks> pool = std::move(it->second);
        owner_.erase(it);
        if (!pool->retired) {
          try {
            pool->free[cls].push_back(p);
            pool->free_bytes += cls;
            stats_.graph_pool_bytes += cls;
            return;
          } catch (...) {
            VTS_CUDA_CHECK_NOTHROW(cudaFree(p));
            return;
          }
        }
      }
    }
    // Stream-ordered reuse: every user of p queued its work on the one vts::cuda stream, so the
    // next user (also on that stream) runs after it. No event or synchronisation is needed.
    try {
      free_[cls].push_back(p);
    } catch (...) {
      VTS_CUDA_CHECK_NOTHROW(cudaFree(p));  // the free list could not grow: return the block
      return;
    }
    stats_.cached_bytes += cls;
  }

  void release_cached() {
    // cudaFree would synchronise the device anyway; doing it first makes the order explicit.
    if (available()) VTS_CUDA_CHECK_NOTHROW(cudaStreamSynchronize(current_stream()));
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto& [size, blocks] : free_)
      for (void* p : blocks) VTS_CUDA_CHECK_NOTHROW(cudaFree(p));
    free_.clear();
    stats_.cached_bytes = 0;
  }

  // Graph pools (graph.hpp). Only one capture at a time: vts::cuda has one stream.
  void set_capture_pool(std::shared_ptr<detail::PoolBlocks> pool) {
    std::lock_guard<std::mutex> lock(mutex_);
    capture_pool_ = std::move(pool);
  }
  // The graph is gone: its pool's free blocks join the ordinary cache, and blocks still held by
  // tensors go there when freed. Stream order keeps this safe with a replay still queued.
  void retire(detail::PoolBlocks& pool) noexcept {
    std::lock_guard<std::mutex> lock(mutex_);
    pool.retired = true;
    for (auto& [cls, blocks] : pool.free) {
      for (void* p : blocks) {
        try {
          free_[cls].push_back(p);
          stats_.cached_bytes += cls;
        } catch (...) {
          VTS_CUDA_CHECK_NOTHROW(cudaFree(p));
        }
      }
    }
    stats_.graph_pool_bytes -= pool.free_bytes;
    pool.free.clear();
    pool.free_bytes = 0;
  }

  MemoryStats stats() {
    std::lock_guard<std::mutex> lock(mutex_);
    return stats_;
  }

 private:
  void note_allocated(size_t cls) {
    stats_.allocated_bytes += cls;
    stats_.peak_allocated_bytes = std::max(stats_.peak_allocated_bytes, stats_.allocated_bytes);
  }
  std::mutex mutex_;
  std::map<size_t, std::vector<void*>> free_;
  MemoryStats stats_;
  std::shared_ptr<detail::PoolBlocks> capture_pool_;  // set while a graph is being captured
  std::unordered_map<void*, std::shared_ptr<detail::PoolBlocks>> owner_;  // blocks out of graph pools
};

class PinnedCache {
 public:
  static PinnedCache& instance() {
    static PinnedCache* c = new PinnedCache();
    return *c;
  }
  void* allocate(size_t bytes) {
    bytes = std::max<size_t>(bytes, 1);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      auto it = free_.find(bytes);
      if (it != free_.end() && !it->second.empty()) {
        void* p = it->second.back();
        it->second.pop_back();
        return p;
      }
    }
    void* p = nullptr;
    VTS_CUDA_CHECK(cudaHostAlloc(&p, bytes, cudaHostAllocDefault));
    return p;
  }
  void deallocate(void* p, size_t bytes) noexcept {
    if (!p) return;
    bytes = std::max<size_t>(bytes, 1);
    std::lock_guard<std::mutex> lock(mutex_);
    try {
      free_[bytes].push_back(p);
    } catch (...) {
      VTS_CUDA_CHECK_NOTHROW(cudaFreeHost(p));
    }
  }

 private:
  std::mutex mutex_;
  std::map<size_t, std::vector<void*>> free_;
};

}  // namespace

size_t allocation_size_class(size_t bytes) {
  if (bytes == 0) bytes = 1;
  constexpr size_t kSmall = size_t(1) << 20;
  if (bytes <= kSmall) return round_up(bytes, 512);
  size_t pow2 = kSmall;
  while (pow2 * 2 <= bytes) pow2 *= 2;  // pow2 ≤ bytes < 2·pow2
  size_t cls = round_up(bytes, pow2 / 4);
  if (cls > (size_t(16) << 20)) cls = round_up(cls, size_t(2) << 20);
  return cls;
}

void* allocate(Device, size_t bytes) { return DeviceCache::instance().allocate(bytes); }

namespace detail {
GraphPool::GraphPool() : blocks_(std::make_shared<PoolBlocks>()) {}
GraphPool::~GraphPool() { DeviceCache::instance().retire(*blocks_); }
void set_capture_pool(const GraphPool* pool) {
  DeviceCache::instance().set_capture_pool(pool ? pool->blocks_ : nullptr);
}
}  // namespace detail
void deallocate(Device, void* p, size_t bytes) { DeviceCache::instance().deallocate(p, bytes); }
MemoryStats memory_stats() { return DeviceCache::instance().stats(); }
void empty_cache() { DeviceCache::instance().release_cached(); }

void* allocate_pinned(size_t bytes) { return PinnedCache::instance().allocate(bytes); }
void deallocate_pinned(void* p, size_t bytes) { PinnedCache::instance().deallocate(p, bytes); }

void copy_to_host(Device, void* dst, const void* src, size_t bytes) {
  if (bytes == 0) return;
  const cudaStream_t s = current_stream();
  VTS_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, s));
  VTS_CUDA_CHECK(cudaStreamSynchronize(s));
}

void copy_from_host(Device, void* dst, const void* src, size_t bytes) {
  if (bytes == 0) return;
  const cudaStream_t s = current_stream();
  VTS_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, s));
  // From pageable memory the call returns once the source is staged; from pinned memory it
  // returns at once, so wait: the contract is that `src` may be reused on return.
  VTS_CUDA_CHECK(cudaStreamSynchronize(s));
}

void copy_from_host_async(Device, void* dst, const void* src, size_t bytes) {
  if (bytes == 0) return;
  VTS_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, current_stream()));
  detail::profile_mark("memcpy H2D");
}

void copy_device(Device, void* dst, const void* src, size_t bytes) {
  if (bytes == 0 || dst == src) return;
  VTS_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, current_stream()));
  detail::profile_mark("memcpy D2D");
}

// ---- fill -------------------------------------------------------------------------------------

namespace {

// Element-typed fill for the head and tail that are not 16-byte aligned.
template <class E>
__global__ void fill_elements_kernel(E* __restrict__ dst, int64_t n, E value) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    dst[i] = value;
}

// The body as 16-byte stores of the value repeated (16 / elem_size times): one STG.128 per thread
// per iteration, as fast as the memory can take writes.
__global__ void fill_pattern_kernel(uint4* __restrict__ dst, int64_t n, uint4 pattern) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    dst[i] = pattern;
}

template <class E>
void fill_typed(E* dst, int64_t n, const void* value) {
  E v;
  std::memcpy(&v, value, sizeof(E));
  const cudaStream_t s = current_stream();
  constexpr int kThreads = 256;
  // Head: elements up to the first 16-byte boundary (dst is at least element-aligned).
  int64_t head = 0;
  while (head < n && !detail::aligned16(dst + head)) ++head;
  if (head > 0) {
    fill_elements_kernel<E><<<1, kThreads, 0, s>>>(dst, head, v);
    VTS_CUDA_CHECK_LAUNCH("fill_elements_kernel");
  }
  const int64_t per_pack = 16 / static_cast<int64_t>(sizeof(E));
  const int64_t packs = (n - head) / per_pack;
  if (packs > 0) {
    uint4 pattern;
    E rep[16 / sizeof(E)];
    for (auto& r : rep) r = v;
    std::memcpy(&pattern, rep, 16);
    const unsigned grid = detail::grid_for(packs, kThreads, int64_t(device_info().sm_count) * 8);
    fill_pattern_kernel<<<grid, kThreads, 0, s>>>(reinterpret_cast<uint4*>(dst + head), packs, pattern);
    VTS_CUDA_CHECK_LAUNCH("fill_pattern_kernel");
  }
  const int64_t tail_start = head + packs * per_pack;
  if (tail_start < n) {
    fill_elements_kernel<E><<<1, kThreads, 0, s>>>(dst + tail_start, n - tail_start, v);
    VTS_CUDA_CHECK_LAUNCH("fill_elements_kernel");
  }
}

}  // namespace

void fill_bytes(void* dst, int64_t n, const void* value, size_t elem_size) {
  if (n <= 0) return;
  // All-zero bytes (0.0f, integer 0, bf16 +0): the driver's memset is the fastest fill.
  bool zero = true;
  for (size_t i = 0; i < elem_size; ++i) zero = zero && static_cast<const unsigned char*>(value)[i] == 0;
  if (zero) {
    VTS_CUDA_CHECK(cudaMemsetAsync(dst, 0, static_cast<size_t>(n) * elem_size, current_stream()));
    detail::profile_mark("memset");
    return;
  }
  switch (elem_size) {
    case 1: return fill_typed(static_cast<uint8_t*>(dst), n, value);
    case 2: return fill_typed(static_cast<uint16_t*>(dst), n, value);
    case 4: return fill_typed(static_cast<uint32_t*>(dst), n, value);
    case 8: return fill_typed(static_cast<uint64_t*>(dst), n, value);
    case 16: return fill_typed(static_cast<uint4*>(dst), n, value);
    default: throw Error(::vts::detail::concat("vts::cuda::fill: element size ", elem_size, " is not 1, 2, 4, 8 or 16"));
  }
}

// ---- strided copy -----------------------------------------------------------------------------

namespace {

constexpr int kMaxDims = 8;

struct StridedArgs {
  int ndim;
  int64_t sizes[kMaxDims];  // innermost last
  int64_t src[kMaxDims];
  int64_t dst[kMaxDims];
};

// One element per thread (grid-stride). The innermost dimension varies fastest across threads,
// so the side with unit inner stride is accessed coalesced. I is the index type: 32-bit whenever
// every index and offset fits, because the per-dimension division is the kernel's main cost and a
// 64-bit division is a long software sequence on the GPU (a 32-bit one a few instructions).
template <class E, class I>
__global__ void copy_strided_kernel(const E* __restrict__ src, E* __restrict__ dst, I n, StridedArgs a) {
  for (I i = blockIdx.x * I(blockDim.x) + threadIdx.x; i < n; i += I(gridDim.x) * blockDim.x) {
    I r = i, so = 0, dof = 0;
#pragma unroll
    for (int d = kMaxDims - 1; d >= 0; --d) {
      if (d < a.ndim) {
        const I size = static_cast<I>(a.sizes[d]);
        const I idx = r % size;
        r /= size;
        so += idx * static_cast<I>(a.src[d]);
        dof += idx * static_cast<I>(a.dst[d]);
      }
    }
    dst[dof] = src[so];
  }
}

// Whether every element index and every offset either side reaches fits in int32. n is held to
// half the range so that the grid-stride loop's last step (i + grid size, at most ~2^20 past n)
// cannot overflow.
bool fits_int32(const StridedArgs& a, int64_t n) {
  constexpr int64_t kMax = std::numeric_limits<int32_t>::max();
  if (n > kMax / 2) return false;
  int64_t lo_s = 0, hi_s = 0, lo_d = 0, hi_d = 0;
  for (int d = 0; d < a.ndim; ++d) {
    const int64_t span = a.sizes[d] - 1;
    (a.src[d] < 0 ? lo_s : hi_s) += span * a.src[d];
    (a.dst[d] < 0 ? lo_d : hi_d) += span * a.dst[d];
  }
  return hi_s <= kMax && hi_d <= kMax && lo_s >= -kMax && lo_d >= -kMax;
}

template <class E>
void copy_strided_typed(const StridedArgs& a, int64_t n, const void* src, void* dst) {
  constexpr int kThreads = 256;
  const unsigned grid = detail::grid_for(n, kThreads, int64_t(device_info().sm_count) * 16);
  if (fits_int32(a, n))
    copy_strided_kernel<E, int32_t><<<grid, kThreads, 0, current_stream()>>>(
        static_cast<const E*>(src), static_cast<E*>(dst), static_cast<int32_t>(n), a);
  else
    copy_strided_kernel<E, int64_t><<<grid, kThreads, 0, current_stream()>>>(static_cast<const E*>(src),
                                                                            static_cast<E*>(dst), n, a);
  VTS_CUDA_CHECK_LAUNCH("copy_strided_kernel");
}

}  // namespace

void copy_strided_bytes(const std::vector<int64_t>& dims, const void* src, const int64_t* src_strides, void* dst,
                        const int64_t* dst_strides, size_t elem_size) {
  int64_t n = 1;
  for (int64_t d : dims) n *= d;
  if (n == 0) return;
  // Drop size-1 dimensions and merge neighbours that are contiguous for both operands (the same
  // plan as the CPU's make_plan), so most copies reach the kernel with one or two dimensions.
  StridedArgs a{};
  a.ndim = 0;
  std::vector<int64_t> sz, ss, ds;
  for (size_t d = 0; d < dims.size(); ++d) {
    if (dims[d] == 1) continue;
    if (!sz.empty() && ss.back() == src_strides[d] * dims[d] && ds.back() == dst_strides[d] * dims[d]) {
      sz.back() *= dims[d];
      ss.back() = src_strides[d];
      ds.back() = dst_strides[d];
      continue;
    }
    sz.push_back(dims[d]);
    ss.push_back(src_strides[d]);
    ds.push_back(dst_strides[d]);
  }
  if (sz.empty()) {
    sz.push_back(1);
    ss.push_back(1);
    ds.push_back(1);
  }
  if (sz.size() == 1 && ss[0] == 1 && ds[0] == 1) {
    VTS_CUDA_CHECK(cudaMemcpyAsync(dst, src, static_cast<size_t>(n) * elem_size, cudaMemcpyDeviceToDevice,
                                   current_stream()));
    detail::profile_mark("memcpy D2D");
    return;
  }
  // Widen the element while the innermost dimension is contiguous on both sides: two neighbours
  // become one element of twice the size (up to 16 bytes), when its length, every other stride and
  // both addresses allow. The im2col of a ViT's patches (runs of 16 bf16) moves 16-byte elements,
  // and each thread's index arithmetic covers 8 values instead of one.
  while (elem_size < 16 && ss.back() == 1 && ds.back() == 1 && sz.back() % 2 == 0 &&
         reinterpret_cast<uintptr_t>(src) % (2 * elem_size) == 0 &&
         reinterpret_cast<uintptr_t>(dst) % (2 * elem_size) == 0) {
    bool even = true;
    for (size_t d = 0; d + 1 < sz.size(); ++d) even = even && ss[d] % 2 == 0 && ds[d] % 2 == 0;
    if (!even) break;
    for (size_t d = 0; d + 1 < sz.size(); ++d) {
      ss[d] /= 2;
      ds[d] /= 2;
    }
    sz.back() /= 2;
    elem_size *= 2;
    n /= 2;
  }
  VTS_CHECK(sz.size() <= static_cast<size_t>(kMaxDims), "vts::cuda::copy_strided: ", sz.size(),
            " dimensions remain after merging; at most ", kMaxDims, " are supported");
  a.ndim = static_cast<int>(sz.size());
  for (int d = 0; d < a.ndim; ++d) {
    a.sizes[d] = sz[static_cast<size_t>(d)];
    a.src[d] = ss[static_cast<size_t>(d)];
    a.dst[d] = ds[static_cast<size_t>(d)];
  }
  switch (elem_size) {
    case 1: return copy_strided_typed<uint8_t>(a, n, src, dst);
    case 2: return copy_strided_typed<uint16_t>(a, n, src, dst);
    case 4: return copy_strided_typed<uint32_t>(a, n, src, dst);
    case 8: return copy_strided_typed<uint64_t>(a, n, src, dst);
    case 16: return copy_strided_typed<uint4>(a, n, src, dst);
    default:
      throw Error(::vts::detail::concat("vts::cuda::copy_strided: element size ", elem_size, " is not 1, 2, 4, 8 or 16"));
  }
}

}  // namespace vts::cuda
