#pragma once
// Warp-level tensor-core and async-copy primitives for sm_80+ (the bf16 attention kernels).
//
// mma.sync.m16n8k16 (bf16 in, fp32 accumulate), per lane (g = lane/4, t = lane%4):
//   A 16×16 row-major, 4 registers of bf16x2: a0 (row g, cols 2t..2t+1), a1 (row g+8, same cols),
//                                               a2 (row g, cols 2t+8..), a3 (row g+8, cols 2t+8..)
//   B 16×8 (k × n), 2 registers:                b0 (rows k = 2t..2t+1, col g), b1 (rows 2t+8.., col g)
//   C/D 16×8 fp32, 4 floats:                    c0,c1 (row g, cols 2t..2t+1), c2,c3 (row g+8, ...)
// The C layout of two neighbouring n8 tiles equals the A layout of one k16 chunk, so a product's
// result (rounded to bf16) feeds the next product as its A operand without leaving registers.
//
// ldmatrix.x4 loads four 8×8 bf16 tiles from shared memory; lanes 8i..8i+7 give the row addresses
// of tile i, and each lane receives (row lane/4, cols 2·(lane%4)..+1) of every tile — exactly a
// fragment. With .trans each lane receives the transposed pair instead, which turns a row-major
// [k][n] tile into B fragments (and a [k][m] tile into A fragments).
#include <cuda_bf16.h>

#include <cstdint>

namespace vts::cuda::attn {

__device__ __forceinline__ uint32_t smem_addr(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

// 16-byte global → shared copy that bypasses registers (and L1: .cg). With valid = false the 16
// bytes are zero-filled and nothing is read: rows past the sequence end become zeros, which keeps
// NaN-free arithmetic in padded tiles.
__device__ __forceinline__ void cp_async16(void* smem, const void* gmem, bool valid) {
  const int src_bytes = valid ? 16 : 0;
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem_addr(smem)), "l"(gmem), "r"(src_bytes));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}

__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], const void* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_addr(p)));
}
__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t (&r)[4], const void* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_addr(p)));
}

__device__ __forceinline__ void mma_bf16(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// Two floats → bf16x2 register, the first in the low half (the lower column index, as fragments
// expect).
__device__ __forceinline__ uint32_t pack_bf16(float lo, float hi) {
  const __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<const uint32_t*>(&v);
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
