#pragma once
// The key side of the bf16 attention backward, shared by the one-CTA-per-head kernel
// (attention_bwd_bf16.cu) and the split kernels (attention_bwd_bf16_split.cu): one warp's 16 keys
// against one block of BQ queries. Both kernels keep a warp's dK and dV slices in registers over
// every query block; they differ in where the keys come from and in who computes dQ.
#include "attention/attention.cuh"
#include "attention/mma.cuh"

namespace vts::cuda::attn {

// cp.async of `rows` rows of D bf16 (row r at src + r·stride; zero-filled past `valid`) into dst
// with pitch P, spread over all threads of the block, 16 bytes each per step.
template <int D, int P>
__device__ __forceinline__ void load_rows(__nv_bfloat16* dst, int rows, int valid, const __nv_bfloat16* src,
                                          int64_t stride) {
  constexpr int kChunks = D / 8;
  for (int c = threadIdx.x; c < rows * kChunks; c += blockDim.x) {
    const int r = c / kChunks, col = (c % kChunks) * 8;
    const bool ok = r < valid;
    cp_async16(dst + r * P + col, src + (ok ? r : 0) * stride + col, ok);
  }
}

// For the warp's keys (rows kw0..kw0 + 15 of Ks and Vs, shared memory, pitch P) and one block of
// BQ queries (Qt, dOt: [BQ][P] in shared memory; lse2[q0 + i] and delta[q0 + i]: query i's lse in
// log2 units and δ, +inf and 0 for queries past N):
//   Sᵀ = K_w·Qᵀ and dPᵀ = V_w·dOᵀ (keys × queries), P = exp2(c·S − lse2), dS = P ∘ (dP − δ),
//   dv += Pᵀ·dO and dk += dSᵀ·Q, with P and dS fed back as A fragments.
// On return ds holds dSᵀ (fp32 accumulator layout: element (key kw0 + g + 8·(e/2), query
// 8j + 2t + e%2)), for a caller that also needs dQ. Rows at or past key_limit are keys past N (P is
// 0 there); valid_q: how many of the block's queries lie before N (16-query groups with none skip
// their MMAs — uniform branches; their P and dS come out 0 anyway from lse2 = +inf and δ = 0).
template <int D, int BQ, int P>
__device__ __forceinline__ void key_block_grads(const __nv_bfloat16* Ks, const __nv_bfloat16* Vs, int kw0,
                                                int key_limit, const __nv_bfloat16* Qt, const __nv_bfloat16* dOt,
                                                const float* lse2, const float* delta, int q0, int valid_q, float c,
                                                float (&dk)[D / 8][4], float (&dv)[D / 8][4],
                                                float (&ds)[BQ / 8][4], int lane) {
  constexpr int KD = D / 16;   // k16 chunks over the head dim
  constexpr int DT = D / 8;    // n8 tiles over the head dim
  constexpr int QT = BQ / 8;   // n8 tiles over the query block
  constexpr int QC = BQ / 16;  // k16 chunks over the query block
  const int g = lane / 4, t = lane % 4;

  float s[QT][4];
#pragma unroll
  for (int j = 0; j < QT; ++j)
#pragma unroll
    for (int e = 0; e < 4; ++e) s[j][e] = ds[j][e] = 0.0f;
#pragma unroll
  for (int kk = 0; kk < KD; ++kk) {
    uint32_t ka[4], va[4];
    load_a(ka, Ks, P, kw0, kk * 16, lane);
    load_a(va, Vs, P, kw0, kk * 16, lane);
#pragma unroll
    for (int j = 0; j < QT; j += 2) {
      if (j * 8 >= valid_q) continue;
      uint32_t qb[4], ob[4];
      load_b_nk(qb, Qt, P, j * 8, kk * 16, lane);
      mma_bf16(s[j], ka, qb[0], qb[1]);
      mma_bf16(s[j + 1], ka, qb[2], qb[3]);
      load_b_nk(ob, dOt, P, j * 8, kk * 16, lane);
      mma_bf16(ds[j], va, ob[0], ob[1]);
      mma_bf16(ds[j + 1], va, ob[2], ob[3]);
    }
  }
  // Pᵀ and dSᵀ in place.
#pragma unroll
  for (int j = 0; j < QT; ++j) {
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      const int qi = q0 + j * 8 + 2 * t + (e & 1);
      const float p = kw0 + g + 8 * (e >> 1) < key_limit ? hw::exp2_ftz(s[j][e] * c - lse2[qi]) : 0.0f;
      s[j][e] = p;
      ds[j][e] = p * (ds[j][e] - delta[qi]);
    }
  }
  // dV_w += Pᵀ·dO and dK_w += dSᵀ·Q: k runs over the block's queries.
#pragma unroll
  for (int qc = 0; qc < QC; ++qc) {
    if (qc * 16 >= valid_q) continue;
    uint32_t pa[4], sa[4];
    acc_to_a(pa, s[2 * qc], s[2 * qc + 1]);
    acc_to_a(sa, ds[2 * qc], ds[2 * qc + 1]);
#pragma unroll
    for (int j = 0; j < DT; j += 2) {
      uint32_t ob[4], qb[4];
      load_b_kn(ob, dOt, P, j * 8, qc * 16, lane);
      mma_bf16(dv[j], pa, ob[0], ob[1]);
      mma_bf16(dv[j + 1], pa, ob[2], ob[3]);
      load_b_kn(qb, Qt, P, j * 8, qc * 16, lane);
      mma_bf16(dk[j], sa, qb[0], qb[1]);
      mma_bf16(dk[j + 1], sa, qb[2], qb[3]);
    }
  }
}

// Writes the warp's dK (times scale) and dV rows: keys key0 + g and key0 + g + 8, those before N.
template <int D>
__device__ __forceinline__ void store_key_grads(const BwdArgs<__nv_bfloat16>& a, int b, int h, int key0,
                                                const float (&dk)[D / 8][4], const float (&dv)[D / 8][4], int lane) {
  const int g = lane / 4, t = lane % 4;
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    const int key = key0 + g + 8 * r;
    if (key >= a.N) continue;
    __nv_bfloat16* dkr = row_ptr(a.dk, b, h, key) + 2 * t;
    __nv_bfloat16* dvr = row_ptr(a.dv, b, h, key) + 2 * t;
#pragma unroll
    for (int j = 0; j < D / 8; ++j) {
      *reinterpret_cast<uint32_t*>(dkr + j * 8) = pack_bf16(dk[j][2 * r] * a.scale, dk[j][2 * r + 1] * a.scale);
      *reinterpret_cast<uint32_t*>(dvr + j * 8) = pack_bf16(dv[j][2 * r], dv[j][2 * r + 1]);
    }
  }
}

}  // namespace vts::cuda::attn
