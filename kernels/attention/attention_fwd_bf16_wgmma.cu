// Fused attention forward, bf16, on Hopper's warpgroup MMA (wgmma, sm_90a): the ViT case the issue
// asks to design for, a head's whole K and V in shared memory (N ≤ 256, D = 64).
//
// Why another forward. The mma.sync kernel (attention_fwd_bf16.cu) runs 42.8 µs at B = 32, H = 12,
// N = 197 on an H200 against cuDNN's 27.9 µs and a memory floor of 13 µs; ncu found it latency-bound
// (a chain per warp of ldmatrix, 64 dependent MMAs and the online softmax per 64-key tile), and
// neither wider blocks nor two m-tiles a warp helped (docs/perf.md, 2026-12-04). Here one
// instruction does what 32 mma.sync did, reading its B operand (and for S its A) straight from
// shared memory with no ldmatrix, and the tensor cores run it asynchronously.
//
// Grid (⌈N/64⌉, H, B), one warpgroup (4 warps, 128 threads) per 64 query rows; warp w owns rows
// 16w..16w+15 of the block, as in the mma.sync kernel, so the softmax code is the same shape.
//   1. cp.async: Q (64 rows) and the head's K (group 0), V (group 1, still landing during 2-3).
//   2. S = Q·Kᵀ for every key at once: 64-key chunks of m64n64k16 (4 per chunk, over D) and a
//      narrow last chunk of 8, 16, 32 or 64 keys (kTail, a template parameter): N = 197 is 3 chunks
//      + 8 keys (200 computed, 1.5 % waste; the mma.sync kernel computes 256), N = 50 is one chunk
//      of 64.
//   3. The softmax in one pass, not online: every score of a row is in the quad's registers, so the
//      row max and sum take two shuffles each and nothing is rescaled.
//   4. O = P·V: P converted in registers to A fragments (the accumulator layout is mma.sync's, so
//      acc_to_a applies), V read from shared memory as an MN-major B (m64n64k16, one per 16 keys:
//      13 at N = 197). V's rows past N are zero-filled, so the probabilities of padding keys (0)
//      never meet NaN.
//   5. O / l and lse, as the mma.sync kernel writes them.
// Shared memory: tiles in core-matrix order (wgmma_tiles.cuh), 8 KB of Q + 2 × 64·⌈N/64⌉ rows ×
// 128 B of K and V: 72 KB at N = 197. One kernel per (full chunks, last chunk width), so that every
// wgmma runs unconditionally: with the chunk count a run-time branch, ptxas serialised the wgmma
// instructions (its note C7515).
//
// Numerics: S and P·V accumulate in fp32, P is rounded to bf16 for P·V and l sums the unrounded
// fp32 probabilities — as in the mma.sync kernel; the results differ from it only by summation
// order (one pass against per-tile rescaling), within the bf16 tolerance of the parity tests.
#include "attention/wgmma_tiles.cuh"

