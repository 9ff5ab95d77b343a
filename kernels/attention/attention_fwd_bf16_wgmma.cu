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
// Shared memory holds every tile in core-matrix order (8 rows × 16 bytes contiguous, the wgmma
// layout without swizzle): element (r, c) of a tile at byte (r/8)·1024 + (c/8)·128 + (r%8)·16 +
// (c%8)·2, so thread i of a load writes bytes 16i..16i+15 (no bank conflicts) and every operand
// is one descriptor: Q and K K-major (lbo 128, sbo 1024), V MN-major (lbo 1024, sbo 128).
// 8 KB of Q + 2 × 64·⌈N/64⌉ rows × 128 B: 72 KB at N = 197.
//
// Numerics: S and P·V accumulate in fp32, P is rounded to bf16 for P·V and l sums the unrounded
// fp32 probabilities — as in the mma.sync kernel; the results differ from it only by summation
// order (one pass against per-tile rescaling), within the bf16 tolerance of the parity tests.
#include "attention/attention.cuh"
#include "attention/mma.cuh"

namespace vts::cuda::attn {

namespace {

constexpr int kD = 64;
constexpr int kRows = 64;      // query rows per block: one warpgroup
constexpr int kThreads = 128;
constexpr int kChunk = 64;     // keys per full chunk of S
constexpr int kTileRowBytes = kD * 2;               // 128
constexpr int kCoreGroupBytes = 8 * kTileRowBytes;  // 8 rows: 1024

// cp.async of `rows` rows of a head (row r at src + r·stride, zero-filled from `valid` on) into a
// core-matrix-ordered tile. Copy i writes bytes 16i..16i+15 of the tile.
__device__ __forceinline__ void load_rows(unsigned char* tile, int rows, int valid, const __nv_bfloat16* src,
                                          int64_t stride) {
  for (int i = threadIdx.x; i < rows * (kD / 8); i += kThreads) {
    const int r = (i / 64) * 8 + i % 8, c = ((i / 8) % 8) * 8;
    const bool ok = r < valid;
    cp_async16(tile + 16 * i, src + (ok ? r : 0) * stride + c, ok);
  }
}

template <int kFull, int kTail>
__global__ void __launch_bounds__(kThreads, 2) attention_fwd_bf16_wgmma_kernel(const FwdArgs<__nv_bfloat16> a) {
#if !defined(__CUDA_ARCH__) || defined(__CUDA_ARCH_FEAT_SM90_ALL)
  using hw::Wgmma;
  extern __shared__ uint4 smem_u4[];
  const int N = a.N;
  constexpr int full = kFull;  // full 64-key chunks before the last one (0..3: N ≤ 256)
  constexpr int key_rows = (full + 1) * kChunk;
  unsigned char* Qs = reinterpret_cast<unsigned char*>(smem_u4);
  unsigned char* Ks = Qs + kRows * kTileRowBytes;
  unsigned char* Vs = Ks + key_rows * kTileRowBytes;

  const int b = blockIdx.z, h = blockIdx.y, q0 = blockIdx.x * kRows;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
  const float c = a.scale * kLog2e;

  load_rows(Qs, kRows, min(kRows, N - q0), row_ptr(a.q, b, h, q0), a.q.sn);
  load_rows(Ks, full * kChunk + kTail, N, row_ptr(a.k, b, h, 0), a.k.sn);
  cp_async_commit();
  constexpr int kTailSteps = (kTail + 15) / 16;  // k16 steps of P·V over the last chunk
  load_rows(Vs, full * kChunk + 16 * kTailSteps, N, row_ptr(a.v, b, h, 0), a.v.sn);
  cp_async_commit();
  cp_async_wait<1>();
  hw::fence_proxy_async();
  __syncthreads();

  // S = Q·Kᵀ. Accumulators start at 0 and every product adds (scale-d = 1).
  float s[kFull > 0 ? kFull : 1][kChunk / 8][4];
  float st[kTail / 8][4];
#pragma unroll
  for (int ch = 0; ch < kFull; ++ch)
#pragma unroll
    for (int j = 0; j < kChunk / 8; ++j) s[ch][j][0] = s[ch][j][1] = s[ch][j][2] = s[ch][j][3] = 0.0f;
#pragma unroll
  for (int j = 0; j < kTail / 8; ++j) st[j][0] = st[j][1] = st[j][2] = st[j][3] = 0.0f;
  auto q_desc = [&](int kk) { return hw::wgmma_desc(Qs + kk * 256, 128, kCoreGroupBytes); };
  auto k_desc = [&](int key0, int kk) {
    return hw::wgmma_desc(Ks + (key0 / 8) * kCoreGroupBytes + kk * 256, 128, kCoreGroupBytes);
  };
#pragma unroll
  for (int ch = 0; ch < kFull; ++ch) hw::wgmma_pin(s[ch]);
  hw::wgmma_pin(st);
  hw::wgmma_fence();
#pragma unroll
  for (int ch = 0; ch < kFull; ++ch) {
#pragma unroll
    for (int kk = 0; kk < kD / 16; ++kk) Wgmma<kChunk>::template ss<0>(s[ch], q_desc(kk), k_desc(ch * kChunk, kk));
  }
#pragma unroll
  for (int kk = 0; kk < kD / 16; ++kk) Wgmma<kTail>::template ss<0>(st, q_desc(kk), k_desc(full * kChunk, kk));
  hw::wgmma_commit();
  hw::wgmma_wait<0>();
#pragma unroll
  for (int ch = 0; ch < kFull; ++ch) hw::wgmma_pin(s[ch]);
  hw::wgmma_pin(st);

  // Softmax in the log2 domain over the whole row. Register e of tile j holds row g + 8·(e/2),
  // column 8j + 2t + e%2 of its chunk; only the last chunk has columns past N.
  float mx[2] = {-INFINITY, -INFINITY};
#pragma unroll
  for (int ch = 0; ch < kFull; ++ch)
#pragma unroll
    for (int j = 0; j < kChunk / 8; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        s[ch][j][e] *= c;
        mx[e >> 1] = fmaxf(mx[e >> 1], s[ch][j][e]);
      }
  const int tail_valid = N - full * kChunk;
#pragma unroll
  for (int j = 0; j < kTail / 8; ++j)
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      st[j][e] = 8 * j + 2 * t + (e & 1) < tail_valid ? st[j][e] * c : -INFINITY;
      mx[e >> 1] = fmaxf(mx[e >> 1], st[j][e]);
    }
  float l[2] = {0.0f, 0.0f};
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 1));
    mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 2));
  }
  // P as A fragments, 16 keys each: the full chunks' 4 steps, then the last chunk's.
  uint32_t p[kFull > 0 ? kFull : 1][kChunk / 16][4];
  uint32_t pt[kTailSteps][4];
