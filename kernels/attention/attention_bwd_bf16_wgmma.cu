// Fused attention backward, bf16, on Hopper's warpgroup MMA (wgmma, sm_90a): D = 64, N ≤ 256 —
// the split backward's two kernels (attention_bwd_bf16_split.cu) rebuilt on the forward's
// tiles (wgmma_tiles.cuh), a head's whole other side resident in shared memory.
//
// Why. At B = 32, H = 12, N = 197 the mma.sync backwards take 124–132 µs on an H200 against
// cuDNN's 86 (docs/perf.md, 2026-12-04); like the forward they are chains of ldmatrix and
// dependent mma.sync per warp. Here each product of a 64-row block is a few wgmma instructions
// with operands read from shared memory by descriptor.
//
//   1. dQ kernel, grid (⌈N/64⌉, H, B), one warpgroup per 64 queries. Q, dO (64 rows each) and the
//      head's K and V in shared memory. Prologue: δ and lse2 of its rows into the workspace for
//      kernel 2 (bwd_row_stats.cuh, as the split kernel). Per key chunk (64 keys, the last 8–64):
//      S = Q·Kᵀ and dP = dO·Vᵀ (both K-major operands: 8 wgmma), P = exp2(c·S − lse2),
//      dS = P ∘ (dP − δ), then dQ += dS·K with dS as A fragments and K as an MN-major B (4).
//   2. dK/dV kernel, grid (⌈N/64⌉, H, B), one warpgroup per 64 keys. K, V of its keys and the
//      head's Q, dO, lse2 and δ in shared memory. Per query chunk: Sᵀ = K·Qᵀ and dPᵀ = V·dOᵀ (8),
//      Pᵀ = exp2(c·Sᵀ − lse2) with lse2 of the chunk's columns, dSᵀ = Pᵀ ∘ (dPᵀ − δ), then
//      dV += Pᵀ·dO and dK += dSᵀ·Q (Pᵀ, dSᵀ as A fragments, dO and Q MN-major: 8).
// Both kernels see every row of the other side, so no atomics: deterministic, like the split.
// Work: 7 products of 2·N²·D per head, as the split (S and dP in both kernels); the tensor cores
// run each batch asynchronously and the exponentials (N² per head per kernel) are the rest.
// Shared memory at N = 197: dQ kernel 16 + 2 × 32 KB = 80 KB; dK/dV kernel 16 + 2 × 32 KB + 2 KB
// (lse2, δ) = 82 KB: 2 blocks an SM.
//
// Padding: rows past N are zero-filled, never NaN, wherever they meet a product: keys past N get
// S = −inf in kernel 1 (P = 0); queries past N have lse2 = +inf and δ = 0 in the workspace
// (P = 0, dS = 0) in kernel 2; kernel 2's keys past N compute rows that are not stored.
#include "attention/bwd_row_stats.cuh"
#include "attention/wgmma_tiles.cuh"
#include "vts/backend/cuda/memory.hpp"

