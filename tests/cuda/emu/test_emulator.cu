// The emulator itself (emu.hpp): the tensor-core operation against a plain matrix product, and the
// faults it promises to report — each kernel below is wrong on purpose and must make its launch
// fail, not hang and not pass. Built only for the emulator (the faulty kernels are not device code
// anyone should run).
#include <catch2/catch.hpp>

#include <cstdint>
#include <cstring>
#include <vector>

#include "common/hw.cuh"
#include "vts/core/dtype.hpp"

namespace {

using vts::cuda::hw::ldmatrix_x4;
using vts::cuda::hw::mma_bf16;

// One warp: A (16×16) and B (16×8, k × n) in row-major global memory, fragments gathered by the
// layout hw.cuh documents, C = A·B stored row-major.
__global__ void mma_from_layout_kernel(const uint16_t* a, const uint16_t* b, float* c) {
  const int lane = threadIdx.x, g = lane / 4, t = lane % 4;
  auto pair = [](const uint16_t* p, int stride_second) {
    return uint32_t(p[0]) | (uint32_t(p[stride_second]) << 16);
  };
  const uint32_t af[4] = {pair(a + g * 16 + 2 * t, 1), pair(a + (g + 8) * 16 + 2 * t, 1),
                          pair(a + g * 16 + 2 * t + 8, 1), pair(a + (g + 8) * 16 + 2 * t + 8, 1)};
  const uint32_t b0 = pair(b + (2 * t) * 8 + g, 8), b1 = pair(b + (2 * t + 8) * 8 + g, 8);
  float acc[4] = {0.0f, 0.0f, 0.0f, 0.0f};
  mma_bf16(acc, af, b0, b1);
  c[g * 8 + 2 * t] = acc[0];
  c[g * 8 + 2 * t + 1] = acc[1];
  c[(g + 8) * 8 + 2 * t] = acc[2];
  c[(g + 8) * 8 + 2 * t + 1] = acc[3];
}

// One warp: a 32 × 8 bf16 tile in shared memory, ldmatrix.x4 (lane l gives row l's address); each
// lane writes what it received.
__global__ void ldmatrix_kernel(const uint16_t* tile, uint32_t* plain, uint32_t* transposed) {
  extern __shared__ uint4 smem[];
  uint16_t* s = reinterpret_cast<uint16_t*>(smem);
  for (int i = threadIdx.x; i < 32 * 8; i += 32) s[i] = tile[i];
  __syncthreads();
  uint32_t r[4];
  ldmatrix_x4(r, s + threadIdx.x * 8);
  for (int i = 0; i < 4; ++i) plain[threadIdx.x * 4 + i] = r[i];
  vts::cuda::hw::ldmatrix_x4_trans(r, s + threadIdx.x * 8);
  for (int i = 0; i < 4; ++i) transposed[threadIdx.x * 4 + i] = r[i];
}

__global__ void warp_sum_kernel(float* x) {
  float v = x[threadIdx.x];
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  x[threadIdx.x] = v;
}

// Warp 0 waits at the block barrier; half of warp 1 at the barrier, the other half at a shuffle.
__global__ void deadlock_kernel(float* x) {
  if (threadIdx.x >= 32 && threadIdx.x % 32 < 16) x[threadIdx.x] = __shfl_xor_sync(0xffffffffu, 1.0f, 1);
  else __syncthreads();
}

// Lanes 16..31 return while lanes 0..15 wait at a full-warp shuffle.
__global__ void early_exit_kernel(float* x) {
  if (threadIdx.x >= 16) return;
  x[threadIdx.x] = __shfl_xor_sync(0xffffffffu, 1.0f, 1);
}

// Half the warp at a shuffle, half at mma.sync.
__global__ void divergent_kernel(float* x) {
  if (threadIdx.x < 16) {
    x[threadIdx.x] = __shfl_xor_sync(0xffffffffu, 1.0f, 1);
  } else {
    const uint32_t a[4] = {0, 0, 0, 0};
    float c[4] = {0, 0, 0, 0};
    mma_bf16(c, a, 0, 0);
    x[threadIdx.x] = c[0];
  }
}

// ldmatrix needs shared memory; this gives it global memory.
__global__ void ldmatrix_global_kernel(const uint16_t* global) {
  uint32_t r[4];
  ldmatrix_x4(r, global + threadIdx.x * 8);
}

__global__ void unwaited_copy_kernel(const float* src) {
  extern __shared__ uint4 smem[];
  vts::cuda::hw::cp_async16(smem + threadIdx.x, src + 4 * threadIdx.x, true);
  vts::cuda::hw::cp_async_commit();
}

__global__ void big_smem_kernel(float* out) {
  extern __shared__ float big[];
  big[threadIdx.x] = 1.0f;
  out[threadIdx.x] = big[threadIdx.x];
}

uint16_t bits(vts::bf16 x) { return x.bits; }
// A wgmma committed but never waited for; with `fence` false, also issued without wgmma.fence.
__global__ void unwaited_wgmma_kernel(float* x, bool fence) {
  extern __shared__ uint4 smem[];
  float d[1][4] = {};
  const uint64_t desc = vts::cuda::hw::wgmma_desc(smem, 128, 256);
  if (fence) vts::cuda::hw::wgmma_fence();
  vts::cuda::hw::Wgmma<8>::ss<0>(d, desc, desc);
  vts::cuda::hw::wgmma_commit();
  x[threadIdx.x] = d[0][0];
}

// 128 threads copy 4 KB into shared memory by cp.async, wait, then one m64n8k16 reads it. The
// order that makes the bytes visible to wgmma: wait, fence.proxy.async, barrier; `fence_first`
// puts the fence before the wait, where it orders nothing that has landed since.
__global__ void copied_operand_wgmma_kernel(const float* src, float* x, bool fence_first) {
  extern __shared__ uint4 smem[];
  for (int i = threadIdx.x; i < 256; i += 128) vts::cuda::hw::cp_async16(smem + i, src + 4 * i, true);
  vts::cuda::hw::cp_async_commit();
  if (fence_first) vts::cuda::hw::fence_proxy_async();
  vts::cuda::hw::cp_async_wait<0>();
  if (!fence_first) vts::cuda::hw::fence_proxy_async();
  __syncthreads();
  float d[1][4] = {};
  const uint64_t desc = vts::cuda::hw::wgmma_desc(smem, 128, 256);
  vts::cuda::hw::wgmma_fence();
  vts::cuda::hw::Wgmma<8>::ss<0>(d, desc, desc);
  vts::cuda::hw::wgmma_commit();
  vts::cuda::hw::wgmma_wait<0>();
  x[threadIdx.x] = d[0][0];
}

float value(uint16_t b) {
  vts::bf16 h;
  h.bits = b;
  return static_cast<float>(h);
}

}  // namespace

