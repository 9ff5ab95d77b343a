// Dropout masks from Philox4x32-10 (common/philox.cuh), the CPU's exact counter layout (see
// dropout.hpp): thread b computes block (first_block + b) and so elements 4b..4b+3. Ten rounds are
// ~40 integer ops for 4 elements, well under the cost of writing them, so the kernel runs at store
// bandwidth.
#include "common/check.cuh"
#include "common/philox.cuh"
#include "common/types.cuh"
#include "vts/backend/cuda/dropout.hpp"

namespace vts::cuda {

namespace {

using detail::DevT;
using detail::from_f;
using detail::to_f;

// APPLY = false: out = mask values; APPLY = true: out = x · mask; ADD (with APPLY): out = residual +
// x · mask, the product rounded to T first as the separate dropout would store it.
template <class T, bool APPLY, bool ADD = false>
__global__ void dropout_kernel(uint64_t seed, uint64_t first_block, const uint64_t* first_offset, int64_t n,
                               uint32_t threshold, float keep_scale, const T* __restrict__ x,
                               const T* __restrict__ residual, T* __restrict__ out) {
  if (first_offset != nullptr) first_block += *first_offset;
  const int64_t blocks = (n + 3) / 4;
  for (int64_t b = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; b < blocks; b += int64_t(gridDim.x) * blockDim.x) {
    float f[4];
    detail::dropout_block_factors(seed, first_block + static_cast<uint64_t>(b), threshold, keep_scale, f);
    const int64_t i0 = 4 * b;
#pragma unroll
    for (int l = 0; l < 4; ++l) {
      const int64_t i = i0 + l;
      if (i < n) {
        const float m = f[l];
        // __fmul_rn: with ADD, the compiler must not fuse the product into the add (an FMA skips
        // the rounding the separate dropout's store makes).
        const T v = from_f<T>(APPLY ? __fmul_rn(to_f(x[i]), m) : m);
        out[i] = ADD ? from_f<T>(to_f(residual[i]) + to_f(v)) : v;
      }
    }
  }
}

template <class T, bool APPLY, bool ADD = false>
void launch(uint64_t seed, uint64_t first_block, const uint64_t* first_offset, int64_t n, uint32_t threshold,
            float keep_scale, const T* x, T* out, const T* residual = nullptr) {
  if (n <= 0) return;
  const int64_t blocks = (n + 3) / 4;
  dropout_kernel<DevT<T>, APPLY, ADD><<<detail::grid_for(blocks, 256, int64_t(device_info().sm_count) * 8), 256, 0,
                                        current_stream()>>>(seed, first_block, first_offset, n, threshold, keep_scale,
                                                            detail::dev_ptr(x), detail::dev_ptr(residual),
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