namespace vts::cuda::attn {

namespace {

using namespace wg;

__device__ __forceinline__ int64_t ws_row(int b, int h, int H, int npad) { return (int64_t(b) * H + h) * npad; }

// Writes rows row0 + 16·warp + g (+ 8) of a 64-row block's result, those before N, times `scale`.
__device__ __forceinline__ void store_rows(const HeadLayout<__nv_bfloat16>& out, int b, int h, int row0, int N,
                                           const float (&acc)[kD / 8][4], float scale) {
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    const int row = row0 + 16 * warp + g + 8 * r;
    if (row >= N) continue;
    __nv_bfloat16* p = row_ptr(out, b, h, row) + 2 * t;
#pragma unroll
    for (int j = 0; j < kD / 8; ++j)
      *reinterpret_cast<uint32_t*>(p + j * 8) = pack_bf16(acc[j][2 * r] * scale, acc[j][2 * r + 1] * scale);
  }
}

template <int kFull, int kTail>
__global__ void __launch_bounds__(kThreads, 2)
    attention_bwd_bf16_wgmma_dq_kernel(const BwdArgs<__nv_bfloat16> a, float* lse2_ws, float* delta_ws, int npad) {
#if !defined(__CUDA_ARCH__) || defined(__CUDA_ARCH_FEAT_SM90_ALL)
  using hw::Wgmma;
  extern __shared__ uint4 smem_u4[];
  constexpr int kSteps = kTailSteps<kTail>;
  constexpr int kKeyRows = (kFull + 1) * kBlock;
  unsigned char* Qs = reinterpret_cast<unsigned char*>(smem_u4);
  unsigned char* dOs = Qs + kTileBytes;
  unsigned char* Ks = dOs + kTileBytes;
  unsigned char* Vs = Ks + kKeyRows * kRowBytes;

  const int b = blockIdx.z, h = blockIdx.y, q0 = blockIdx.x * kBlock, N = a.N;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, t = lane % 4;
  const float c = a.scale * kLog2e;

  load_rows<kBlock>(Qs, N - q0, row_ptr(a.q, b, h, q0), a.q.sn);
  load_rows<kBlock>(dOs, N - q0, row_ptr(a.dout, b, h, q0), a.dout.sn);
  // K is read as S's B (the last chunk's kTail rows) and as dQ's B (its 16-key steps), V as dP's B.
  load_rows<kFull * kBlock + 16 * kSteps>(Ks, N, row_ptr(a.k, b, h, 0), a.k.sn);
  load_rows<kFull * kBlock + kTail>(Vs, N, row_ptr(a.v, b, h, 0), a.v.sn);
  cp_async_commit();

  float delta[2], lse2[2];
  query_row_stats<kD>(a, b, h, q0 + 16 * warp, lane, lse2_ws + ws_row(b, h, a.H, npad),
                      delta_ws + ws_row(b, h, a.H, npad), delta, lse2);

  cp_async_wait<0>();
  hw::fence_proxy_async();
  __syncthreads();

  float dq[kD / 8][4];
  zero(dq);
  // One key chunk of kCols columns at key0: S and dP, then dS, then dQ += dS·K. Only the last chunk
  // (`last`) can hold keys past N: the full chunks skip the mask's compare and select.
  auto chunk = [&](int key0, auto cols, auto last) {
    constexpr int kCols = decltype(cols)::value;
    float s[kCols / 8][4], dp[kCols / 8][4];
    two_products_over_d<kCols>(s, dp, Qs, Ks, dOs, Vs, key0);
    // Element (query g + 8·(e/2), key key0 + 8j + 2t + e%2); keys past N: P = 0.
    const int valid = N - key0;
#pragma unroll
    for (int j = 0; j < kCols / 8; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int r = e >> 1;
        const bool key_ok = !decltype(last)::value || 8 * j + 2 * t + (e & 1) < valid;
        const float p = key_ok ? hw::exp2_ftz(s[j][e] * c - lse2[r]) : 0.0f;
        dp[j][e] = p * (dp[j][e] - delta[r]);
      }
    uint32_t ds[kTailSteps<kCols>][4];
    chunk_to_a<kCols>(ds, dp);
    hw::wgmma_pin(dq);
    hw::wgmma_pin(ds);
    hw::wgmma_fence();
#pragma unroll
    for (int kc = 0; kc < kTailSteps<kCols>; ++kc) Wgmma<kD>::template rs<1>(dq, ds[kc], rows_as_k(Ks, key0 + 16 * kc));
    hw::wgmma_commit();  // waited for by the next chunk's products, or below
  };
#pragma unroll
  for (int ch = 0; ch < kFull; ++ch) chunk(ch * kBlock, std::integral_constant<int, kBlock>{}, std::false_type{});
  chunk(kFull * kBlock, std::integral_constant<int, kTail>{}, std::true_type{});
  hw::wgmma_wait<0>();
  hw::wgmma_pin(dq);
  store_rows(a.dq, b, h, q0, N, dq, a.scale);
#else
  __trap();  // built for sm_90a only
#endif
}

template <int kFull, int kTail>
__global__ void __launch_bounds__(kThreads, 2)
    attention_bwd_bf16_wgmma_dkv_kernel(const BwdArgs<__nv_bfloat16> a, const float* lse2_ws, const float* delta_ws,
                                        int npad) {
#if !defined(__CUDA_ARCH__) || defined(__CUDA_ARCH_FEAT_SM90_ALL)
  using hw::Wgmma;
  extern __shared__ uint4 smem_u4[];
  constexpr int kSteps = kTailSteps<kTail>;
  constexpr int kQueryRows = (kFull + 1) * kBlock;
  unsigned char* Ks = reinterpret_cast<unsigned char*>(smem_u4);
  unsigned char* Vs = Ks + kTileBytes;
  unsigned char* Qs = Vs + kTileBytes;
  unsigned char* dOs = Qs + kQueryRows * kRowBytes;
  float* lse2_s = reinterpret_cast<float*>(dOs + kQueryRows * kRowBytes);  // [kQueryRows]
  float* delta_s = lse2_s + kQueryRows;                                      // [kQueryRows]

  const int b = blockIdx.z, h = blockIdx.y, k0 = blockIdx.x * kBlock, N = a.N;
  const int lane = threadIdx.x % 32, t = lane % 4;
  const float c = a.scale * kLog2e;

  load_rows<kBlock>(Ks, N - k0, row_ptr(a.k, b, h, k0), a.k.sn);
  load_rows<kBlock>(Vs, N - k0, row_ptr(a.v, b, h, k0), a.v.sn);
  // Q and dO are read as Sᵀ's and dPᵀ's B (kTail rows of the last chunk) and as dK's and dV's B
  // (its 16-query steps).
  constexpr int kQueryRowsRead = kFull * kBlock + 16 * kSteps;
  load_rows<kQueryRowsRead>(Qs, N, row_ptr(a.q, b, h, 0), a.q.sn);
  load_rows<kQueryRowsRead>(dOs, N, row_ptr(a.dout, b, h, 0), a.dout.sn);
  // lse2 and δ: the workspace rows are padded to npad = 64·(kFull + 1) = kQueryRows.
  const float* lse2_row = lse2_ws + ws_row(b, h, a.H, npad);
  const float* delta_row = delta_ws + ws_row(b, h, a.H, npad);
  for (int i = threadIdx.x; i < 2 * kQueryRows / 4; i += kThreads) {
    const bool is_lse = i < kQueryRows / 4;
    const int chunk = is_lse ? i : i - kQueryRows / 4;
    cp_async16((is_lse ? lse2_s : delta_s) + 4 * chunk, (is_lse ? lse2_row : delta_row) + 4 * chunk, true);
  }
  cp_async_commit();

  float dk[kD / 8][4], dv[kD / 8][4];
  zero(dk);
  zero(dv);
  cp_async_wait<0>();
  hw::fence_proxy_async();
  __syncthreads();

  // One query chunk of kCols columns at q0: Sᵀ and dPᵀ, then Pᵀ and dSᵀ, then dV and dK.
  auto chunk = [&](int q0, auto cols) {
    constexpr int kCols = decltype(cols)::value;
    float s[kCols / 8][4], dp[kCols / 8][4];
    two_products_over_d<kCols>(s, dp, Ks, Qs, Vs, dOs, q0);
    // Element (key g + 8·(e/2), query q0 + 8j + 2t + e%2): P and dS in place of S and dP.
#pragma unroll
    for (int j = 0; j < kCols / 8; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int q = q0 + 8 * j + 2 * t + (e & 1);
        s[j][e] = hw::exp2_ftz(s[j][e] * c - lse2_s[q]);
        dp[j][e] = s[j][e] * (dp[j][e] - delta_s[q]);
      }
    uint32_t pa[kTailSteps<kCols>][4], dsa[kTailSteps<kCols>][4];
    chunk_to_a<kCols>(pa, s);
    chunk_to_a<kCols>(dsa, dp);
    hw::wgmma_pin(dv);
    hw::wgmma_pin(dk);
    hw::wgmma_pin(pa);
    hw::wgmma_pin(dsa);
    hw::wgmma_fence();
#pragma unroll
    for (int kc = 0; kc < kTailSteps<kCols>; ++kc) {
      Wgmma<kD>::template rs<1>(dv, pa[kc], rows_as_k(dOs, q0 + 16 * kc));
      Wgmma<kD>::template rs<1>(dk, dsa[kc], rows_as_k(Qs, q0 + 16 * kc));
    }
    hw::wgmma_commit();  // waited for by the next chunk's products, or below
  };
#pragma unroll
  for (int ch = 0; ch < kFull; ++ch) chunk(ch * kBlock, std::integral_constant<int, kBlock>{});
  chunk(kFull * kBlock, std::integral_constant<int, kTail>{});
  hw::wgmma_wait<0>();
  hw::wgmma_pin(dv);
  hw::wgmma_pin(dk);
  store_rows(a.dk, b, h, k0, N, dk, a.scale);
  store_rows(a.dv, b, h, k0, N, dv, 1.0f);
#else
  __trap();  // built for sm_90a only
#endif
}

template <int kFull, int kTail>
struct Backward {
  static void run(const BwdArgs<__nv_bfloat16>& a) {
    constexpr int kRows = (kFull + 1) * kBlock;  // either side, padded to whole blocks
    const int npad = kRows;
    const size_t ws_floats = size_t(a.B) * size_t(a.H) * size_t(npad);
    DeviceBuffer workspace(2 * ws_floats * sizeof(float));  // lse2, then δ; stream-ordered reuse
    float* lse2_ws = workspace.as<float>();
    float* delta_ws = lse2_ws + ws_floats;
    const dim3 grid(static_cast<unsigned>(kFull + 1), static_cast<unsigned>(a.H), static_cast<unsigned>(a.B));

    constexpr size_t dq_smem = 2 * size_t(kTileBytes) + 2 * size_t(kRows) * kRowBytes;
    auto dq_kernel = attention_bwd_bf16_wgmma_dq_kernel<kFull, kTail>;
    VTS_CUDA_CHECK(
        cudaFuncSetAttribute(dq_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(dq_smem)));
    dq_kernel<<<grid, kThreads, dq_smem, current_stream()>>>(a, lse2_ws, delta_ws, npad);
    VTS_CUDA_CHECK_LAUNCH("attention_bwd_bf16_wgmma_dq_kernel");

    constexpr size_t dkv_smem = dq_smem + 2 * size_t(kRows) * sizeof(float);
    auto dkv_kernel = attention_bwd_bf16_wgmma_dkv_kernel<kFull, kTail>;
    VTS_CUDA_CHECK(
        cudaFuncSetAttribute(dkv_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(dkv_smem)));
    dkv_kernel<<<grid, kThreads, dkv_smem, current_stream()>>>(a, lse2_ws, delta_ws, npad);
    VTS_CUDA_CHECK_LAUNCH("attention_bwd_bf16_wgmma_dkv_kernel");
  }
};

}  // namespace

void backward_bf16_wgmma(const BwdArgs<__nv_bfloat16>& a) { wg::dispatch_on_n<Backward>(a.N, a); }

}  // namespace vts::cuda::attn