TEST_CASE("vts-emu: mma.sync.m16n8k16 with fragments in the documented layout is A·B", "[emulator]") {
  std::vector<uint16_t> a(16 * 16), b(16 * 8);
  for (size_t i = 0; i < a.size(); ++i) a[i] = bits(vts::bf16(float(int(i * 7 % 23) - 11) / 8.0f));
  for (size_t i = 0; i < b.size(); ++i) b[i] = bits(vts::bf16(float(int(i * 5 % 19) - 9) / 4.0f));
  std::vector<float> c(16 * 8, -1.0f);
  mma_from_layout_kernel<<<1, 32>>>(a.data(), b.data(), c.data());
  REQUIRE(cudaGetLastError() == cudaSuccess);
  for (int i = 0; i < 16; ++i)
    for (int j = 0; j < 8; ++j) {
      float want = 0.0f;
      for (int k = 0; k < 16; ++k) want += value(a[i * 16 + k]) * value(b[k * 8 + j]);
      INFO("C(" << i << ", " << j << ")");
      CHECK(c[i * 8 + j] == want);  // small integers over powers of two: exact
    }
}

TEST_CASE("vts-emu: ldmatrix.x4 and .trans deliver the documented fragments", "[emulator]") {
  std::vector<uint16_t> tile(32 * 8);
  for (size_t i = 0; i < tile.size(); ++i) tile[i] = static_cast<uint16_t>(i);  // element (row, col) = 8·row + col
  std::vector<uint32_t> plain(32 * 4), transposed(32 * 4);
  cudaFuncSetAttribute(ldmatrix_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, 1024);
  ldmatrix_kernel<<<1, 32, 32 * 8 * 2>>>(tile.data(), plain.data(), transposed.data());
  REQUIRE(cudaGetLastError() == cudaSuccess);
  for (int lane = 0; lane < 32; ++lane)
    for (int i = 0; i < 4; ++i) {
      const int g = lane / 4, t = lane % 4, row0 = 8 * i;  // tile i = rows 8i..8i+7
      const uint32_t want_plain = uint32_t(8 * (row0 + g) + 2 * t) | (uint32_t(8 * (row0 + g) + 2 * t + 1) << 16);
      const uint32_t want_trans = uint32_t(8 * (row0 + 2 * t) + g) | (uint32_t(8 * (row0 + 2 * t + 1) + g) << 16);
      INFO("lane " << lane << " register " << i);
      CHECK(plain[size_t(lane * 4 + i)] == want_plain);
      CHECK(transposed[size_t(lane * 4 + i)] == want_trans);
    }
}

