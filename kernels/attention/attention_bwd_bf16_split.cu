// Fused attention backward, bf16 on tensor cores, split into two kernels — the layout for any N,
// and the candidate against cuDNN at N = 197 (selectable there until a device has timed it; see
// docs/cuda.md). The one-CTA-per-head kernel (attention_bwd_bf16.cu) keeps a head's whole K and V
// in shared memory and so stops at N = 256; this one never holds more than 64 keys or 64 queries:
//
//   1. dQ kernel, grid (⌈N/64⌉, H, B), 4 warps, warp w owns 16 query rows (the forward kernel's
//      shape). Q and dO fragments stay in registers; K and V stream through a two-slot cp.async
//      ring of 64-key tiles, taken in halves of 32 keys (fewer live registers): S = Q·Kᵀ,
//      dP = dO·Vᵀ, P = exp2(c·S − lse2), dS = P ∘ (dP − δ), dQ += dS·K with dS fed back as A
//      fragments. Its prologue computes δ = rowsum(dO ∘ O) for its rows and writes δ and lse·log2 e
//      to a workspace, padded to whole 64-row blocks (δ = 0, lse2 = +inf past N), for kernel 2.
//   2. dK/dV kernel, grid (⌈N/64⌉, H, B), 4 warps, warp w owns 16 keys: the key side of the
//      one-CTA kernel (bwd_bf16_keys.cuh) over query blocks of 32, whose Q, dO, lse2 and δ come
//      through a two-slot cp.async ring; one barrier per query block.
//
// Work: 7 products of 2·N²·D per (b, h) instead of 5 (S and dP are computed by both kernels):
// 14·B·H·N²·D = 13.4 GFLOP at B = 32, H = 12, N = 197, D = 64, still ≈ 15–20 µs at what mma.sync
// reaches. What it buys: ⌈N/64⌉ CTAs of 4 warps per head instead of one of ⌈N/16⌉ warps (1,536
// CTAs instead of 384 at that shape), no phase-2 barrier, and a balanced tail; dQ needs no
// cross-CTA sum (its kernel sees every key), so the result stays deterministic. Costs: a second
// launch, the workspace (2 · B·H·⌈N/64⌉·64 floats, 0.8 MB at that shape), and the re-reads from
// L2 of K/V (kernel 1) and Q/dO (kernel 2) by each of a head's ⌈N/64⌉ blocks.
#include "attention/bwd_bf16_keys.cuh"
#include "attention/bwd_row_stats.cuh"
#include "vts/backend/cuda/memory.hpp"

