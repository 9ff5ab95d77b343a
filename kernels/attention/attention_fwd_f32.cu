// Fused attention forward, fp32, SIMT (FFMA): full fp32 accuracy, no tensor cores (TF32 would
// cost ~1e-3 relative error, and this path exists to be exact).
//
// Grid (⌈N/64⌉, H, B); block 256 threads; the block owns 64 query rows of one head and streams
// the keys in tiles of 64: S = Q·Kᵀ (64×64, in registers, 16 per thread), online softmax (running
// row max m and row sum l per thread-row; the output accumulator is rescaled by 2^{m_old − m_new}
// when the max grows), then O += P·V with P passed through shared memory (the thread that computed
// a score is not the one that needs it as an A operand). Scores are kept in the log2 domain
// (scale·log2 e folded into one multiply) so each exponential is one hw::exp2_ftz.
//
// Shared memory (D = 64): Q, K, P tiles at pitch D+4 = 68 floats and V at pitch D: 68.6 KB, so
// three blocks per H100 SM by shared memory (two by registers, 106 per thread).
// Bound (B=32, H=12, N=197, D=64): compute. 4·B·H·N²·D = 3.8 GFLOP at the FFMA peak of an H100
// SXM (67 TFLOP/s) is 57 µs; Q, K, V read and O written once are 4 × 19.4 MB = 77 MB, 26 µs at
// 3 TB/s. Padding N = 197 to 4 × 64 rows and columns wastes a further 1 − (197/256)² ≈ 41% of the
// tile work, all of it in the last row and column of tiles.
#include "attention/attention.cuh"
#include "attention/simt.cuh"

namespace vts::cuda::attn {

namespace {

constexpr int BM = 64, BN = 64;

template <int D>
struct FwdSmem {
  static constexpr int LD = D + 4, LDP = BN + 4;
  static constexpr size_t floats = size_t(BM) * LD + size_t(BN) * LD + size_t(BN) * D + size_t(BM) * LDP;
  static constexpr size_t bytes = floats * sizeof(float);
};

// kSkipPadding (cuda::set_attention_f32_skip_padding): the work the padding of N to whole tiles
// adds is left out — a warp whose 8 query rows all lie past N skips the tile products and the
// softmax (its rows are written by nobody and read by nobody else: each thread's P rows feed only
// its own P·V), and a key tile with at most 16 keys before N computes scores for its first 16
// keys only (one column of the four a thread owns) and P·V over those 16. The keys left out have
// probability exactly 0 and V rows of zeros, so every sum gets the same terms in the same order:
// the default's bits. At N = 197: 7 of the last query block's 8 warps idle, and the last key tile
// a quarter of a tile — ≈ 37 % fewer FMAs.
template <int D, bool kSkipPadding>
__global__ void __launch_bounds__(256) attention_fwd_f32_kernel(const FwdArgs<float> a) {
  constexpr int TN = D / 16;  // output columns per thread
  using S = FwdSmem<D>;
  extern __shared__ float4 smem_f4[];
  float* Qs = reinterpret_cast<float*>(smem_f4);
  float* Ks = Qs + BM * S::LD;
  float* Vs = Ks + BN * S::LD;
  float* Ps = Vs + BN * D;

  const int b = blockIdx.z, h = blockIdx.y, q0 = blockIdx.x * BM;
  const int tid = threadIdx.x, ty = tid / 16, tx = tid % 16;
  const int N = a.N;
  const float c = a.scale * kLog2e;

  load_rows_f32<D>(Qs, S::LD, BM, min(BM, N - q0), row_ptr(a.q, b, h, q0), a.q.sn);

  float o[4][TN], m[4], l[4];
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    m[i] = -INFINITY;
    l[i] = 0.0f;
#pragma unroll
    for (int j = 0; j < TN; ++j) o[i][j] = 0.0f;
  }

