// Fused attention backward, fp32, SIMT. With P = softmax rows recomputed from the saved lse,
// dP = dO·Vᵀ, δ_q = Σ_d dO[q,d]·O[q,d] and dS = P ∘ (dP − δ):
//   dV = Pᵀ·dO,   dK = scale · dSᵀ·Q,   dQ = scale · dS·K.
//
// Why two kernels here (the bf16 path has one): dK, dV are sums over queries and dQ a sum over
// keys, so one CTA can own either a key block (and finish dK, dV in registers) or a query block
// (and finish dQ), not both. The one-kernel options are (a) dQ through floating-point atomics,
// which needs a zeroed fp32 buffer — a second launch anyway for strided outputs such as the packed
// qkv gradient — and makes the result vary run to run, or (b) one CTA per (b, h) holding all of
// K, V, dK and dV, which the bf16 kernel does but which in fp32 needs twice the shared memory and
// twice the accumulator registers (N = 197, D = 64: 200 KB of K, V, dK, dV alone). So fp32 runs
//   attention_bwd_dkdv_f32_kernel: grid (⌈N/64⌉ key blocks, H, B), loops over query blocks;
//   attention_bwd_dq_f32_kernel:   grid (⌈N/64⌉ query blocks, H, B), loops over key blocks;
// recomputing S and dP in both: 7 products of 2·N²·D FLOPs per (b, h) instead of the minimum 5
// (14·N²·D instead of 10·N²·D), deterministic, no atomics, no workspace. δ is computed
// by each kernel from O and dO directly, so there is no separate preprocessing launch either.
// fp32 attention is the exact path (parity, gradient checks); the training path is bf16.
#include "attention/attention.cuh"
#include "attention/simt.cuh"