namespace vts::cuda::attn {

namespace {

constexpr int kWarps = 4;
constexpr int kRows = 16 * kWarps;  // queries per dQ block, keys per dK/dV block, keys per tile
constexpr int BQ = 32;              // queries per step of the dK/dV kernel

template <int D>
constexpr int kPitch = D + 8;  // bf16; the 16-byte pad keeps every ldmatrix free of bank conflicts

template <int D>
constexpr size_t kDqSmem = size_t(kRows) * 6 * kPitch<D> * sizeof(__nv_bfloat16);  // Q, dO, 2 × (K, V)
template <int D>
constexpr size_t kDkvSmem =
    (size_t(kRows) * 2 + size_t(BQ) * 4) * kPitch<D> * sizeof(__nv_bfloat16) + 2 * 2 * BQ * sizeof(float);

// ROWS rows of D bf16 into shared memory (pitch kPitch<D>) by the block's threads, zero-filled past
// `valid`; every thread's copies unrolled (attention.cuh).
template <int D, int ROWS>
__device__ __forceinline__ void load_block_rows(__nv_bfloat16* dst, int valid, const __nv_bfloat16* src,
                                                int64_t stride) {
  load_rows_unrolled<D, kPitch<D>, kWarps * 32, ROWS>(dst, valid, src, stride);
}

// Row of (b, h) in the workspaces.
__device__ __forceinline__ int64_t ws_row(int b, int h, int H, int npad) { return (int64_t(b) * H + h) * npad; }

template <int D>
__global__ void __launch_bounds__(kWarps * 32, 4)
    attention_bwd_bf16_dq_kernel(const BwdArgs<__nv_bfloat16> a, float* lse2_ws, float* delta_ws, int npad) {
  constexpr int P = kPitch<D>;
  constexpr int KD = D / 16;  // k16 chunks over the head dim
  constexpr int DT = D / 8;   // n8 tiles over the head dim
  constexpr int KH = 32;      // keys per half tile
  extern __shared__ uint4 smem_u4[];
  __nv_bfloat16* Qs = reinterpret_cast<__nv_bfloat16*>(smem_u4);  // [kRows][P]
  __nv_bfloat16* dOs = Qs + kRows * P;                             // [kRows][P]
  __nv_bfloat16* Ks = dOs + kRows * P;                             // [2][kRows][P]
  __nv_bfloat16* Vs = Ks + 2 * kRows * P;                          // [2][kRows][P]

  const int b = blockIdx.z, h = blockIdx.y, q0 = blockIdx.x * kRows;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
  const int N = a.N, ntiles = (N + kRows - 1) / kRows;
  const float c = a.scale * kLog2e;
  const int qw = q0 + warp * 16;  // the warp's first query
  const bool active = qw < N;     // a warp whose rows all lie past N only loads and pads

  // Prologue: Q, dO and key tile 0 in group 0, key tile 1 in group 1.
  load_block_rows<D, kRows>(Qs, N - q0, row_ptr(a.q, b, h, q0), a.q.sn);
  load_block_rows<D, kRows>(dOs, N - q0, row_ptr(a.dout, b, h, q0), a.dout.sn);
  for (int tt = 0; tt < 2 && tt < ntiles; ++tt) {
    const int k0 = tt * kRows;
    load_block_rows<D, kRows>(Ks + tt * kRows * P, N - k0, row_ptr(a.k, b, h, k0), a.k.sn);
    load_block_rows<D, kRows>(Vs + tt * kRows * P, N - k0, row_ptr(a.v, b, h, k0), a.v.sn);
    cp_async_commit();
  }

  // δ and lse2 of the warp's 16 rows, while the tiles load; rows past N too, as kernel 2's padding.
  float delta[2], lse2[2];
  query_row_stats<D>(a, b, h, qw, lane, lse2_ws + ws_row(b, h, a.H, npad), delta_ws + ws_row(b, h, a.H, npad), delta,
                     lse2);

  if (ntiles > 1) cp_async_wait<1>();
  else cp_async_wait<0>();
  __syncthreads();
  uint32_t qf[KD][4], of[KD][4];
  if (active) {
#pragma unroll
    for (int kk = 0; kk < KD; ++kk) {
      load_a(qf[kk], Qs, P, warp * 16, kk * 16, lane);
      load_a(of[kk], dOs, P, warp * 16, kk * 16, lane);
    }
  }
  float dq[DT][4];
#pragma unroll
  for (int j = 0; j < DT; ++j) dq[j][0] = dq[j][1] = dq[j][2] = dq[j][3] = 0.0f;

  for (int tile = 0; tile < ntiles; ++tile) {
    if (tile + 1 < ntiles) cp_async_wait<1>();
    else cp_async_wait<0>();
    __syncthreads();
    const int slot = tile & 1, valid_keys = N - tile * kRows;
    const __nv_bfloat16* Kt = Ks + slot * kRows * P;
    const __nv_bfloat16* Vt = Vs + slot * kRows * P;
    if (active) {
#pragma unroll
      for (int kh = 0; kh < kRows; kh += KH) {
        if (kh >= valid_keys) break;  // uniform: the rest of the tile lies past N
        float s[KH / 8][4], ds[KH / 8][4];
#pragma unroll
        for (int j = 0; j < KH / 8; ++j)
#pragma unroll
          for (int e = 0; e < 4; ++e) s[j][e] = ds[j][e] = 0.0f;
#pragma unroll
        for (int kk = 0; kk < KD; ++kk) {
#pragma unroll
          for (int j = 0; j < KH / 8; j += 2) {
            if (kh + j * 8 >= valid_keys) continue;
            uint32_t kb[4], vb[4];
            load_b_nk(kb, Kt, P, kh + j * 8, kk * 16, lane);
            mma_bf16(s[j], qf[kk], kb[0], kb[1]);
            mma_bf16(s[j + 1], qf[kk], kb[2], kb[3]);
            load_b_nk(vb, Vt, P, kh + j * 8, kk * 16, lane);
            mma_bf16(ds[j], of[kk], vb[0], vb[1]);
            mma_bf16(ds[j + 1], of[kk], vb[2], vb[3]);
          }
        }
        // P and dS in place: element (query g + 8·(e/2), key kh + 8j + 2t + e%2).
#pragma unroll
        for (int j = 0; j < KH / 8; ++j) {
#pragma unroll
          for (int e = 0; e < 4; ++e) {
            const int r = e >> 1;
            const float p = kh + j * 8 + 2 * t + (e & 1) < valid_keys ? hw::exp2_ftz(s[j][e] * c - lse2[r]) : 0.0f;
            ds[j][e] = p * (ds[j][e] - delta[r]);
          }
        }
        // dQ += dS·K: k runs over the half tile's keys (16 at a time), K read as [key][d].
#pragma unroll
        for (int kc = 0; kc < KH / 16; ++kc) {
          if (kh + kc * 16 >= valid_keys) continue;
          uint32_t sa[4];
          acc_to_a(sa, ds[2 * kc], ds[2 * kc + 1]);
#pragma unroll
          for (int j = 0; j < DT; j += 2) {
            uint32_t kb[4];
            load_b_kn(kb, Kt, P, j * 8, kh + kc * 16, lane);
            mma_bf16(dq[j], sa, kb[0], kb[1]);
            mma_bf16(dq[j + 1], sa, kb[2], kb[3]);
          }
        }
      }
    }
    __syncthreads();  // every warp is done with this slot
    if (tile + 2 < ntiles) {
      const int kn = (tile + 2) * kRows;
      load_block_rows<D, kRows>(Ks + slot * kRows * P, N - kn, row_ptr(a.k, b, h, kn), a.k.sn);
      load_block_rows<D, kRows>(Vs + slot * kRows * P, N - kn, row_ptr(a.v, b, h, kn), a.v.sn);
      cp_async_commit();
    }
  }
  if (!active) return;
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    const int q = qw + g + 8 * r;
    if (q >= N) continue;
    __nv_bfloat16* dqr = row_ptr(a.dq, b, h, q) + 2 * t;
#pragma unroll
    for (int j = 0; j < DT; ++j)
      *reinterpret_cast<uint32_t*>(dqr + j * 8) = pack_bf16(dq[j][2 * r] * a.scale, dq[j][2 * r + 1] * a.scale);
  }
}

template <int D>
__global__ void __launch_bounds__(kWarps * 32, 4)
    attention_bwd_bf16_dkv_kernel(const BwdArgs<__nv_bfloat16> a, const float* lse2_ws, const float* delta_ws,
                                  int npad) {
  constexpr int P = kPitch<D>;
  constexpr int DT = D / 8;
  extern __shared__ uint4 smem_u4[];
  __nv_bfloat16* Ks = reinterpret_cast<__nv_bfloat16*>(smem_u4);  // [kRows][P]
  __nv_bfloat16* Vs = Ks + kRows * P;                              // [kRows][P]
  __nv_bfloat16* Qs = Vs + kRows * P;                              // [2][BQ][P]
  __nv_bfloat16* dOs = Qs + 2 * BQ * P;                            // [2][BQ][P]
  float* lse2_s = reinterpret_cast<float*>(dOs + 2 * BQ * P);      // [2][BQ]
  float* delta_s = lse2_s + 2 * BQ;                                // [2][BQ]

  const int b = blockIdx.z, h = blockIdx.y, k0 = blockIdx.x * kRows;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int N = a.N, nblk = (N + BQ - 1) / BQ;
  const int kw0 = warp * 16;
  const bool active = k0 + kw0 < N;
  const float c = a.scale * kLog2e;
  const float* lse2_row = lse2_ws + ws_row(b, h, a.H, npad);
  const float* delta_row = delta_ws + ws_row(b, h, a.H, npad);

  // Query block blk's Q, dO, lse2 and δ into slot blk & 1, as one cp.async group. The workspace
  // rows are padded to whole 64-query blocks, so every 32-query block reads inside them.
  auto load_block = [&](int blk) {
    const int q0 = blk * BQ, slot = blk & 1;
    load_block_rows<D, BQ>(Qs + slot * BQ * P, N - q0, row_ptr(a.q, b, h, q0), a.q.sn);
    load_block_rows<D, BQ>(dOs + slot * BQ * P, N - q0, row_ptr(a.dout, b, h, q0), a.dout.sn);
    constexpr int kChunks = BQ / 4;  // 16-byte chunks of one block's floats
    for (int i = threadIdx.x; i < 2 * kChunks; i += blockDim.x) {
      const bool is_lse = i < kChunks;
      const int chunk = is_lse ? i : i - kChunks;
      float* dst = (is_lse ? lse2_s : delta_s) + slot * BQ + chunk * 4;
      cp_async16(dst, (is_lse ? lse2_row : delta_row) + q0 + chunk * 4, true);
    }
    cp_async_commit();
  };

  load_block_rows<D, kRows>(Ks, N - k0, row_ptr(a.k, b, h, k0), a.k.sn);
  load_block_rows<D, kRows>(Vs, N - k0, row_ptr(a.v, b, h, k0), a.v.sn);
  load_block(0);  // one group with K and V

  float dk[DT][4], dv[DT][4];
#pragma unroll
  for (int j = 0; j < DT; ++j)
#pragma unroll
    for (int e = 0; e < 4; ++e) dk[j][e] = dv[j][e] = 0.0f;

  // One barrier per block: it makes block blk visible, and every warp has finished block blk − 1,
  // whose slot the loads of block blk + 1 then overwrite.
  for (int blk = 0; blk < nblk; ++blk) {
    cp_async_wait<0>();
    __syncthreads();
    if (blk + 1 < nblk) load_block(blk + 1);
    if (active) {
      const int slot = blk & 1, q0 = blk * BQ;
      float ds[BQ / 8][4];
      key_block_grads<D, BQ, P>(Ks, Vs, kw0, N - k0, Qs + slot * BQ * P, dOs + slot * BQ * P, lse2_s, delta_s,
                                slot * BQ, N - q0, c, dk, dv, ds, lane);
    }
  }
  if (active) store_key_grads<D>(a, b, h, k0 + kw0, dk, dv, lane);
}

}  // namespace