  // Warp w owns rows 8w .. 8w + 7 (ty = 2w, 2w + 1).
  const bool rows_past_n = kSkipPadding && q0 + 8 * (tid / 32) >= N;
  for (int k0 = 0; k0 < N; k0 += BN) {
    const int valid_keys = min(BN, N - k0);
    load_rows_f32<D>(Ks, S::LD, BN, valid_keys, row_ptr(a.k, b, h, k0), a.k.sn);
    load_rows_f32<D>(Vs, D, BN, valid_keys, row_ptr(a.v, b, h, k0), a.v.sn);
    __syncthreads();
    const bool narrow = kSkipPadding && valid_keys <= 16;  // block-uniform
    // Warp-uniform: the whole block still meets every barrier (bar.sync is .aligned).
    if (!rows_past_n) {
      float s[4][4];
      simt_scores<D>(s, narrow, Qs, S::LD, Ks, S::LD, ty, tx);

#pragma unroll
      for (int i = 0; i < 4; ++i) {
        float row_max = -INFINITY;
#pragma unroll
        for (int j = 0; j < 4; ++j) {
          s[i][j] = (tx + 16 * j < valid_keys) ? s[i][j] * c : -INFINITY;
          row_max = fmaxf(row_max, s[i][j]);
        }
        // The 16 threads sharing a row are one half-warp (lanes differ in the low 4 bits).
#pragma unroll
        for (int off = 8; off > 0; off >>= 1) row_max = fmaxf(row_max, __shfl_xor_sync(0xffffffffu, row_max, off));
        const float m_new = fmaxf(m[i], row_max);  // finite: every tile has ≥ 1 valid key
        const float corr = hw::exp2_ftz(m[i] - m_new);     // m[i] = −inf on the first tile: corr = 0
        m[i] = m_new;
        float part = 0.0f;
#pragma unroll
        for (int j = 0; j < 4; ++j) {
          s[i][j] = hw::exp2_ftz(s[i][j] - m_new);
          part += s[i][j];
          Ps[(4 * ty + i) * S::LDP + tx + 16 * j] = s[i][j];
        }
        // l stays a per-thread partial sum (its columns only); the half-warp adds them at the end.
        l[i] = l[i] * corr + part;
#pragma unroll
        for (int j = 0; j < TN; ++j) o[i][j] *= corr;
      }
    }
    __syncthreads();
    if (!rows_past_n) {
      if (narrow) simt_tile_mma<16, TN, false>(o, Ps, S::LDP, Vs, D, ty, tx);  // P is 0 past the 16th key
      else simt_tile_mma<BN, TN, false>(o, Ps, S::LDP, Vs, D, ty, tx);
    }
    __syncthreads();  // K, V and P are overwritten by the next tile
  }

#pragma unroll
  for (int i = 0; i < 4; ++i) {
    float sum = l[i];
#pragma unroll
    for (int off = 8; off > 0; off >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, off);
    const int q = q0 + 4 * ty + i;
    if (q < N) {
      const float inv = 1.0f / sum;
      float* out = row_ptr(a.o, b, h, q);
#pragma unroll
      for (int j = 0; j < TN; ++j) out[tx + 16 * j] = o[i][j] * inv;
      if (tx == 0) a.lse[(int64_t(b) * a.H + h) * N + q] = m[i] * kLn2 + logf(sum);
    }
  }
}

}  // namespace

template <int D>
void forward_f32(const FwdArgs<float>& a, bool skip_padding) {
  const size_t smem = FwdSmem<D>::bytes;
  auto kernel = skip_padding ? attention_fwd_f32_kernel<D, true> : attention_fwd_f32_kernel<D, false>;
  VTS_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem)));
  const dim3 grid(static_cast<unsigned>((a.N + BM - 1) / BM), static_cast<unsigned>(a.H), static_cast<unsigned>(a.B));
  kernel<<<grid, 256, smem, current_stream()>>>(a);
  VTS_CUDA_CHECK_LAUNCH("attention_fwd_f32_kernel");
}

template void forward_f32<16>(const FwdArgs<float>&, bool);
template void forward_f32<32>(const FwdArgs<float>&, bool);
template void forward_f32<64>(const FwdArgs<float>&, bool);
template void forward_f32<128>(const FwdArgs<float>&, bool);

}  // namespace vts::cuda::attn
