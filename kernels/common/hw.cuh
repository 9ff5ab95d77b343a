#pragma once
// Every piece of inline PTX in vts::cuda: the only code in kernels/ that is not CUDA C++. Keeping it
// in one header is what lets tests/cuda/emu (the CPU emulator that runs these kernels without a
// GPU) substitute its own version of exactly this file.
//
// mma.sync.m16n8k16 (bf16 in, fp32 accumulate), per lane (g = lane/4, t = lane%4):
//   A 16×16 row-major, 4 registers of bf16x2: a0 (row g, cols 2t..2t+1), a1 (row g+8, same cols),
//                                               a2 (row g, cols 2t+8..), a3 (row g+8, cols 2t+8..)
//   B 16×8 (k × n), 2 registers:                b0 (rows k = 2t..2t+1, col g), b1 (rows 2t+8.., col g)
//   C/D 16×8 fp32, 4 floats:                    c0,c1 (row g, cols 2t..2t+1), c2,c3 (row g+8, ...)
//
// ldmatrix.x4 loads four 8×8 bf16 tiles from shared memory; lanes 8i..8i+7 give the row addresses
// of tile i, and each lane receives (row lane/4, cols 2·(lane%4)..+1) of every tile — exactly a
// fragment. With .trans each lane receives the transposed pair instead: (rows 2·(lane%4)..+1,
// col lane/4) of the tile as stored.
#include <cstdint>

namespace vts::cuda::hw {

__device__ __forceinline__ uint32_t smem_addr(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

// 16-byte global → shared copy that bypasses registers (and L1: .cg). With valid = false the 16
// bytes are zero-filled and nothing is read.
__device__ __forceinline__ void cp_async16(void* smem, const void* gmem, bool valid) {
  const int src_bytes = valid ? 16 : 0;
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem_addr(smem)), "l"(gmem), "r"(src_bytes));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
// Waits until at most N of this thread's committed groups are still in flight. Other threads see
// the data only after a barrier.
template <int N>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}

// Keeps the compiler from moving memory accesses across this point: for a thread that reads back
// its own cp.async copies, whose wait and copy instructions are not barriers to the compiler (the
// kernels that share copies use __syncthreads, which is).
__device__ __forceinline__ void compiler_fence() { asm volatile("" ::: "memory"); }

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

// 2^x by the special-function unit alone (ex2.approx.ftz). exp2f compiles to the same MUFU.EX2 plus
// three instructions (a compare, and two predicated multiplies that scale inputs below -126 so the
// result can be subnormal) — about a third of the issue cost of each attention probability. Results
// are exp2f's bits wherever 2^x is a normal number; below 2^-126 they are 0. A probability that
// small (relative to the row maximum or through the lse) adds nothing a bf16 or fp32 output holds.
__device__ __forceinline__ float exp2_ftz(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
  return y;
}