namespace vts::cuda::attn {

namespace {

using namespace wg;

// kMinBlocks: blocks an SM the registers must allow. 2 (the default): ptxas's own choice fits
// (189 registers at N = 197, 229 at most). 3 (cuda::set_attention_bf16_forward_wgmma_blocks): 12
// warps an SM instead of 8 for a kernel whose warps wait on their own batches, at 168 registers
// (ptxas 13.0, since the folded scale: 56 bytes of spill at N = 197, 100 with a 64-key last chunk);
// shared memory allows 3 (72 KB each at N = 197).
template <int kFull, int kTail, int kMinBlocks>
__global__ void __launch_bounds__(kThreads, kMinBlocks) attention_fwd_bf16_wgmma_kernel(const FwdArgs<__nv_bfloat16> a) {
#if !defined(__CUDA_ARCH__) || defined(__CUDA_ARCH_FEAT_SM90_ALL)
  using hw::Wgmma;
  extern __shared__ uint4 smem_u4[];
  constexpr int kSteps = kTailSteps<kTail>;  // k16 steps of P·V over the last chunk
  constexpr int kKeyRows = (kFull + 1) * kBlock;
  unsigned char* Qs = reinterpret_cast<unsigned char*>(smem_u4);
  unsigned char* Ks = Qs + kTileBytes;
  unsigned char* Vs = Ks + kKeyRows * kRowBytes;

  const int b = blockIdx.z, h = blockIdx.y, q0 = blockIdx.x * kBlock, N = a.N;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
  const float c = a.scale * kLog2e;

  // K is read as S's B (the last chunk's kTail rows), V as P·V's B (its 16-key steps).
  load_rows<kBlock>(Qs, N - q0, row_ptr(a.q, b, h, q0), a.q.sn);
  load_rows<kFull * kBlock + kTail>(Ks, N, row_ptr(a.k, b, h, 0), a.k.sn);
  cp_async_commit();
  load_rows<kFull * kBlock + 16 * kSteps>(Vs, N, row_ptr(a.v, b, h, 0), a.v.sn);
  cp_async_commit();
  cp_async_wait<1>();
  hw::fence_proxy_async();
  __syncthreads();

  // S = Q·Kᵀ for every key. Accumulators start at 0 and every product adds (scale-d = 1).
  float s[kFull > 0 ? kFull : 1][kBlock / 8][4];
  float st[kTail / 8][4];
#pragma unroll
  for (int ch = 0; ch < kFull; ++ch) {
    zero(s[ch]);
    hw::wgmma_pin(s[ch]);
  }
  zero(st);
  hw::wgmma_pin(st);
  hw::wgmma_fence();
#pragma unroll
  for (int ch = 0; ch < kFull; ++ch)
#pragma unroll
    for (int kk = 0; kk < kD / 16; ++kk)
      Wgmma<kBlock>::template ss<0>(s[ch], rows_by_d(Qs, 0, kk), rows_by_d(Ks, ch * kBlock, kk));
#pragma unroll
  for (int kk = 0; kk < kD / 16; ++kk)
    Wgmma<kTail>::template ss<0>(st, rows_by_d(Qs, 0, kk), rows_by_d(Ks, kFull * kBlock, kk));
  hw::wgmma_commit();
  hw::wgmma_wait<0>();
#pragma unroll
  for (int ch = 0; ch < kFull; ++ch) hw::wgmma_pin(s[ch]);
  hw::wgmma_pin(st);

  // Softmax in the log2 domain over the whole row. Register e of tile j holds row g + 8·(e/2),
  // column 8j + 2t + e%2 of its chunk; only the last chunk has columns past N. The full chunks'
  // scores stay unscaled: their row maximum of c·s is c times their largest score (their smallest
  // for c < 0; rounding is monotonic, so the same float), and each exponential's argument is then
  // one FFMA, c·s − max, instead of a multiply and a subtraction (≈ 100 instructions a thread at
  // N = 197). The last chunk, with its mask, is scaled first as before.
  float mx[2] = {-INFINITY, -INFINITY};
  if constexpr (kFull > 0) {
    float extreme[2];
    auto fold = [&](auto pick) {
      extreme[0] = s[0][0][0];  // row g's first score, then row g + 8's
      extreme[1] = s[0][0][2];
#pragma unroll
      for (int ch = 0; ch < kFull; ++ch)
#pragma unroll
        for (int j = 0; j < kBlock / 8; ++j)
#pragma unroll
          for (int e = 0; e < 4; ++e) extreme[e >> 1] = pick(extreme[e >> 1], s[ch][j][e]);
    };
    if (c >= 0.0f) fold([](float x, float y) { return fmaxf(x, y); });
    else fold([](float x, float y) { return fminf(x, y); });
    mx[0] = extreme[0] * c;
    mx[1] = extreme[1] * c;
  }
  const int tail_valid = N - kFull * kBlock;
#pragma unroll
  for (int j = 0; j < kTail / 8; ++j)
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      st[j][e] = 8 * j + 2 * t + (e & 1) < tail_valid ? st[j][e] * c : -INFINITY;
      mx[e >> 1] = fmaxf(mx[e >> 1], st[j][e]);
    }
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 1));
    mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 2));
  }
  // Chunk by chunk: P, its A fragments (16 keys each), and O += P·V issued without waiting, so the
  // tensor cores multiply chunk c while the warps exponentiate chunk c + 1. V (an MN-major B) must
  // be resident first.
  cp_async_wait<0>();
  hw::fence_proxy_async();
  __syncthreads();
  float o[kD / 8][4];
  zero(o);
  hw::wgmma_pin(o);
  float l[2] = {0.0f, 0.0f};
  // 2^(scale·acc − max) into acc, summed into l: scale c for the full chunks' raw scores, 1 for the
  // last chunk's scaled ones.
  auto exponentiate = [&](auto& acc, float scale) {
#pragma unroll
    for (int j = 0; j < int(sizeof(acc) / sizeof(acc[0])); ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        acc[j][e] = hw::exp2_ftz(fmaf(acc[j][e], scale, -mx[e >> 1]));
        l[e >> 1] += acc[j][e];
      }
  };
  // Each chunk's fragments stay untouched until the final wait: the products read them late.
  uint32_t p[kFull > 0 ? kFull : 1][kBlock / 16][4];
  uint32_t pt[kSteps][4];
