// Fused attention backward, bf16 operands on tensor cores, ONE kernel for dQ, dK and dV.
// With P recomputed from the saved lse, dP = dO·Vᵀ, δ_q = Σ_d dO[q,d]·O[q,d], dS = P ∘ (dP − δ):
//   dV = Pᵀ·dO,   dK = scale · dSᵀ·Q,   dQ = scale · dS·K.
//
// The choice: one CTA per (b, h) that owns the head's whole K and V. ViT sequences are short
// (N = 197 for B/16, 50 for B/32), so K and V of a head fit in shared memory (2 × 208 × 72 × 2 B
// = 60 KB at N = 197, D = 64). The CTA has ⌈N/16⌉ warps (13 at N = 197, 4 at N = 50) and warp w
// owns keys 16w..16w+15: its slices of dK and dV accumulate in its registers over all queries,
// and because the CTA sees every key, it can also finish dQ of a query block itself:
//   for each block of 32 queries (Q, dO double-buffered with cp.async):
//     phase 1, per warp: Sᵀ = K_w·Qᵀ and dPᵀ = V_w·dOᵀ (keys × queries, 16 × 32), P and dS in
//       registers, dV_w += Pᵀ·dO and dK_w += dSᵀ·Q with P/dS fed back as A fragments, and dSᵀ
//       stored to shared memory;
//     barrier;
//     phase 2, all warps: dQ_block = dS·K over all keys (32 × D outputs split into 16×16 units
//       across warps), written straight to global memory.
// Compared with the FlashAttention-2 layout (CTAs over key blocks, dQ accumulated with fp32
// atomics in a zeroed workspace, then converted): no atomics, so the result is deterministic; no
// workspace, no zeroing and no conversion launch, so the strided bf16 dq (the packed qkv gradient)
// is written directly; δ is computed in the prologue from O and dO instead of by a separate
// preprocessing kernel. The price is a cap on N (256: 16 warps) and a grid of B·H CTAs — 384 for
// B = 32, H = 12, ~3 waves on 132 SMs, one CTA of 13 warps per SM at N = 197 (shared memory
// ≈ 97 KB and ~128 registers per thread allow no second one).
//
// FLOPs: 5 products of 2·N²·D per (b, h), plus the 32-row query padding: 10·B·H·N²·D = 9.5 GFLOP
// for B=32, H=12, N=197, D=64, ~10 µs at the dense bf16 peak. Bytes: Q, K, V, O, dO read and dQ,
// dK, dV written once: 8 × 9.7 MB = 77 MB, 26 µs at 3 TB/s — memory-bound like the forward pass,
// if the ~3 waves of one 13-warp CTA per SM keep enough loads in flight (the first thing to
// measure). Measured (H200, 2026-11-28): they do not — 130 µs, 1.5× cuDNN's 86 µs; ncu: DRAM
// 10 %, L2 20 %, SM 28 % busy at 19 % occupancy. More CTAs per head (key blocks, with dQ summed
// across them) is the way on.
//
// A cheaper step, selectable (set_attention_bf16_backward_barriers(1)) until a device has timed
// it: one barrier per query block instead of two. Phase 2 of block i − 1 runs after phase 1 of
// block i, behind the same barrier, from a second dSᵀ slot: the 5 warps with no phase-2 unit
// (32×64 outputs are 8 units for 13 warps) go on to the next block's phase 1 instead of waiting,
// and one barrier's drain goes. +npad·PQ·2 bytes of shared memory (17 KB at N = 197: 114 KB,
// still one CTA per SM). At most ≈ 10–15 % by the MMA counts; not enough alone to reach cuDNN.
#include "attention/bwd_bf16_keys.cuh"