namespace vts::cuda::attn {

namespace {

constexpr int BM = 64, BN = 64;

template <int D>
struct BwdSmem {
  static constexpr int LD = D + 4, LDP = 64 + 4;
  // Four [64][LD] tiles, one [64][LDP] tile, lse and δ rows.
  static constexpr size_t floats = 4 * size_t(64) * LD + size_t(64) * LDP + 2 * 64;
  static constexpr size_t bytes = floats * sizeof(float);
};

// lse (in log2 units, +inf past N so P = 0 there) and δ for the 64 queries q0.. of head (b, h):
// four threads per query, each a quarter of the D products, combined by two shuffles.
template <int D>
__device__ __forceinline__ void query_stats(const BwdArgs<float>& a, int b, int h, int q0, float* lse2_s,
                                            float* delta_s) {
  const int r = threadIdx.x / 4, part = threadIdx.x % 4, q = q0 + r;
  float d = 0.0f;
  if (q < a.N) {
    const float* o = row_ptr(a.o, b, h, q) + part * (D / 4);
    const float* g = row_ptr(a.dout, b, h, q) + part * (D / 4);
#pragma unroll
    for (int i = 0; i < D / 4; i += 4) {
      const float4 ov = __ldg(reinterpret_cast<const float4*>(o + i));
      const float4 gv = __ldg(reinterpret_cast<const float4*>(g + i));
      d += ov.x * gv.x + ov.y * gv.y + ov.z * gv.z + ov.w * gv.w;
    }
  }
  d += __shfl_xor_sync(0xffffffffu, d, 1);
  d += __shfl_xor_sync(0xffffffffu, d, 2);
  if (part == 0) {
    delta_s[r] = q < a.N ? d : 0.0f;
    lse2_s[r] = q < a.N ? a.lse[(int64_t(b) * a.H + h) * a.N + q] * kLog2e : INFINITY;
  }
}

// kSkipPadding (cuda::set_attention_f32_skip_padding), in both kernels, as in the forward: a warp
// whose 8 rows of the block's own side (keys here, queries in the dQ kernel) all lie past N skips
// its tile products, and a tile of the other side with at most 16 rows before N is computed over
// its first 16 (one column of the four a thread owns in S and dP, a 16-long sum in the products
// that run over it). What is left out is exactly 0 (P and dS past N, zero rows), so the sums are
// the default's, in its order: the same bits. ≈ 37 % fewer FMAs at N = 197.
template <int D, bool kSkipPadding>
__global__ void __launch_bounds__(256) attention_bwd_dkdv_f32_kernel(const BwdArgs<float> a) {
  constexpr int TN = D / 16;
  using S = BwdSmem<D>;
  extern __shared__ float4 smem_f4[];
  float* Ks = reinterpret_cast<float*>(smem_f4);
  float* Vs = Ks + 64 * S::LD;
  float* Qs = Vs + 64 * S::LD;
  float* dOs = Qs + 64 * S::LD;
  float* Ps = dOs + 64 * S::LD;  // P, then dS, as [key][query]
  float* lse2_s = Ps + 64 * S::LDP;
  float* delta_s = lse2_s + 64;

  const int b = blockIdx.z, h = blockIdx.y, k0 = blockIdx.x * BN;
  const int ty = threadIdx.x / 16, tx = threadIdx.x % 16;
  const int N = a.N;
  const float c = a.scale * kLog2e;
  const int valid_keys = min(BN, N - k0);
  load_rows_f32<D>(Ks, S::LD, BN, valid_keys, row_ptr(a.k, b, h, k0), a.k.sn);
  load_rows_f32<D>(Vs, S::LD, BN, valid_keys, row_ptr(a.v, b, h, k0), a.v.sn);

  float dv[4][TN], dk[4][TN];
#pragma unroll
  for (int i = 0; i < 4; ++i)
#pragma unroll
    for (int j = 0; j < TN; ++j) dv[i][j] = dk[i][j] = 0.0f;

  // Warp w owns keys k0 + 8w .. k0 + 8w + 7 (ty = 2w, 2w + 1); the test is warp-uniform, so the
  // whole block still meets every barrier.
  const bool keys_past_n = kSkipPadding && k0 + 8 * (int(threadIdx.x) / 32) >= N;
  for (int q0 = 0; q0 < N; q0 += BM) {
    const int valid_q = min(BM, N - q0);
    load_rows_f32<D>(Qs, S::LD, BM, valid_q, row_ptr(a.q, b, h, q0), a.q.sn);
    load_rows_f32<D>(dOs, S::LD, BM, valid_q, row_ptr(a.dout, b, h, q0), a.dout.sn);
    query_stats<D>(a, b, h, q0, lse2_s, delta_s);
    __syncthreads();
    const bool narrow = kSkipPadding && valid_q <= 16;  // block-uniform

    // Sᵀ and dPᵀ: rows are this block's keys (4·ty + i), columns queries (tx + 16·j).
    float s[4][4], dp[4][4];
    if (!keys_past_n) {
      simt_scores<D>(s, narrow, Ks, S::LD, Qs, S::LD, ty, tx);
      simt_scores<D>(dp, narrow, Vs, S::LD, dOs, S::LD, ty, tx);
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        const bool key_ok = 4 * ty + i < valid_keys;
#pragma unroll
        for (int j = 0; j < 4; ++j) {
          const int qi = tx + 16 * j;
          const float p = key_ok ? hw::exp2_ftz(s[i][j] * c - lse2_s[qi]) : 0.0f;
          Ps[(4 * ty + i) * S::LDP + qi] = p;
          s[i][j] = p * (dp[i][j] - delta_s[qi]);  // dSᵀ, kept until P has been used
        }
      }
    }
    __syncthreads();
    if (!keys_past_n) {  // dV += Pᵀ·dO (P is 0 past the 16th query of a narrow tile)
      if (narrow) simt_tile_mma<16, TN, false>(dv, Ps, S::LDP, dOs, S::LD, ty, tx);
      else simt_tile_mma<BM, TN, false>(dv, Ps, S::LDP, dOs, S::LD, ty, tx);
    }
    __syncthreads();
    if (!keys_past_n) {
#pragma unroll
      for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j) Ps[(4 * ty + i) * S::LDP + tx + 16 * j] = s[i][j];
    }
    __syncthreads();
    if (!keys_past_n) {  // dK += dSᵀ·Q
      if (narrow) simt_tile_mma<16, TN, false>(dk, Ps, S::LDP, Qs, S::LD, ty, tx);
      else simt_tile_mma<BM, TN, false>(dk, Ps, S::LDP, Qs, S::LD, ty, tx);
    }
    __syncthreads();  // Q, dO, P and the statistics are overwritten by the next query block
  }

#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const int key = k0 + 4 * ty + i;
    if (key < N) {
      float* dkr = row_ptr(a.dk, b, h, key);
      float* dvr = row_ptr(a.dv, b, h, key);
#pragma unroll
      for (int j = 0; j < TN; ++j) {
        dkr[tx + 16 * j] = dk[i][j] * a.scale;
        dvr[tx + 16 * j] = dv[i][j];
      }
    }
  }
}

