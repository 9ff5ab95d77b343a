#pragma once
// Fragment loads and packing for the bf16 attention kernels (sm_80+), on the tensor-core and
// async-copy primitives of common/hw.cuh, which documents the fragment layouts. The C layout of
// two neighbouring n8 tiles equals the A layout of one k16 chunk, so a product's result (rounded
// to bf16) feeds the next product as its A operand without leaving registers.
#include <cuda_bf16.h>

#include <cstdint>

#include "common/hw.cuh"

namespace vts::cuda::attn {

using hw::cp_async16;
using hw::cp_async_commit;
using hw::cp_async_wait;
using hw::ldmatrix_x4;
using hw::ldmatrix_x4_trans;
using hw::mma_bf16;

// Two floats → bf16x2 register, the first in the low half (the lower column index, as fragments
// expect).
__device__ __forceinline__ uint32_t pack_bf16(float lo, float hi) {
  const __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<const uint32_t*>(&v);
}

// Two neighbouring n8 accumulator tiles (columns 16c..16c+15 of a product's 16 rows) → the A
// fragment of those 16 columns as the k16 chunk of the next product, rounded to bf16.
__device__ __forceinline__ void acc_to_a(uint32_t (&a)[4], const float (&lo)[4], const float (&hi)[4]) {
  a[0] = pack_bf16(lo[0], lo[1]);
  a[1] = pack_bf16(lo[2], lo[3]);
  a[2] = pack_bf16(hi[0], hi[1]);
  a[3] = pack_bf16(hi[2], hi[3]);
}

// Row-major tile X[m][k] (pitch in elements) → A fragment of the 16×16 block at (m0, k0).
__device__ __forceinline__ void load_a(uint32_t (&a)[4], const __nv_bfloat16* x, int pitch, int m0, int k0,
                                       int lane) {
  ldmatrix_x4(a, x + (m0 + (lane & 15)) * pitch + k0 + (lane >> 4) * 8);
}
// Transposed tile X[k][m] → A fragment of the 16×16 block of Xᵀ at (m0, k0).
__device__ __forceinline__ void load_a_trans(uint32_t (&a)[4], const __nv_bfloat16* x, int pitch, int m0, int k0,
                                             int lane) {
  ldmatrix_x4_trans(a, x + (k0 + (lane & 7) + (lane >> 4) * 8) * pitch + m0 + ((lane >> 3) & 1) * 8);
}
// Tile stored [n][k] (e.g. K for Q·Kᵀ) → B fragments of n-tiles n0 and n0+8 over k0..k0+15:
// b[0], b[1] for n0; b[2], b[3] for n0+8.
__device__ __forceinline__ void load_b_nk(uint32_t (&b)[4], const __nv_bfloat16* x, int pitch, int n0, int k0,
                                          int lane) {
  ldmatrix_x4(b, x + (n0 + (lane & 7) + (lane >> 4) * 8) * pitch + k0 + ((lane >> 3) & 1) * 8);
}
// Tile stored [k][n] (e.g. V for P·V) → B fragments of n-tiles n0 and n0+8 over k0..k0+15.
__device__ __forceinline__ void load_b_kn(uint32_t (&b)[4], const __nv_bfloat16* x, int pitch, int n0, int k0,
                                          int lane) {
  ldmatrix_x4_trans(b, x + (k0 + (lane & 7) + ((lane >> 3) & 1) * 8) * pitch + n0 + (lane >> 4) * 8);
}

}  // namespace vts::cuda::attn
