#pragma once
// Dropout mask from Philox4x32-10: element i takes lane i%4 of block (first + i/4), so the mask
// depends only on (seed, first) — not on threads — and the CUDA kernel can draw the same one.
#include <cstdint>

#include "vts/backend/cpu/parallel.hpp"
#include "vts/core/device.hpp"
#include "vts/core/rng.hpp"

namespace vts::cpu {

// mask[i] = keep_scale if the lane's top 24 bits ≥ threshold, else 0.
//
// The rounds run on 16 counters at once in structure-of-arrays form, one short loop per round
// over the 16 lanes: that is the shape GCC turns into AVX-512 (vpmuludq for the 32×32→64-bit
// products). Written as one loop over blocks calling Philox::rounds, it stayed scalar and took a
// fifth of a ViTTiny28 training step.
template <class T>
void dropout_mask(Device, uint64_t seed, uint64_t first_block, int64_t n, uint32_t threshold, T keep_scale, T* mask) {
  constexpr int kLanes = 16;
  const int64_t blocks = n / 4;
  const uint32_t k0_init = static_cast<uint32_t>(seed), k1_init = static_cast<uint32_t>(seed >> 32);
  auto write = [&](int64_t blk, uint32_t c0, uint32_t c1, uint32_t c2, uint32_t c3) {
    T* m = mask + 4 * blk;
    m[0] = (c0 >> 8) >= threshold ? keep_scale : T(0);
    m[1] = (c1 >> 8) >= threshold ? keep_scale : T(0);
    m[2] = (c2 >> 8) >= threshold ? keep_scale : T(0);
    m[3] = (c3 >> 8) >= threshold ? keep_scale : T(0);
  };
  parallel_for(0, blocks, 1 << 12, [&](int64_t b, int64_t e) {
    // Local copies: read through the closure, they might alias `mask` and the stores stay scalar.
    const uint32_t thr = threshold;
    const T keep = keep_scale;
    int64_t blk = b;
    for (; blk + kLanes <= e; blk += kLanes) {
      alignas(64) uint32_t c0[kLanes], c1[kLanes], c2[kLanes], c3[kLanes];
      for (int j = 0; j < kLanes; ++j) {
        const uint64_t counter = first_block + static_cast<uint64_t>(blk + j);
        c0[j] = static_cast<uint32_t>(counter);
        c1[j] = static_cast<uint32_t>(counter >> 32);
        c2[j] = 0;
        c3[j] = 0;
      }
      uint32_t k0 = k0_init, k1 = k1_init;
      for (int round = 0; round < 10; ++round) {  // Philox::rounds, lane-parallel
#pragma omp simd
        for (int j = 0; j < kLanes; ++j) {
          const uint64_t p0 = uint64_t(0xD2511F53u) * c0[j];
          const uint64_t p1 = uint64_t(0xCD9E8D57u) * c2[j];
          const uint32_t n0 = static_cast<uint32_t>(p1 >> 32) ^ c1[j] ^ k0;
          const uint32_t n2 = static_cast<uint32_t>(p0 >> 32) ^ c3[j] ^ k1;
          c1[j] = static_cast<uint32_t>(p1);
          c3[j] = static_cast<uint32_t>(p0);
          c0[j] = n0;
          c2[j] = n2;
        }
        k0 += 0x9E3779B9u;
        k1 += 0xBB67AE85u;
      }
      // Interleave to element order, then compare and store branch-free over 4 × 16 elements.
      alignas(64) uint32_t words[4 * kLanes];
      for (int j = 0; j < kLanes; ++j) {
        words[4 * j] = c0[j];
        words[4 * j + 1] = c1[j];
        words[4 * j + 2] = c2[j];
        words[4 * j + 3] = c3[j];
      }
      T* m = mask + 4 * blk;
#pragma omp simd
      for (int i = 0; i < 4 * kLanes; ++i) m[i] = (words[i] >> 8) >= thr ? keep : T(0);
    }
    for (; blk < e; ++blk) {  // the tail of this range, one block at a time
      const uint64_t counter = first_block + static_cast<uint64_t>(blk);
      uint32_t c0 = static_cast<uint32_t>(counter), c1 = static_cast<uint32_t>(counter >> 32), c2 = 0, c3 = 0;
      Philox::rounds(c0, c1, c2, c3, k0_init, k1_init);
      write(blk, c0, c1, c2, c3);
    }
  });
  if (blocks * 4 < n) {
    const auto bits = Philox::generate(seed, 0, first_block + static_cast<uint64_t>(blocks));
    for (int64_t i = blocks * 4; i < n; ++i) mask[i] = (bits[static_cast<size_t>(i % 4)] >> 8) >= threshold ? keep_scale : T(0);
  }
}

}  // namespace vts::cpu