template <int D, bool kSkipPadding>
__global__ void __launch_bounds__(256) attention_bwd_dq_f32_kernel(const BwdArgs<float> a) {
  constexpr int TN = D / 16;
  using S = BwdSmem<D>;
  extern __shared__ float4 smem_f4[];
  float* Qs = reinterpret_cast<float*>(smem_f4);
  float* dOs = Qs + 64 * S::LD;
  float* Ks = dOs + 64 * S::LD;
  float* Vs = Ks + 64 * S::LD;
  float* dSs = Vs + 64 * S::LD;  // [query][key]
  float* lse2_s = dSs + 64 * S::LDP;
  float* delta_s = lse2_s + 64;

  const int b = blockIdx.z, h = blockIdx.y, q0 = blockIdx.x * BM;
  const int ty = threadIdx.x / 16, tx = threadIdx.x % 16;
  const int N = a.N;
  const float c = a.scale * kLog2e;
  const int valid_q = min(BM, N - q0);
  load_rows_f32<D>(Qs, S::LD, BM, valid_q, row_ptr(a.q, b, h, q0), a.q.sn);
  load_rows_f32<D>(dOs, S::LD, BM, valid_q, row_ptr(a.dout, b, h, q0), a.dout.sn);
  query_stats<D>(a, b, h, q0, lse2_s, delta_s);

  float dq[4][TN];
#pragma unroll
  for (int i = 0; i < 4; ++i)
#pragma unroll
    for (int j = 0; j < TN; ++j) dq[i][j] = 0.0f;

  // Warp w owns queries q0 + 8w .. q0 + 8w + 7; warp-uniform, as in the dK/dV kernel.
  const bool queries_past_n = kSkipPadding && q0 + 8 * (int(threadIdx.x) / 32) >= N;
  for (int k0 = 0; k0 < N; k0 += BN) {
    const int valid_keys = min(BN, N - k0);
    load_rows_f32<D>(Ks, S::LD, BN, valid_keys, row_ptr(a.k, b, h, k0), a.k.sn);
    load_rows_f32<D>(Vs, S::LD, BN, valid_keys, row_ptr(a.v, b, h, k0), a.v.sn);
    __syncthreads();
    const bool narrow = kSkipPadding && valid_keys <= 16;  // block-uniform
    if (!queries_past_n) {
      // S and dP: rows are this block's queries (4·ty + i), columns keys (tx + 16·j).
      float s[4][4], dp[4][4];
      simt_scores<D>(s, narrow, Qs, S::LD, Ks, S::LD, ty, tx);
      simt_scores<D>(dp, narrow, dOs, S::LD, Vs, S::LD, ty, tx);
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        const int qi = 4 * ty + i;
#pragma unroll
        for (int j = 0; j < 4; ++j) {
          const int kj = tx + 16 * j;
          const float p = kj < valid_keys ? hw::exp2_ftz(s[i][j] * c - lse2_s[qi]) : 0.0f;
          dSs[qi * S::LDP + kj] = p * (dp[i][j] - delta_s[qi]);
        }
      }
    }
    __syncthreads();
    if (!queries_past_n) {  // dQ += dS·K (dS is 0 past the 16th key of a narrow tile)
      if (narrow) simt_tile_mma<16, TN, false>(dq, dSs, S::LDP, Ks, S::LD, ty, tx);
      else simt_tile_mma<BN, TN, false>(dq, dSs, S::LDP, Ks, S::LD, ty, tx);
    }
    __syncthreads();  // K, V, dS are overwritten by the next key block
  }

#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const int q = q0 + 4 * ty + i;
    if (q < N) {
      float* dqr = row_ptr(a.dq, b, h, q);
#pragma unroll
      for (int j = 0; j < TN; ++j) dqr[tx + 16 * j] = dq[i][j] * a.scale;
    }
  }
}

}  // namespace

template <int D>
void backward_f32(const BwdArgs<float>& a, bool skip_padding) {
  const size_t smem = BwdSmem<D>::bytes;
  const cudaStream_t s = current_stream();
  const dim3 grid(static_cast<unsigned>((a.N + 63) / 64), static_cast<unsigned>(a.H), static_cast<unsigned>(a.B));
  auto dkdv = skip_padding ? attention_bwd_dkdv_f32_kernel<D, true> : attention_bwd_dkdv_f32_kernel<D, false>;
  VTS_CUDA_CHECK(cudaFuncSetAttribute(dkdv, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem)));
  dkdv<<<grid, 256, smem, s>>>(a);
  VTS_CUDA_CHECK_LAUNCH("attention_bwd_dkdv_f32_kernel");
  auto dq = skip_padding ? attention_bwd_dq_f32_kernel<D, true> : attention_bwd_dq_f32_kernel<D, false>;
  VTS_CUDA_CHECK(cudaFuncSetAttribute(dq, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem)));
  dq<<<grid, 256, smem, s>>>(a);
  VTS_CUDA_CHECK_LAUNCH("attention_bwd_dq_f32_kernel");
}

template void backward_f32<16>(const BwdArgs<float>&, bool);
template void backward_f32<32>(const BwdArgs<float>&, bool);
template void backward_f32<64>(const BwdArgs<float>&, bool);
template void backward_f32<128>(const BwdArgs<float>&, bool);

}  // namespace vts::cuda::attn
