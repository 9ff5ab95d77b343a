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

// c += a·b for one m16n8k16 tile (fragments as above).
__device__ __forceinline__ void mma_bf16(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}


}  // namespace vts::cuda::hw