TEST_CASE("vts-emu: a warp shuffle reduction gives every lane the sum", "[emulator]") {
  std::vector<float> x(32);
  for (int i = 0; i < 32; ++i) x[size_t(i)] = float(i);
  warp_sum_kernel<<<1, 32>>>(x.data());
  REQUIRE(cudaGetLastError() == cudaSuccess);
  for (float v : x) CHECK(v == 496.0f);
}

TEST_CASE("vts-emu: broken kernels make their launch fail instead of hanging or passing", "[emulator]") {
  std::vector<float> x(128, 0.0f);
  std::vector<uint16_t> g(32 * 8, 0);
  SECTION("a barrier and a shuffle that parts of the block never all reach") {
    deadlock_kernel<<<1, 64>>>(x.data());
    CHECK(cudaGetLastError() == cudaErrorLaunchFailure);
  }
  SECTION("lanes that exit while the rest of the warp waits at a shuffle") {
    early_exit_kernel<<<1, 32>>>(x.data());
    CHECK(cudaGetLastError() == cudaErrorLaunchFailure);
  }
  SECTION("a warp split between two different collectives") {
    divergent_kernel<<<1, 32>>>(x.data());
    CHECK(cudaGetLastError() == cudaErrorLaunchFailure);
  }
  SECTION("ldmatrix from global memory") {
    ldmatrix_global_kernel<<<1, 32>>>(g.data());
    CHECK(cudaGetLastError() == cudaErrorLaunchFailure);
  }
  SECTION("cp.async copies never waited for") {
    unwaited_copy_kernel<<<1, 32, 32 * 16>>>(x.data());
    CHECK(cudaGetLastError() == cudaErrorLaunchFailure);
  }
  SECTION("a wgmma never waited for") {
    unwaited_wgmma_kernel<<<1, 128, 4096>>>(x.data(), true);
    CHECK(cudaGetLastError() == cudaErrorLaunchFailure);
  }
  SECTION("a wgmma issued without wgmma.fence") {
    unwaited_wgmma_kernel<<<1, 128, 4096>>>(x.data(), false);
    CHECK(cudaGetLastError() == cudaErrorLaunchFailure);
  }
  SECTION("a wgmma reading cp.async bytes its writers fenced before their wait, not after") {
    std::vector<float> src(1024, 0.0f);
    copied_operand_wgmma_kernel<<<1, 128, 4096>>>(src.data(), x.data(), false);
    REQUIRE(cudaGetLastError() == cudaSuccess);
    copied_operand_wgmma_kernel<<<1, 128, 4096>>>(src.data(), x.data(), true);
    CHECK(cudaGetLastError() == cudaErrorLaunchFailure);
  }
  SECTION("more dynamic shared memory than the kernel opted into") {
    big_smem_kernel<<<1, 32, 64 * 1024>>>(x.data());
    CHECK(cudaGetLastError() == cudaErrorInvalidValue);
    REQUIRE(cudaFuncSetAttribute(big_smem_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, 64 * 1024) ==
            cudaSuccess);
    big_smem_kernel<<<1, 32, 64 * 1024>>>(x.data());
    CHECK(cudaGetLastError() == cudaSuccess);
    CHECK(x[5] == 1.0f);
  }
}
