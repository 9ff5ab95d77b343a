#pragma once
// Shared-memory tiles of the Hopper attention kernels (attention_{fwd,bwd}_bf16_wgmma.cu, sm_90a;
// D = 64, N ≤ 256). A tile holds rows of one head (queries or keys) × 64 bf16 in core-matrix order,
// the wgmma layout without swizzle (kernels/common/hw.cuh): element (r, c) at byte
// (r/8)·1024 + (c/8)·128 + (r%8)·16 + (c%8)·2. Every operand of every product is then one
// descriptor on a tile:
//   rows as M or N, the head dim as K (Q, K, dO, V as "[row][d]" operands): K-major, lbo 128, sbo 1024;
//   rows as K, the head dim as N (V in P·V, K in dS·K, Q and dO in the key-side products): MN-major,
//   lbo 1024, sbo 128.
#include <type_traits>

#include "attention/attention.cuh"
#include "attention/mma.cuh"

namespace vts::cuda::attn::wg {

inline constexpr int kD = 64;
inline constexpr int kThreads = 128;  // one warpgroup
inline constexpr int kBlock = 64;     // query or key rows of a block, and of a full chunk
inline constexpr int kRowBytes = kD * 2;
inline constexpr int kGroupBytes = 8 * kRowBytes;  // 8 rows
inline constexpr int kTileBytes = kBlock * kRowBytes;

// cp.async of ROWS rows (a multiple of 8) of a head, row r at src + r·stride, zero-filled from
// `valid` (≥ 1) on, into a tile. Copy i writes bytes 16i..16i+15 of the tile (no bank conflicts):
// thread x's copies are i = x + 128k, all in column (x/8 % 8)·8 of rows (x/64)·8 + x%8 + 16k, so
// they unroll completely from one base pointer (a loop over i from threadIdx.x has a trip count
// the compiler cannot see: a copy then cost ≈ 28 instructions, 13 trips a thread for K at N = 197).
template <int ROWS>
__device__ __forceinline__ void load_rows(unsigned char* tile, int valid, const __nv_bfloat16* src, int64_t stride) {
  static_assert(ROWS % 8 == 0 && kThreads == 128, "16 rows a step of 128 threads, the last step may have 8");
  const int r0 = (threadIdx.x / 64) * 8 + threadIdx.x % 8, col = (threadIdx.x / 8 % 8) * 8;
  const __nv_bfloat16* first_row = src + col;  // what a row past `valid` reads (0 bytes of it)
  const __nv_bfloat16* row = src + r0 * stride + col;
  tile += 16 * threadIdx.x;
#pragma unroll
  for (int k = 0; k < (ROWS + 15) / 16; ++k) {
    const int r = r0 + 16 * k;
    if (ROWS % 16 != 0 && r >= ROWS) break;  // a last step of 8 rows: threads 0..63
    const bool ok = r < valid;
    cp_async16(tile + 2048 * k, ok ? row : first_row, ok);
    row += 16 * stride;
  }
}

// Rows row0.. of a tile as the M or N side of a product, head-dim step kk (16 columns).
__device__ __forceinline__ uint64_t rows_by_d(const unsigned char* tile, int row0, int kk) {
  return hw::wgmma_desc(tile + (row0 / 8) * kGroupBytes + kk * 256, 128, kGroupBytes);
}
// Rows row0..row0 + 15 of a tile as the K side of a product, the head dim as N.
__device__ __forceinline__ uint64_t rows_as_k(const unsigned char* tile, int row0) {
  return hw::wgmma_desc(tile + (row0 / 8) * kGroupBytes, kGroupBytes, 128);
}

// The products' shapes, by chunk: a block of N ≤ 256 rows is `full` chunks of 64 and a last one of
// kTail ∈ {8, 16, 32, 64} columns (the smallest that holds N − 64·full); as the K side of a product,
// the last chunk takes ⌈kTail/16⌉ steps of 16.
template <int kTail>
inline constexpr int kTailSteps = (kTail + 15) / 16;

// A fragments (16 keys or queries) of a chunk's accumulators, as acc_to_a, for the chunk's k16
// steps; an 8-column last chunk pads the second half with zeros.
template <int kCols>
__device__ __forceinline__ void chunk_to_a(uint32_t (&a)[kTailSteps<kCols>][4], const float (&acc)[kCols / 8][4]) {
  const float zeros[4] = {0.0f, 0.0f, 0.0f, 0.0f};
#pragma unroll
  for (int kc = 0; kc < kTailSteps<kCols>; ++kc) {
    if (2 * kc + 1 < kCols / 8) acc_to_a(a[kc], acc[2 * kc], acc[min(2 * kc + 1, kCols / 8 - 1)]);
    else acc_to_a(a[kc], acc[2 * kc], zeros);
  }
}

template <int N>
__device__ __forceinline__ void zero(float (&d)[N][4]) {
#pragma unroll
  for (int j = 0; j < N; ++j) d[j][0] = d[j][1] = d[j][2] = d[j][3] = 0.0f;
}

// x = A·Bᵀ and y = C·Dᵀ over the head dim, as one batch waited for: A and C the 64 rows of tiles
// a and c, B and D kCols rows of tiles b and d from row b_row0 (S and dP, or Sᵀ and dPᵀ).
template <int kCols>
__device__ __forceinline__ void two_products_over_d(float (&x)[kCols / 8][4], float (&y)[kCols / 8][4],
                                                    const unsigned char* a, const unsigned char* b,
                                                    const unsigned char* c, const unsigned char* d, int b_row0) {
  zero(x);
  zero(y);
  hw::wgmma_pin(x);
  hw::wgmma_pin(y);
  hw::wgmma_fence();
#pragma unroll
  for (int kk = 0; kk < kD / 16; ++kk) {
    hw::Wgmma<kCols>::template ss<0>(x, rows_by_d(a, 0, kk), rows_by_d(b, b_row0, kk));
    hw::Wgmma<kCols>::template ss<0>(y, rows_by_d(c, 0, kk), rows_by_d(d, b_row0, kk));
  }
  hw::wgmma_commit();
  hw::wgmma_wait<0>();
  hw::wgmma_pin(x);
  hw::wgmma_pin(y);
}

// The launcher's dispatch on N: kernel<full, tail>.
template <template <int, int> class Launch, class... Args>
void dispatch_on_n(int n, const Args&... args) {
  const int full = (n - 1) / kBlock, tail = n - full * kBlock;
  auto by_tail = [&](auto full_c) {
    constexpr int F = decltype(full_c)::value;
    if (tail <= 8) return Launch<F, 8>::run(args...);
    if (tail <= 16) return Launch<F, 16>::run(args...);
    if (tail <= 32) return Launch<F, 32>::run(args...);
    return Launch<F, 64>::run(args...);
  };
  switch (full) {
    case 0: return by_tail(std::integral_constant<int, 0>{});
    case 1: return by_tail(std::integral_constant<int, 1>{});
    case 2: return by_tail(std::integral_constant<int, 2>{});
    default: return by_tail(std::integral_constant<int, 3>{});
  }
}

}  // namespace vts::cuda::attn::wg