namespace vts::cuda::attn {

namespace {

constexpr int BQ = 32;        // queries per iteration
constexpr int PQ = BQ + 8;    // pitch of the dSᵀ tile (keys × queries)
constexpr int kMaxWarps = kBf16BwdMaxN / 16;

template <int D>
struct BwdSmem {
  static constexpr int P = D + 8;
  // dst_slots: 1 (two barriers per query block) or 2 (one barrier).
  static size_t bytes(int warps, int N, int dst_slots) {
    const size_t npad = size_t(warps) * 16, nq = size_t((N + BQ - 1) / BQ) * BQ;
    return (2 * npad * P + 4 * size_t(BQ) * P + size_t(dst_slots) * npad * PQ) * sizeof(__nv_bfloat16) +
           2 * nq * sizeof(float);
  }
};

template <int D, bool kOneBarrier>
__global__ void __launch_bounds__(kMaxWarps * 32) attention_bwd_bf16_kernel(const BwdArgs<__nv_bfloat16> a) {
  constexpr int P = BwdSmem<D>::P;
  constexpr int DT = D / 8;   // n8 tiles over the head dim
  constexpr int QT = BQ / 8;  // n8 tiles over a query block
  const int nw = blockDim.x / 32, npad = nw * 16;
  const int N = a.N, nblk = (N + BQ - 1) / BQ;
  const int b = blockIdx.y, h = blockIdx.x;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
  const int kw0 = warp * 16;
  const float c = a.scale * kLog2e;

  extern __shared__ uint4 smem_u4[];
  __nv_bfloat16* Ks = reinterpret_cast<__nv_bfloat16*>(smem_u4);  // [npad][P]
  __nv_bfloat16* Vs = Ks + npad * P;                               // [npad][P]
  __nv_bfloat16* Qs = Vs + npad * P;                               // [2][BQ][P]
  __nv_bfloat16* dOs = Qs + 2 * BQ * P;                            // [2][BQ][P]
  constexpr int kSlots = kOneBarrier ? 2 : 1;
  __nv_bfloat16* dST = dOs + 2 * BQ * P;                           // [kSlots][npad][PQ]: dSᵀ of a block
  float* lse2_s = reinterpret_cast<float*>(dST + kSlots * npad * PQ);  // [nblk·BQ], log2 units
  float* delta_s = lse2_s + nblk * BQ;                             // [nblk·BQ]

  // Query block blk's Q and dO into their slot blk & 1, as one cp.async group.
  auto load_block = [&](int blk) {
    const int q0 = blk * BQ, slot = blk & 1;
    load_rows<D, P>(Qs + slot * BQ * P, BQ, min(BQ, N - q0), row_ptr(a.q, b, h, q0), a.q.sn);
    load_rows<D, P>(dOs + slot * BQ * P, BQ, min(BQ, N - q0), row_ptr(a.dout, b, h, q0), a.dout.sn);
    cp_async_commit();
  };

  // Prologue: K, V (group 0) and query block 0 (group 1) in flight while δ and lse are gathered.
  load_rows<D, P>(Ks, npad, N, row_ptr(a.k, b, h, 0), a.k.sn);
  load_rows<D, P>(Vs, npad, N, row_ptr(a.v, b, h, 0), a.v.sn);
  cp_async_commit();
  load_block(0);
  for (int q = warp; q < nblk * BQ; q += nw) {
    float d = 0.0f;
    if (q < N) {
      const __nv_bfloat16* o = row_ptr(a.o, b, h, q);
      const __nv_bfloat16* go = row_ptr(a.dout, b, h, q);
      for (int i = lane; i < D; i += 32) d += __bfloat162float(o[i]) * __bfloat162float(go[i]);
    }
    d = detail::warp_sum(d);
    if (lane == 0) {
      delta_s[q] = q < N ? d : 0.0f;
      lse2_s[q] = q < N ? a.lse[(int64_t(b) * a.H + h) * N + q] * kLog2e : INFINITY;  // P = 0 past N
    }
  }

  float dk[DT][4], dv[DT][4];
#pragma unroll
  for (int j = 0; j < DT; ++j)
#pragma unroll
    for (int e = 0; e < 4; ++e) dk[j][e] = dv[j][e] = 0.0f;

  // ---- phase 1: this warp's 16 keys against query block blk (Q/dO in slot blk & 1); dSᵀ to dSTw ----
  auto phase1 = [&](int blk, __nv_bfloat16* dSTw) {
    const int q0 = blk * BQ;
    // Queries past N in the last block: at N = 197 it holds 5 queries, so half its work goes
    // (7 % of the kernel's MMAs).
    float ds[QT][4];
    key_block_grads<D, BQ, P>(Ks, Vs, kw0, N, Qs + (blk & 1) * BQ * P, dOs + (blk & 1) * BQ * P, lse2_s, delta_s,
                              q0, N - q0, c, dk, dv, ds, lane);
    // dSᵀ (bf16) to shared memory for phase 2.
#pragma unroll
    for (int j = 0; j < QT; ++j) {
      *reinterpret_cast<uint32_t*>(dSTw + (kw0 + g) * PQ + j * 8 + 2 * t) = pack_bf16(ds[j][0], ds[j][1]);
      *reinterpret_cast<uint32_t*>(dSTw + (kw0 + g + 8) * PQ + j * 8 + 2 * t) = pack_bf16(ds[j][2], ds[j][3]);
    }
  };
  // ---- phase 2: dQ of block blk = scale · dS·K over all keys (dSᵀ from dSTr), 16×16 output units
  // per warp ----
  auto phase2 = [&](int blk, const __nv_bfloat16* dSTr) {
    const int q0 = blk * BQ, valid_q = N - q0;
    constexpr int kUnits = (BQ / 16) * (D / 16);
    for (int u = warp; u < kUnits; u += nw) {
      const int mt = u / (D / 16), np = u % (D / 16);
      if (mt * 16 >= valid_q) continue;
      float acc[2][4] = {{0.0f, 0.0f, 0.0f, 0.0f}, {0.0f, 0.0f, 0.0f, 0.0f}};
      for (int kc = 0; kc < nw; ++kc) {
        uint32_t aa[4], bb[4];
        load_a_trans(aa, dSTr, PQ, mt * 16, kc * 16, lane);
        load_b_kn(bb, Ks, P, np * 16, kc * 16, lane);
        mma_bf16(acc[0], aa, bb[0], bb[1]);
        mma_bf16(acc[1], aa, bb[2], bb[3]);
      }
#pragma unroll
      for (int r = 0; r < 2; ++r) {
        const int q = q0 + mt * 16 + g + 8 * r;
        if (q < N) {
          __nv_bfloat16* dqr = row_ptr(a.dq, b, h, q) + np * 16 + 2 * t;
          *reinterpret_cast<uint32_t*>(dqr) = pack_bf16(acc[0][2 * r] * a.scale, acc[0][2 * r + 1] * a.scale);
          *reinterpret_cast<uint32_t*>(dqr + 8) = pack_bf16(acc[1][2 * r] * a.scale, acc[1][2 * r + 1] * a.scale);
        }
      }
    }
  };

  if constexpr (!kOneBarrier) {
    for (int blk = 0; blk < nblk; ++blk) {
      if (blk + 1 < nblk) {
        // The other slot was last read in phase 1 of the previous iteration, before its barrier.
        load_block(blk + 1);
        cp_async_wait<1>();
      } else {
        cp_async_wait<0>();
      }
      __syncthreads();  // this block's Q/dO (and K/V, δ, lse) visible; last dQ phase done with dST
      phase1(blk, dST);
      __syncthreads();
      phase2(blk, dST);
    }
  } else {
    // Iteration i: phase 1 of block i, then phase 2 of block i − 1; one extra iteration for the
    // last phase 2. The single barrier orders everything that conflicts: block i's Q/dO (loaded in
    // iteration i − 1) and block i − 1's dSᵀ become visible; slot (i + 1) & 1 of Q/dO, reloaded just
    // after it, was last read by phase 1 of block i − 1; dSᵀ slot i & 1, which phase 1 of block i
    // overwrites, was last read by phase 2 of block i − 2.
    for (int i = 0; i <= nblk; ++i) {
      if (i < nblk) cp_async_wait<0>();
      __syncthreads();
      if (i + 1 < nblk) load_block(i + 1);
      if (i < nblk) phase1(i, dST + (i & 1) * npad * PQ);
      if (i > 0) phase2(i - 1, dST + ((i - 1) & 1) * npad * PQ);
    }
  }

  store_key_grads<D>(a, b, h, kw0, dk, dv, lane);
}

}  // namespace

template <int D>
void backward_bf16(const BwdArgs<__nv_bfloat16>& a, int barriers) {
  VTS_CHECK(a.N >= 1 && a.N <= kBf16BwdMaxN, "vts::cuda::attention_backward (bf16): N = ", a.N,
            " is outside [1, ", kBf16BwdMaxN, "]");
  const bool one_barrier = barriers == 1;  // 0 (the default) and 2: two barriers per query block
  const int warps = (a.N + 15) / 16;
  const size_t smem = BwdSmem<D>::bytes(warps, a.N, one_barrier ? 2 : 1);
  auto kernel = one_barrier ? attention_bwd_bf16_kernel<D, true> : attention_bwd_bf16_kernel<D, false>;
  VTS_CHECK(smem <= device_info().max_smem_per_block, "vts::cuda::attention_backward (bf16): needs ", smem,
            " bytes of shared memory per block, the device allows ", device_info().max_smem_per_block);
  VTS_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem)));
  const dim3 grid(static_cast<unsigned>(a.H), static_cast<unsigned>(a.B));
  kernel<<<grid, warps * 32, smem, current_stream()>>>(a);
  VTS_CUDA_CHECK_LAUNCH("attention_bwd_bf16_kernel");
}

template void backward_bf16<16>(const BwdArgs<__nv_bfloat16>&, int);
template void backward_bf16<32>(const BwdArgs<__nv_bfloat16>&, int);
template void backward_bf16<64>(const BwdArgs<__nv_bfloat16>&, int);

}  // namespace vts::cuda::attn
