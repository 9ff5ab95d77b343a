// Dropout masks from Philox4x32-10 (common/philox.cuh), the CPU's exact counter layout (see
// dropout.hpp): thread b computes block (first_block + b) and so elements 4b..4b+3. Ten rounds are
// ≈ 70 SASS instructions (sm_90; 20 of them IMAD.WIDE.U32) for 4 elements. The B/16 bf16 step's 28
// launches averaged 12.4 µs (H200, 2026-12-04 profile), about half the copy rate of their bytes,
// with every element read and written on its own; see QUADS below.
#include <cstdint>
#include <cstring>

#include "common/check.cuh"
#include "common/philox.cuh"
#include "common/types.cuh"
#include "vts/backend/cuda/dropout.hpp"

namespace vts::cuda {

namespace {

using detail::DevT;
using detail::from_f;
using detail::to_f;

// Four consecutive elements as one access: 16 bytes of fp32, 8 of bf16.
template <class T>
struct Quad;
template <>
struct Quad<float> {
  using type = float4;
};
template <>
struct Quad<__nv_bfloat16> {
  using type = uint2;
};
template <class T>
__device__ __forceinline__ void load4(const T* p, T (&v)[4]) {
  const typename Quad<T>::type q = *reinterpret_cast<const typename Quad<T>::type*>(p);
  memcpy(static_cast<void*>(v), &q, sizeof q);  // bf16 is a class with a private member: copy its bytes
}
template <class T>
__device__ __forceinline__ void store4(T* p, const T (&v)[4]) {
  typename Quad<T>::type q;
  memcpy(&q, v, sizeof q);
  *reinterpret_cast<typename Quad<T>::type*>(p) = q;
}

// APPLY = false: out = mask values; APPLY = true: out = x · mask; ADD (with APPLY): out = residual +
// x · mask, the product rounded to T first as the separate dropout would store it. A thread's four
// elements are one Philox block; with QUADS (every pointer aligned to four elements) they are read
// and written as one 8- or 16-byte access each instead of four 2- or 4-byte ones — the same
// arithmetic, element for element. A bf16 add_dropout moved 12 scalar accesses per Philox block.
template <class T, bool APPLY, bool ADD = false, bool QUADS = false>
__global__ void dropout_kernel(uint64_t seed, uint64_t first_block, const uint64_t* first_offset, int64_t n,
                               uint32_t threshold, float keep_scale, const T* __restrict__ x,
                               const T* __restrict__ residual, T* __restrict__ out) {
  if (first_offset != nullptr) first_block += *first_offset;
  const int64_t blocks = (n + 3) / 4;
  // __fmul_rn: with ADD, the compiler must not fuse the product into the add (an FMA skips the
  // rounding the separate dropout's store makes).
  auto element = [&](float m, T xv, T rv) {
    const T v = from_f<T>(APPLY ? __fmul_rn(to_f(xv), m) : m);
    return ADD ? from_f<T>(to_f(rv) + to_f(v)) : v;
  };
  for (int64_t b = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; b < blocks; b += int64_t(gridDim.x) * blockDim.x) {
    float f[4];
    detail::dropout_block_factors(seed, first_block + static_cast<uint64_t>(b), threshold, keep_scale, f);
    const int64_t i0 = 4 * b;
    if (QUADS && i0 + 4 <= n) {
      T xs[4] = {}, rs[4] = {}, ys[4];
      if (APPLY) load4(x + i0, xs);
      if (ADD) load4(residual + i0, rs);
#pragma unroll
      for (int l = 0; l < 4; ++l) ys[l] = element(f[l], xs[l], rs[l]);
      store4(out + i0, ys);
      continue;
    }
#pragma unroll
    for (int l = 0; l < 4; ++l) {
      const int64_t i = i0 + l;
      if (i < n) out[i] = element(f[l], APPLY ? x[i] : T{}, ADD ? residual[i] : T{});
    }
  }
}

template <class T, bool APPLY, bool ADD = false>
void launch(uint64_t seed, uint64_t first_block, const uint64_t* first_offset, int64_t n, uint32_t threshold,
            float keep_scale, const T* x, T* out, const T* residual = nullptr) {
  if (n <= 0) return;
  const int64_t blocks = (n + 3) / 4;
  using DT = DevT<T>;
  auto quad_aligned = [](const void* p) {
    return p == nullptr || (reinterpret_cast<uintptr_t>(p) % (4 * sizeof(T))) == 0;
  };
  const bool quads = quad_aligned(x) && quad_aligned(residual) && quad_aligned(out);
  auto kernel = quads ? dropout_kernel<DT, APPLY, ADD, true> : dropout_kernel<DT, APPLY, ADD, false>;
  kernel<<<detail::grid_for(blocks, 256, int64_t(device_info().sm_count) * 8), 256, 0, current_stream()>>>(
      seed, first_block, first_offset, n, threshold, keep_scale, detail::dev_ptr(x), detail::dev_ptr(residual),
      detail::dev_ptr(out));
  VTS_CUDA_CHECK_LAUNCH("dropout_kernel");
}

}  // namespace

void dropout_mask(Device, uint64_t seed, uint64_t first_block, int64_t n, uint32_t threshold, float keep_scale,
                  float* mask,
                 const uint64_t* first_offset) {
  launch<float, false>(seed, first_block, first_offset, n, threshold, keep_scale, nullptr, mask);
}
void dropout_mask(Device, uint64_t seed, uint64_t first_block, int64_t n, uint32_t threshold, bf16 keep_scale,
                  bf16* mask,
                 const uint64_t* first_offset) {
  launch<bf16, false>(seed, first_block, first_offset, n, threshold, static_cast<float>(keep_scale), nullptr, mask);
}
void dropout_apply(Device, uint64_t seed, uint64_t first_block, int64_t n, uint32_t threshold, float keep_scale,
                   const float* x, float* y,
                 const uint64_t* first_offset) {
  launch<float, true>(seed, first_block, first_offset, n, threshold, keep_scale, x, y);
}
void dropout_apply(Device, uint64_t seed, uint64_t first_block, int64_t n, uint32_t threshold, float keep_scale,
                   const bf16* x, bf16* y,
                 const uint64_t* first_offset) {
  launch<bf16, true>(seed, first_block, first_offset, n, threshold, keep_scale, x, y);
}
void dropout_add(Device, uint64_t seed, uint64_t first_block, int64_t n, uint32_t threshold, float keep_scale,
                 const float* x, const float* residual, float* y,
                 const uint64_t* first_offset) {
  launch<float, true, true>(seed, first_block, first_offset, n, threshold, keep_scale, x, y, residual);
}
void dropout_add(Device, uint64_t seed, uint64_t first_block, int64_t n, uint32_t threshold, float keep_scale,
                 const bf16* x, const bf16* residual, bf16* y,
                 const uint64_t* first_offset) {
  launch<bf16, true, true>(seed, first_block, first_offset, n, threshold, keep_scale, x, y, residual);
}

}  // namespace vts::cuda