#pragma unroll
  for (int ch = 0; ch < kFull; ++ch) {
#pragma unroll
    for (int j = 0; j < kChunk / 8; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        s[ch][j][e] = exp2f(s[ch][j][e] - mx[e >> 1]);
        l[e >> 1] += s[ch][j][e];
      }
#pragma unroll
    for (int kc = 0; kc < kChunk / 16; ++kc) acc_to_a(p[ch][kc], s[ch][2 * kc], s[ch][2 * kc + 1]);
  }
#pragma unroll
  for (int j = 0; j < kTail / 8; ++j)
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      st[j][e] = exp2f(st[j][e] - mx[e >> 1]);
      l[e >> 1] += st[j][e];
    }
  const float zeros[4] = {0.0f, 0.0f, 0.0f, 0.0f};  // keys 8..15 of an 8-key last chunk
#pragma unroll
  for (int kc = 0; kc < kTailSteps; ++kc) {
    if (2 * kc + 1 < kTail / 8) acc_to_a(pt[kc], st[2 * kc], st[min(2 * kc + 1, kTail / 8 - 1)]);
    else acc_to_a(pt[kc], st[2 * kc], zeros);
  }

  // O = P·V, V MN-major: element (key, d) at (key/8)·1024 + (d/8)·128 + (key%8)·16 + (d%8)·2.
  cp_async_wait<0>();
  hw::fence_proxy_async();
  __syncthreads();
  float o[kD / 8][4];
#pragma unroll
  for (int j = 0; j < kD / 8; ++j) o[j][0] = o[j][1] = o[j][2] = o[j][3] = 0.0f;
  auto v_desc = [&](int key0) { return hw::wgmma_desc(Vs + (key0 / 8) * kCoreGroupBytes, kCoreGroupBytes, 128); };
  hw::wgmma_pin(o);
  hw::wgmma_pin(pt);
#pragma unroll
  for (int ch = 0; ch < kFull; ++ch) hw::wgmma_pin(p[ch]);
  hw::wgmma_fence();
#pragma unroll
  for (int ch = 0; ch < kFull; ++ch) {
#pragma unroll
    for (int kc = 0; kc < kChunk / 16; ++kc) Wgmma<kD>::template rs<1>(o, p[ch][kc], v_desc(ch * kChunk + 16 * kc));
  }