// c += a·b for one m16n8k16 tile (fragments as above).
__device__ __forceinline__ void mma_bf16(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// --- wgmma (sm_90a only: the kernels that use it are compiled for that target alone) -------------
//
// wgmma.mma_async: one warpgroup (4 consecutive warps, the first a multiple of 4) computes
// D[64×n] += A[64×16]·B[16×n]. Warp w of the group holds rows 16w..16w+15 of D in exactly the
// mma.sync C layout above, one 4-float tile per 8 columns (d[j] = columns 8j..8j+7); A from registers
// is mma.sync's A fragment of the warp's 16 rows. Operands in shared memory are named by a
// descriptor; these kernels use only the layout without swizzle, in which a "core matrix" is
// 8 rows of 16 contiguous bytes (8 bf16), 128 bytes in a row:
//   K-major (A, or B stored [n][k]): element (row r, k) at start + (r%8)·16 + (r/8)·sbo + (k%8)·2 + (k/8)·lbo
//   MN-major (B stored [k][n]):       element (k, n) at start + (n%8)·2 + (n/8)·sbo + (k%8)·16 + (k/8)·lbo
// (lbo: between core matrices along k; sbo: along m or n). The instruction is asynchronous: its
// registers must not be touched, nor its shared memory rewritten, until wgmma_wait says its group
// is done; wgmma_fence must come between other instructions' writes of those registers and it.
__device__ __forceinline__ uint64_t wgmma_desc(const void* smem, uint32_t lbo_bytes, uint32_t sbo_bytes) {
  return uint64_t((smem_addr(smem) >> 4) & 0x3fff) | uint64_t((lbo_bytes >> 4) & 0x3fff) << 16 |
         uint64_t((sbo_bytes >> 4) & 0x3fff) << 32;  // base offset 0, no swizzle (bits 62-63 = 0)
}

#if !defined(__CUDA_ARCH__) || defined(__CUDA_ARCH_FEAT_SM90_ALL)
__device__ __forceinline__ void wgmma_fence() { asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory"); }
__device__ __forceinline__ void wgmma_commit() { asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory"); }
template <int N>
__device__ __forceinline__ void wgmma_wait() {
  asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(N) : "memory");
}
// Makes this thread's ordinary shared-memory writes (cp.async included) visible to the tensor
// cores' reads through descriptors (the async proxy); then a barrier, for other threads' writes.
__device__ __forceinline__ void fence_proxy_async() { asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory"); }

// Pins registers an asynchronous wgmma reads or writes at this point of the instruction stream: the
// compiler may otherwise move a register's initialisation below wgmma_fence, or a read of a result
// above wgmma_wait, since neither asm names the registers (ptxas then inserts waits of its own).
template <int N>
__device__ __forceinline__ void wgmma_pin(float (&d)[N][4]) {
#pragma unroll
  for (int j = 0; j < N; ++j)
#pragma unroll
    for (int e = 0; e < 4; ++e) asm volatile("" : "+f"(d[j][e])::"memory");
}
template <int N>
__device__ __forceinline__ void wgmma_pin(uint32_t (&a)[N][4]) {
#pragma unroll
  for (int j = 0; j < N; ++j)
#pragma unroll
    for (int e = 0; e < 4; ++e) asm volatile("" : "+r"(a[j][e])::"memory");
}

#define VTS_WGMMA_D4(j) "+f"(d[j][0]), "+f"(d[j][1]), "+f"(d[j][2]), "+f"(d[j][3])
#define VTS_WGMMA_D8 VTS_WGMMA_D4(0), VTS_WGMMA_D4(1)
#define VTS_WGMMA_D16 VTS_WGMMA_D8, VTS_WGMMA_D4(2), VTS_WGMMA_D4(3)
#define VTS_WGMMA_D32 VTS_WGMMA_D16, VTS_WGMMA_D4(4), VTS_WGMMA_D4(5), VTS_WGMMA_D4(6), VTS_WGMMA_D4(7)
#define VTS_WGMMA_R4 "{%0, %1, %2, %3}"
#define VTS_WGMMA_R8 "{%0, %1, %2, %3, %4, %5, %6, %7}"
#define VTS_WGMMA_R16 "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15}"
#define VTS_WGMMA_R32                                                                                     \
  "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, " \
  "%22, %23, %24, %25, %26, %27, %28, %29, %30, %31}"
// One n per specialisation (the register list is part of the instruction). kTransB: 0 for a
// K-major B, 1 for an MN-major one. Scale-d is 1: D accumulates (start from zeroed registers).
#define VTS_WGMMA_SHAPE(n, regs, dlist, k, a1, a2, a3, a4, b)                                                   \
  template <>                                                                                                 \
  struct Wgmma<n> {                                                                                           \
    template <int kTransB>                                                                                    \
    static __device__ __forceinline__ void ss(float (&d)[n / 8][4], uint64_t a, uint64_t b_desc) {           \
      asm volatile("wgmma.mma_async.sync.aligned.m64n" #n "k16.f32.bf16.bf16 " regs ", %" #k ", %" #a1        \
                   ", 1, 1, 1, 0, %" #a2 ";\n"                                                                \
                   : dlist                                                                                    \
                   : "l"(a), "l"(b_desc), "n"(kTransB));                                                      \
    }                                                                                                         \
    template <int kTransB>                                                                                    \
    static __device__ __forceinline__ void rs(float (&d)[n / 8][4], const uint32_t (&a)[4], uint64_t b_desc) { \
      asm volatile("wgmma.mma_async.sync.aligned.m64n" #n "k16.f32.bf16.bf16 " regs ", {%" #k ", %" #a1       \
                   ", %" #a2 ", %" #a3 "}, %" #a4 ", 1, 1, 1, %" #b ";\n"                                      \
                   : dlist                                                                                    \
                   : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b_desc), "n"(kTransB));                  \
    }                                                                                                         \
  };
template <int N>
struct Wgmma;
VTS_WGMMA_SHAPE(8, VTS_WGMMA_R4, VTS_WGMMA_D4(0), 4, 5, 6, 7, 8, 9)
VTS_WGMMA_SHAPE(16, VTS_WGMMA_R8, VTS_WGMMA_D8, 8, 9, 10, 11, 12, 13)
VTS_WGMMA_SHAPE(32, VTS_WGMMA_R16, VTS_WGMMA_D16, 16, 17, 18, 19, 20, 21)
VTS_WGMMA_SHAPE(64, VTS_WGMMA_R32, VTS_WGMMA_D32, 32, 33, 34, 35, 36, 37)
#undef VTS_WGMMA_SHAPE
#undef VTS_WGMMA_D4
#undef VTS_WGMMA_D8
#undef VTS_WGMMA_D16
#undef VTS_WGMMA_D32
#undef VTS_WGMMA_R4
#undef VTS_WGMMA_R8
#undef VTS_WGMMA_R16
#undef VTS_WGMMA_R32
#endif

}  // namespace vts::cuda::hw