#pragma unroll
  for (int ch = 0; ch < kFull; ++ch) {
    exponentiate(s[ch], c);
    chunk_to_a<kBlock>(p[ch], s[ch]);
    hw::wgmma_pin(p[ch]);
    hw::wgmma_fence();
#pragma unroll
    for (int kc = 0; kc < kBlock / 16; ++kc) Wgmma<kD>::template rs<1>(o, p[ch][kc], rows_as_k(Vs, ch * kBlock + 16 * kc));
    hw::wgmma_commit();
  }
  exponentiate(st, 1.0f);
  chunk_to_a<kTail>(pt, st);
  hw::wgmma_pin(pt);
  hw::wgmma_fence();
#pragma unroll
  for (int kc = 0; kc < kSteps; ++kc) Wgmma<kD>::template rs<1>(o, pt[kc], rows_as_k(Vs, kFull * kBlock + 16 * kc));
  hw::wgmma_commit();
  hw::wgmma_wait<0>();
  hw::wgmma_pin(o);

#pragma unroll
  for (int r = 0; r < 2; ++r) {
    l[r] += __shfl_xor_sync(0xffffffffu, l[r], 1);
    l[r] += __shfl_xor_sync(0xffffffffu, l[r], 2);
  }
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    const int q = q0 + 16 * warp + g + 8 * r;
    if (q >= N) continue;
    const float inv = 1.0f / l[r];
    __nv_bfloat16* out = row_ptr(a.o, b, h, q);
#pragma unroll
    for (int j = 0; j < kD / 8; ++j)
      *reinterpret_cast<uint32_t*>(out + j * 8 + 2 * t) = pack_bf16(o[j][2 * r] * inv, o[j][2 * r + 1] * inv);
    if (t == 0) a.lse[(int64_t(b) * a.H + h) * N + q] = mx[r] * kLn2 + logf(l[r]);
  }
#else
  __trap();  // built for sm_90a only (kernels/CMakeLists.txt); never launched elsewhere
#endif
}

template <int kFull, int kTail>
struct Forward {
  static void run(const FwdArgs<__nv_bfloat16>& a, int blocks_per_sm) {
    constexpr size_t smem = size_t(kTileBytes) + 2 * size_t(kFull + 1) * kTileBytes;
    auto kernel = blocks_per_sm == 3 ? attention_fwd_bf16_wgmma_kernel<kFull, kTail, 3>
                                     : attention_fwd_bf16_wgmma_kernel<kFull, kTail, 2>;
    VTS_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem)));
    const dim3 grid(static_cast<unsigned>(kFull + 1), static_cast<unsigned>(a.H), static_cast<unsigned>(a.B));
    kernel<<<grid, kThreads, smem, current_stream()>>>(a);
    VTS_CUDA_CHECK_LAUNCH("attention_fwd_bf16_wgmma_kernel");
  }
};

