#pragma once
// The fp32 attention kernels' building block: a 64 × (16·TN) tile product from shared memory by 256
// threads in a 16 × 16 grid, thread (ty, tx) owning rows 4·ty .. 4·ty+3 and columns tx + 16·j.
//
//   acc[i][j] += Σ_{k < KD} A[(4·ty + i)·lda + k] · B(k, tx + 16·j)
//
// A is stored with k contiguous (row-major [m][k]) and read as float4 along k; the 16 threads of a
// half-warp share ty and so read the same A address (a broadcast). B comes in two storage orders:
//   B_KCONTIG = true:  B stored [n][k] (B(k, n) = B[n·ldb + k]), read as float4 along k;
//   B_KCONTIG = false: B stored [k][n] (B(k, n) = B[k·ldb + n]), read as scalars.
// Bank conflicts: with ldb ≡ 4 (mod 32) floats, the float4 reads of 8 consecutive tx (one
// 128-byte shared-memory wavefront) hit 8 distinct 16-byte bank groups; the scalar reads of
// consecutive tx are consecutive words. Per 4 k-steps a thread issues 4 + TN LDS.128 (or 4 LDS.128
// + 4·TN LDS.32) for 16·TN FMAs.
namespace vts::cuda::attn {

template <int KD, int TN, bool B_KCONTIG>
__device__ __forceinline__ void simt_tile_mma(float (&acc)[4][TN], const float* __restrict__ A, int lda,
                                              const float* __restrict__ Bm, int ldb, int ty, int tx) {
#pragma unroll 4
  for (int k = 0; k < KD; k += 4) {
    float4 a[4];
#pragma unroll
    for (int i = 0; i < 4; ++i) a[i] = *reinterpret_cast<const float4*>(A + (4 * ty + i) * lda + k);
    if constexpr (B_KCONTIG) {
#pragma unroll
      for (int j = 0; j < TN; ++j) {
        const float4 b = *reinterpret_cast<const float4*>(Bm + (tx + 16 * j) * ldb + k);
#pragma unroll
        for (int i = 0; i < 4; ++i) {
          acc[i][j] = fmaf(a[i].x, b.x, acc[i][j]);
          acc[i][j] = fmaf(a[i].y, b.y, acc[i][j]);
          acc[i][j] = fmaf(a[i].z, b.z, acc[i][j]);
          acc[i][j] = fmaf(a[i].w, b.w, acc[i][j]);
        }
      }
    } else {
#pragma unroll
      for (int kk = 0; kk < 4; ++kk) {
#pragma unroll
        for (int j = 0; j < TN; ++j) {
          const float b = Bm[(k + kk) * ldb + tx + 16 * j];
#pragma unroll
          for (int i = 0; i < 4; ++i) acc[i][j] = fmaf((&a[i].x)[kk], b, acc[i][j]);
        }
      }
    }
  }
}

// acc = A·Bᵀ over KD (B stored [n][k]) for a thread's four columns tx + 16·j, from zero; with
// `narrow`, its first column only (j = 0) and the other three left 0: a tile of at most 16 rows of B
// before N (the fp32 kernels' skip_padding; a constant false compiles to the full product alone).
template <int KD>
__device__ __forceinline__ void simt_scores(float (&acc)[4][4], bool narrow, const float* __restrict__ A, int lda,
                                            const float* __restrict__ Bm, int ldb, int ty, int tx) {
#pragma unroll
  for (int i = 0; i < 4; ++i)
#pragma unroll
    for (int j = 0; j < 4; ++j) acc[i][j] = 0.0f;
  if (narrow) {
    float first[4][1] = {{0.0f}, {0.0f}, {0.0f}, {0.0f}};
    simt_tile_mma<KD, 1, true>(first, A, lda, Bm, ldb, ty, tx);
#pragma unroll
    for (int i = 0; i < 4; ++i) acc[i][0] = first[i][0];
  } else {
    simt_tile_mma<KD, 4, true>(acc, A, lda, Bm, ldb, ty, tx);
  }
}

// Copies `rows` rows of D floats (row r at src + r·stride, valid for r < valid_rows) into shared
// memory with pitch `ld`, as float4 by all 256 threads; rows past valid_rows become zeros.
template <int D>
__device__ __forceinline__ void load_rows_f32(float* __restrict__ dst, int ld, int rows, int valid_rows,
                                              const float* __restrict__ src, int64_t stride) {
  constexpr int kVecPerRow = D / 4;
  for (int c = threadIdx.x; c < rows * kVecPerRow; c += 256) {
    const int r = c / kVecPerRow, col = (c % kVecPerRow) * 4;
    float4 v = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
    if (r < valid_rows) v = __ldg(reinterpret_cast<const float4*>(src + r * stride + col));
    *reinterpret_cast<float4*>(dst + r * ld + col) = v;
  }
}

}  // namespace vts::cuda::attn