template <int D>
void backward_bf16_split(const BwdArgs<__nv_bfloat16>& a) {
  const int blocks = (a.N + kRows - 1) / kRows, npad = blocks * kRows;
  const size_t ws_floats = size_t(a.B) * size_t(a.H) * size_t(npad);
  DeviceBuffer workspace(2 * ws_floats * sizeof(float));  // lse2, then δ; stream-ordered reuse
  float* lse2_ws = workspace.as<float>();
  float* delta_ws = lse2_ws + ws_floats;
  const dim3 grid(static_cast<unsigned>(blocks), static_cast<unsigned>(a.H), static_cast<unsigned>(a.B));

  auto dq_kernel = attention_bwd_bf16_dq_kernel<D>;
  VTS_CUDA_CHECK(cudaFuncSetAttribute(dq_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                      static_cast<int>(kDqSmem<D>)));
  dq_kernel<<<grid, kWarps * 32, kDqSmem<D>, current_stream()>>>(a, lse2_ws, delta_ws, npad);
  VTS_CUDA_CHECK_LAUNCH("attention_bwd_bf16_dq_kernel");

  auto dkv_kernel = attention_bwd_bf16_dkv_kernel<D>;
  VTS_CUDA_CHECK(cudaFuncSetAttribute(dkv_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                      static_cast<int>(kDkvSmem<D>)));
  dkv_kernel<<<grid, kWarps * 32, kDkvSmem<D>, current_stream()>>>(a, lse2_ws, delta_ws, npad);
  VTS_CUDA_CHECK_LAUNCH("attention_bwd_bf16_dkv_kernel");
}

template void backward_bf16_split<16>(const BwdArgs<__nv_bfloat16>&);
template void backward_bf16_split<32>(const BwdArgs<__nv_bfloat16>&);
template void backward_bf16_split<64>(const BwdArgs<__nv_bfloat16>&);

}  // namespace vts::cuda::attn
