#pragma once
// Philox4x32-10 on the device, and the dropout draw built on it — shared by the dropout kernels
// (dropout.cu) and the fused GELU + dropout (activation.cu), so both draw the CPU's exact masks:
// element i of a draw at (seed, first_block) takes lane i % 4 of block first_block + i / 4 and is
// kept when that lane's top 24 bits are ≥ threshold (backend/cpu/dropout.hpp).
#include <cstdint>

#include "vts/core/rng.hpp"

namespace vts::cuda::detail {

// The same rounds as vts::Philox::generate (core/rng.hpp) with counter (lo = counter, hi = 0);
// the 32×32→64-bit products are split into __umulhi and the low-half multiply.
__device__ __forceinline__ uint4 philox_block(uint64_t seed, uint64_t counter) {
  uint32_t c0 = static_cast<uint32_t>(counter), c1 = static_cast<uint32_t>(counter >> 32), c2 = 0, c3 = 0;
  uint32_t k0 = static_cast<uint32_t>(seed), k1 = static_cast<uint32_t>(seed >> 32);
#pragma unroll
  for (int round = 0; round < Philox::kRounds; ++round) {
    const uint32_t hi0 = __umulhi(Philox::kMul0, c0), lo0 = Philox::kMul0 * c0;
    const uint32_t hi1 = __umulhi(Philox::kMul1, c2), lo1 = Philox::kMul1 * c2;
    const uint32_t n0 = hi1 ^ c1 ^ k0;
    const uint32_t n2 = hi0 ^ c3 ^ k1;
    c1 = lo1;
    c3 = lo0;
    c0 = n0;
    c2 = n2;
    k0 += Philox::kWeyl0;
    k1 += Philox::kWeyl1;
  }
  return make_uint4(c0, c1, c2, c3);
}

__device__ __forceinline__ bool dropout_keep(uint32_t bits, uint32_t threshold) { return (bits >> 8) >= threshold; }

// The factors of the four elements of block `block` of a draw: keep_scale where kept, else 0.
__device__ __forceinline__ void dropout_block_factors(uint64_t seed, uint64_t block, uint32_t threshold,
                                                      float keep_scale, float (&f)[4]) {
  const uint4 r = philox_block(seed, block);
  const uint32_t lanes[4] = {r.x, r.y, r.z, r.w};
#pragma unroll
  for (int l = 0; l < 4; ++l) f[l] = dropout_keep(lanes[l], threshold) ? keep_scale : 0.0f;
}

// Element i's factor alone (a whole block for one element: for scalar tails).
__device__ __forceinline__ float dropout_factor(uint64_t seed, uint64_t first_block, int64_t i, uint32_t threshold,
                                                float keep_scale) {
  float f[4];
  dropout_block_factors(seed, first_block + static_cast<uint64_t>(i / 4), threshold, keep_scale, f);
  return f[i % 4];
}

}  // namespace vts::cuda::detail