#pragma unroll
  for (int kc = 0; kc < kTailSteps; ++kc) Wgmma<kD>::template rs<1>(o, pt[kc], v_desc(full * kChunk + 16 * kc));
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
void launch(const FwdArgs<__nv_bfloat16>& a) {
  constexpr int chunks = kFull + 1;
  const size_t smem = size_t(kRows) * kTileRowBytes + 2 * size_t(chunks) * kChunk * kTileRowBytes;
  auto kernel = attention_fwd_bf16_wgmma_kernel<kFull, kTail>;
  VTS_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem)));
  const dim3 grid(static_cast<unsigned>((a.N + kRows - 1) / kRows), static_cast<unsigned>(a.H),
                  static_cast<unsigned>(a.B));
  kernel<<<grid, kThreads, smem, current_stream()>>>(a);
  VTS_CUDA_CHECK_LAUNCH("attention_fwd_bf16_wgmma_kernel");
}

template <int kFull>
void launch_for_tail(const FwdArgs<__nv_bfloat16>& a) {
  const int tail = a.N - kFull * kChunk;  // keys in the last chunk, 1..64
  if (tail <= 8) return launch<kFull, 8>(a);
  if (tail <= 16) return launch<kFull, 16>(a);
  if (tail <= 32) return launch<kFull, 32>(a);
  launch<kFull, 64>(a);
}

// The layout check (cuda::detail::wgmma_layout_check): A (64×16) and B (16×16, k × n) row-major
// in global memory, copied to shared memory in the layouts of hw.cuh's wgmma notes — A K-major, B
// once K-major (stored [n][k]) and once MN-major ([k][n]) — then D = A·B three ways: both operands
// from shared memory with each B, and A from registers with the K-major B; D stored row-major.
// Core matrices as in the attention kernel but for 16-column tiles: lbo 128 along k, sbo 256 along
// rows (the MN-major B: lbo 256 along k, sbo 128 along n).
__global__ void __launch_bounds__(kThreads) wgmma_layout_check_kernel(const uint16_t* a, const uint16_t* b, float* d_kmajor,
                                                                      float* d_mnmajor, float* d_regs) {
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
  float d1[2][4], d2[2][4], d3[2][4];
  for (int j = 0; j < 2; ++j)
    for (int e = 0; e < 4; ++e) d1[j][e] = d2[j][e] = d3[j][e] = 0.0f;
  const uint64_t ad = hw::wgmma_desc(as, 128, 256);
  hw::wgmma_pin(d1);
  hw::wgmma_pin(d2);
  hw::wgmma_pin(d3);
  hw::wgmma_fence();
  Wgmma<16>::template ss<0>(d1, ad, hw::wgmma_desc(bk, 128, 256));
  Wgmma<16>::template ss<1>(d2, ad, hw::wgmma_desc(bm, 256, 128));
  Wgmma<16>::template rs<0>(d3, af, hw::wgmma_desc(bk, 128, 256));
  hw::wgmma_commit();
  hw::wgmma_wait<0>();
  hw::wgmma_pin(d1);
  hw::wgmma_pin(d2);
  hw::wgmma_pin(d3);
  for (int j = 0; j < 2; ++j)
    for (int e = 0; e < 4; ++e) {
      const int at = (row + 8 * (e >> 1)) * 16 + 8 * j + 2 * t + (e & 1);
      d_kmajor[at] = d1[j][e];
      d_mnmajor[at] = d2[j][e];
      d_regs[at] = d3[j][e];
    }
#else
  __trap();
#endif
}

}  // namespace

void wgmma_layout_check(const uint16_t* a, const uint16_t* b, float* d_kmajor, float* d_mnmajor, float* d_regs) {
  constexpr int smem = (64 * 16 + 2 * 16 * 16) * 2;
  wgmma_layout_check_kernel<<<1, kThreads, smem, current_stream()>>>(a, b, d_kmajor, d_mnmajor, d_regs);
  VTS_CUDA_CHECK_LAUNCH("wgmma_layout_check_kernel");
}

// One kernel per (full chunks, last chunk width), so that every wgmma runs unconditionally: with
// the chunk count a run-time branch, ptxas serialised the wgmma instructions (its warning C7515).
void forward_bf16_wgmma(const FwdArgs<__nv_bfloat16>& a) {
  switch ((a.N - 1) / kChunk) {
    case 0: return launch_for_tail<0>(a);
    case 1: return launch_for_tail<1>(a);
    case 2: return launch_for_tail<2>(a);
    default: return launch_for_tail<3>(a);
  }
}

}  // namespace vts::cuda::attn
