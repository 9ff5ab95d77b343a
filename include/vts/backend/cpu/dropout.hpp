#pragma once
// Dropout mask from Philox4x32-10: element i takes lane i%4 of block (first + i/4), so the mask
// depends only on (seed, first) — not on threads — and the CUDA kernel can draw the same one.
#include <cstdint>
#include <type_traits>
#if defined(__AVX512F__) || defined(__AVX2__)
#include <immintrin.h>
#endif

#include "vts/backend/cpu/parallel.hpp"
#include "vts/backend/cpu/philox.hpp"
#include "vts/core/device.hpp"
#include "vts/core/rng.hpp"

namespace vts::cpu {

namespace detail {
#if defined(__AVX512F__)
// 64 mask elements (Philox blocks counter .. counter + 15, element 4j + w from word w of block j)
// with everything in registers: the counters are made, and the words put in element order, by
// vector instructions. The scalar loops around philox_rounds_x16 do that through 64-element
// arrays, and GCC 12's AVX-512 code for them was slow: on the 2-core Xeon a mask element took
// 1.5 ns with them (one thread; the AVX2 build of the same loops 0.96) and 0.57 with this
// (docs/perf.md, "Dropout masks in registers").
template <bool kApply>
inline void dropout_x64_avx512(uint64_t counter, uint32_t k0, uint32_t k1, uint32_t threshold, float keep_scale,
                               float* mask, const float* x, float* y) {
  const __m512i base = _mm512_set1_epi64(static_cast<long long>(counter));
  const __m512i low8 = _mm512_add_epi64(base, _mm512_set_epi64(7, 6, 5, 4, 3, 2, 1, 0));
  const __m512i high8 = _mm512_add_epi64(base, _mm512_set_epi64(15, 14, 13, 12, 11, 10, 9, 8));
  auto join = [](__m256i first, __m256i second) {
    return _mm512_inserti64x4(_mm512_castsi256_si512(first), second, 1);
  };
  __m512i x0 = join(_mm512_cvtepi64_epi32(low8), _mm512_cvtepi64_epi32(high8));
  __m512i x1 = join(_mm512_cvtepi64_epi32(_mm512_srli_epi64(low8, 32)),
                    _mm512_cvtepi64_epi32(_mm512_srli_epi64(high8, 32)));
  __m512i x2 = _mm512_setzero_si512(), x3 = _mm512_setzero_si512();
  philox_rounds_avx512(x0, x1, x2, x3, k0, k1);
  // Transpose 16 × 4 words into element order: within each 128-bit lane first (blocks 4L + r of
  // lane L in u_r), then the 128-bit lanes across the four vectors.
  const __m512i t0 = _mm512_unpacklo_epi32(x0, x1), t1 = _mm512_unpacklo_epi32(x2, x3);
  const __m512i t2 = _mm512_unpackhi_epi32(x0, x1), t3 = _mm512_unpackhi_epi32(x2, x3);
  const __m512i u0 = _mm512_unpacklo_epi64(t0, t1), u1 = _mm512_unpackhi_epi64(t0, t1);
  const __m512i u2 = _mm512_unpacklo_epi64(t2, t3), u3 = _mm512_unpackhi_epi64(t2, t3);
  const __m512i v0 = _mm512_shuffle_i32x4(u0, u1, 0x44), v1 = _mm512_shuffle_i32x4(u2, u3, 0x44);
  const __m512i v2 = _mm512_shuffle_i32x4(u0, u1, 0xEE), v3 = _mm512_shuffle_i32x4(u2, u3, 0xEE);
  const __m512i words[4] = {_mm512_shuffle_i32x4(v0, v1, 0x88), _mm512_shuffle_i32x4(v0, v1, 0xDD),
                            _mm512_shuffle_i32x4(v2, v3, 0x88), _mm512_shuffle_i32x4(v2, v3, 0xDD)};
  const __m512i thr = _mm512_set1_epi32(static_cast<int>(threshold));
  const __m512 keep = _mm512_set1_ps(keep_scale);
  for (int q = 0; q < 4; ++q) {
    const __mmask16 kept = _mm512_cmpge_epu32_mask(_mm512_srli_epi32(words[q], 8), thr);
    const __m512 m = _mm512_maskz_mov_ps(kept, keep);
    _mm512_storeu_ps(mask + 16 * q, m);
    if constexpr (kApply) _mm512_storeu_ps(y + 16 * q, _mm512_mul_ps(_mm512_loadu_ps(x + 16 * q), m));
  }
}
#endif

// The mask, and with kApply also y = x ∘ mask in the same pass (the forward of dropout, while the
// mask's 64-element chunk is still in L1).
template <bool kApply, class T>
void dropout_pass(uint64_t seed, uint64_t first_block, int64_t n, uint32_t threshold, T keep_scale, T* mask,
                  const T* x, T* y) {
  constexpr int kLanes = 16;
  const int64_t blocks = n / 4;
  const uint32_t k0_init = static_cast<uint32_t>(seed), k1_init = static_cast<uint32_t>(seed >> 32);
  auto write = [&](int64_t i0, int64_t count, const uint32_t* words) {
    for (int64_t i = 0; i < count; ++i) {
      mask[i0 + i] = (words[i] >> 8) >= threshold ? keep_scale : T(0);
      if constexpr (kApply) y[i0 + i] = x[i0 + i] * mask[i0 + i];
    }
  };
  parallel_for(0, blocks, 1 << 12, [&](int64_t b, int64_t e) {
    // Local copies: read through the closure, they might alias `mask` and the stores stay scalar.
    const uint32_t thr = threshold;
    const T keep = keep_scale;
    int64_t blk = b;
    for (; blk + kLanes <= e; blk += kLanes) {
#if defined(__AVX512F__)
      if constexpr (std::is_same_v<T, float>) {
        dropout_x64_avx512<kApply>(first_block + static_cast<uint64_t>(blk), k0_init, k1_init, thr, keep, mask + 4 * blk,
                                   kApply ? x + 4 * blk : nullptr, kApply ? y + 4 * blk : nullptr);
        continue;
      }
#endif
      alignas(64) uint32_t block_words[4][kLanes];
      philox_blocks_x16(seed, first_block + static_cast<uint64_t>(blk), block_words);
      // Interleave to element order, then compare and store branch-free over 4 × 16 elements.
      alignas(64) uint32_t words[4 * kLanes];
      for (int j = 0; j < kLanes; ++j)
        for (int w = 0; w < 4; ++w) words[4 * j + w] = block_words[w][j];
      T* m = mask + 4 * blk;
#pragma omp simd
      for (int i = 0; i < 4 * kLanes; ++i) m[i] = (words[i] >> 8) >= thr ? keep : T(0);
      if constexpr (kApply) {
        const T* xb = x + 4 * blk;
        T* yb = y + 4 * blk;
#pragma omp simd
        for (int i = 0; i < 4 * kLanes; ++i) yb[i] = xb[i] * m[i];
      }
    }
    for (; blk < e; ++blk) {  // the tail of this range, one block at a time
      const uint64_t counter = first_block + static_cast<uint64_t>(blk);
      uint32_t w[4] = {static_cast<uint32_t>(counter), static_cast<uint32_t>(counter >> 32), 0, 0};
      Philox::rounds(w[0], w[1], w[2], w[3], k0_init, k1_init);
      write(4 * blk, 4, w);
    }
  });
  if (blocks * 4 < n) {
    const auto bits = Philox::generate(seed, 0, first_block + static_cast<uint64_t>(blocks));
    write(blocks * 4, n - blocks * 4, bits.data());
  }
}
}  // namespace detail

// mask[i] = keep_scale if the lane's top 24 bits ≥ threshold, else 0.
template <class T>
void dropout_mask(Device, uint64_t seed, uint64_t first_block, int64_t n, uint32_t threshold, T keep_scale, T* mask) {
  detail::dropout_pass<false>(seed, first_block, n, threshold, keep_scale, mask, static_cast<const T*>(nullptr),
                              static_cast<T*>(nullptr));
}

// The same mask, and y = x ∘ mask (contiguous x and y) in the same pass.
template <class T>
void dropout_forward(Device, uint64_t seed, uint64_t first_block, int64_t n, uint32_t threshold, T keep_scale,
                     const T* x, T* mask, T* y) {
  detail::dropout_pass<true>(seed, first_block, n, threshold, keep_scale, mask, x, y);
}

}  // namespace vts::cpu
