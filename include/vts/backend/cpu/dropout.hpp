#pragma once
// Dropout mask from Philox4x32-10: element i takes lane i%4 of block (first + i/4), so the mask
// depends only on (seed, first) — not on threads — and the CUDA kernel can draw the same one.
// The block loop is written for the vectoriser: 16 blocks per AVX-512 iteration.
#include <cstdint>

#include "vts/backend/cpu/parallel.hpp"
#include "vts/core/device.hpp"
#include "vts/core/rng.hpp"

namespace vts::cpu {

// mask[i] = keep_scale if the lane's top 24 bits ≥ threshold, else 0.
template <class T>
void dropout_mask(Device, uint64_t seed, uint64_t first_block, int64_t n, uint32_t threshold, T keep_scale, T* mask) {
  const int64_t blocks = n / 4;
  const uint32_t k0_init = static_cast<uint32_t>(seed), k1_init = static_cast<uint32_t>(seed >> 32);
  parallel_for(0, blocks, 1 << 12, [&](int64_t b, int64_t e) {
#pragma omp simd
    for (int64_t blk = b; blk < e; ++blk) {
      const uint64_t counter = first_block + static_cast<uint64_t>(blk);
      uint32_t c0 = static_cast<uint32_t>(counter), c1 = static_cast<uint32_t>(counter >> 32), c2 = 0, c3 = 0;
      Philox::rounds(c0, c1, c2, c3, k0_init, k1_init);
      T* m = mask + 4 * blk;
      m[0] = (c0 >> 8) >= threshold ? keep_scale : T(0);
      m[1] = (c1 >> 8) >= threshold ? keep_scale : T(0);
      m[2] = (c2 >> 8) >= threshold ? keep_scale : T(0);
      m[3] = (c3 >> 8) >= threshold ? keep_scale : T(0);
    }
  });
  if (blocks * 4 < n) {
    const auto bits = Philox::generate(seed, 0, first_block + static_cast<uint64_t>(blocks));
    for (int64_t i = blocks * 4; i < n; ++i) mask[i] = (bits[static_cast<size_t>(i % 4)] >> 8) >= threshold ? keep_scale : T(0);
  }
}

}  // namespace vts::cpu