// The layout check (cuda::detail::wgmma_layout_check): A (64×16) and B (16×16, k × n) row-major
// in global memory, copied to shared memory in the layouts the kernels use — A K-major, B once
// K-major (stored [n][k]) and once MN-major ([k][n]) — core matrices as in wgmma_tiles.cuh but for
// 16-column tiles: lbo 128 along k, sbo 256 along rows (the MN-major B: lbo 256 along k, sbo 128
// along n). Then D = A·B five ways (attention.hpp lists them), each stored row-major.
__global__ void __launch_bounds__(kThreads) wgmma_layout_check_kernel(const uint16_t* a, const uint16_t* b, float* d) {
#if !defined(__CUDA_ARCH__) || defined(__CUDA_ARCH_FEAT_SM90_ALL)
  using hw::Wgmma;
  extern __shared__ uint4 smem_u4[];
  uint16_t* as = reinterpret_cast<uint16_t*>(smem_u4);  // offsets below in bf16 elements
  uint16_t* bk = as + 64 * 16;
  uint16_t* bm = bk + 16 * 16;
  for (int i = threadIdx.x; i < 64 * 16; i += kThreads) {
    const int r = i / 16, k = i % 16;
    as[(r / 8) * 128 + (k / 8) * 64 + (r % 8) * 8 + k % 8] = a[i];
  }
  for (int i = threadIdx.x; i < 16 * 16; i += kThreads) {
    const int k = i / 16, n = i % 16;
    bk[(n / 8) * 128 + (k / 8) * 64 + (n % 8) * 8 + k % 8] = b[i];
    bm[(k / 8) * 128 + (n / 8) * 64 + (k % 8) * 8 + n % 8] = b[i];
  }
  hw::fence_proxy_async();
  __syncthreads();
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
  auto pair = [&](int row, int k) { return uint32_t(a[row * 16 + k]) | (uint32_t(a[row * 16 + k + 1]) << 16); };
  const int row = 16 * warp + g;
  const uint32_t af[4] = {pair(row, 2 * t), pair(row + 8, 2 * t), pair(row, 2 * t + 8), pair(row + 8, 2 * t + 8)};
  float r[5][2][4];
  for (int v = 0; v < 5; ++v) zero(r[v]);
  for (int v = 0; v < 5; ++v) hw::wgmma_pin(r[v]);
  hw::wgmma_fence();
  Wgmma<16>::template ss<0>(r[0], hw::wgmma_desc(as, 128, 256), hw::wgmma_desc(bk, 128, 256));
  Wgmma<16>::template ss<1>(r[1], hw::wgmma_desc(as, 128, 256), hw::wgmma_desc(bm, 256, 128));
  Wgmma<16>::template rs<0>(r[2], af, hw::wgmma_desc(bk, 128, 256));
  Wgmma<16>::template ss<0>(r[3], hw::wgmma_desc(as, 256, 128), hw::wgmma_desc(bk, 256, 128));
  Wgmma<16>::template ss<1>(r[4], hw::wgmma_desc(as, 128, 256), hw::wgmma_desc(bm, 128, 256));
  hw::wgmma_commit();
  hw::wgmma_wait<0>();
  for (int v = 0; v < 5; ++v) hw::wgmma_pin(r[v]);
  for (int v = 0; v < 5; ++v)
    for (int j = 0; j < 2; ++j)
      for (int e = 0; e < 4; ++e) d[v * 64 * 16 + (row + 8 * (e >> 1)) * 16 + 8 * j + 2 * t + (e & 1)] = r[v][j][e];
#else
  __trap();
#endif
}

}  // namespace

void forward_bf16_wgmma(const FwdArgs<__nv_bfloat16>& a, int blocks_per_sm) {
  wg::dispatch_on_n<Forward>(a.N, a, blocks_per_sm);
}

void wgmma_layout_check(const uint16_t* a, const uint16_t* b, float* d) {
  constexpr int smem = (64 * 16 + 2 * 16 * 16) * 2;
  wgmma_layout_check_kernel<<<1, kThreads, smem, current_stream()>>>(a, b, d);
  VTS_CUDA_CHECK_LAUNCH("wgmma_layout_check_kernel");
}

}  // namespace vts::cuda::attn
