// Fused attention forward, bf16 operands on tensor cores (mma.sync.m16n8k16, fp32 accumulation).
//
// Grid (⌈N/BM⌉, H, B) with W warps of MT m16 tiles, BM = 16·W·MT query rows per block (the
// default W = 4, MT = 1; see forward_bf16 for the others); warp w owns query rows
// 16·MT·w .. 16·MT·(w+1) − 1 of the block. Its Q fragments are loaded once (ldmatrix) and stay in
// registers (but see kFwdMinBlocks for MT = 2 at W = 4). Keys and values stream through
// shared memory in tiles of 64 rows with cp.async into a two-slot ring, so tile t+1 (and t+2 once a
// slot frees) is in flight while tile t is multiplied: for N ≤ 128 the whole K/V of the head is
// resident after the prologue; for ViT-B/16 (N = 197) there are 4 tiles and at most 2 resident.
// Per tile a warp computes S = Q·Kᵀ (16×64: 32 MMAs for D = 64), the online softmax on its
// registers (a row's 64 scores live in the 4 lanes of a quad: max and sum take two shuffles), then
// O += P·V (32 MMAs) with P converted in registers from the S accumulators into A fragments —
// scores never touch shared memory. Masked keys (past N) get −inf before the max; rows past N
// compute on zero-filled Q and are not stored.
//
// Shared memory: Q BM rows + K, V 2 slots × 64 rows, pitch D + 8 bf16 (the 16-byte pad makes the
// 8 row addresses of every ldmatrix fall in distinct bank groups): 46 KB for D = 64, W = 4; 55 KB
// for W = 8. Each block reads all of its head's K/V (from L2 after the first): W = 8 halves those
// re-reads at N = 197 (2 query blocks per head instead of 4) — measured on an H200 (2026-11-28) no
// faster there (42.4 vs 42.8 µs) and slower at N = 50 (11.4 vs 9.6 µs), so W = 4 is the default.
// Bound (B=32, H=12, N=197, D=64): memory. Q, K, V read once and O written once are 4 × 9.7 MB =
// 38.7 MB, 13 µs at 3 TB/s; the 3.8 GFLOP of MMA work (4·B·H·N²·D) is 4 µs at the dense bf16 peak
// (~990 TFLOP/s; mma.sync reaches perhaps two thirds of it on Hopper, where wgmma gets the rest).
// The re-reads of K/V by the ⌈N/64⌉ query blocks of a head come from L2 (a head's K/V is 50 KB).
// Measured (H200, 2026-11-28): 42.8 µs, 3.3× that floor and 1.5× cuDNN's 27.7 µs; ncu finds it
// latency-bound — DRAM 16 %, L2 38 %, SM 50 % busy at 23 % occupancy (16 warps per SM).
// Two m-tiles a warp (MT = 2; 2026-12-04, not yet run on a device) is the layout FlashAttention-2
// uses at this head dim: each K or V fragment a warp reads from shared memory with ldmatrix feeds
// 4 MMAs instead of 2. At MT = 1 those reads are 16 KB per warp and key tile — ≈ 1 MB per SM per
// wave of 16 warps at N = 197, ≈ 8,000 cycles of the SM's 128 bytes a cycle, more than the
// ≈ 4,000-6,000 its tensor cores need for the same wave's MMAs — and each warp's chain (S, softmax,
// P·V) has half the independent MMAs.
#include <array>
#include <type_traits>
#include <utility>

#include "attention/attention.cuh"
#include "attention/mma.cuh"

namespace vts::cuda::attn {

namespace {

constexpr int BN = 64;

// A block is W warps of MT m16 tiles each: BM = 16·W·MT query rows.
template <int D, int W, int MT>
struct FwdSmem {
  static constexpr int BM = 16 * W * MT;
  static constexpr int P = D + 8;  // pitch in bf16
  static constexpr size_t elems = size_t(BM) * P + 2 * 2 * size_t(BN) * P;
  static constexpr size_t bytes = elems * sizeof(__nv_bfloat16);
};

// Issues cp.async for `rows` rows of D bf16 (row r at src + r·stride; zero-fill past valid) into
// dst with pitch P. All THREADS threads take part; 16 bytes each per step.
template <int D, int P, int THREADS>
__device__ __forceinline__ void load_tile(__nv_bfloat16* dst, int rows, int valid, const __nv_bfloat16* src,
                                          int64_t stride) {
  constexpr int kChunks = D / 8;
  for (int c = threadIdx.x; c < rows * kChunks; c += THREADS) {
    const int r = c / kChunks, col = (c % kChunks) * 8;
    const bool ok = r < valid;
    cp_async16(dst + r * P + col, src + (ok ? r : 0) * stride + col, ok);
  }
}

// Blocks per SM the register budget must allow. One m-tile a warp: 16 warps per SM at D ≤ 64 (128
// registers a thread). Left to itself ptxas used 135 registers at D = 64, which admits 3 blocks of 4
// warps (H200, 2026-11-28: 44.4 µs at B = 32, H = 12, N = 197; capped at 128 with a 24-byte spill:
// 43.2 µs). D = 128 needs its ~230 registers. Two m-tiles a warp (D ≤ 64) hold twice the
// accumulators. With Q's fragments in registers that is 225 registers at D = 64 (ptxas, sm_90):
// 8 warps per SM. Reading Q's fragments from shared memory once per key tile instead (4 KB a warp
// next to the tile's 16 KB of K and V) fits 12 warps per SM at 168 registers (a 24-byte spill at
// D = 64, none below). 2-warp blocks are held to 4 per SM by their 46 KB of shared memory, so they
// keep Q in registers; 4-warp blocks of two m-tiles read it from shared memory.
template <int D, int W, int MT, bool kQInRegs>
constexpr int kFwdMinBlocks = D > 64 ? 1 : MT == 1 ? 16 / W : kQInRegs ? 8 / W : 12 / W;

// kNarrowLast (the default layout only; cuda::set_attention_bf16_forward_narrow_last_tile): a key
// tile with at most 16 keys before N — the last tile at N = 197 has 5 — runs the tile's math for
// 16 keys instead of 64, from its own fully unrolled copy of the code (no per-group branches: a
// branch per 16-key group, 2026-12-02, made the kernel 26 % slower). The 48 keys it leaves out are
// masked ones, whose probabilities are exactly 0, so the results are the default's bits.
// kUnmaskedFull (the default layout at D = 64 only; cuda::set_attention_bf16_forward_mask_last_tile_only):
// a tile whose 64 keys all lie before N runs a copy of the tile's math without the key mask — the
// compare and select on every score are 79 of the loop's 818 instructions (sm_90) and only a
// ragged last tile needs them. Also the default's bits: the mask selects s·c wherever it keeps a key.
// kUnrolledLoads (the default layout at D = 64 only; cuda::set_attention_bf16_forward_unrolled_loads):
// the Q and K/V tiles through load_rows_unrolled (attention.cuh) instead of load_tile — the same
// copies, issued in fewer instructions: load_tile's trip count depends on threadIdx.x, so nvcc makes
// it a loop unrolled by 4 with peeled remainder iterations and a 64-bit address computation a copy
// (about 112 instructions a thread per 64-row tile at D = 64, sm_90, twice per key tile).
// kFoldScale (the default layout at D = 64 only, launched for a positive scale c;
// cuda::set_attention_bf16_forward_fold_scale): the scores stay unscaled until the exponential — a
// tile's row maximum of c·s is c times its largest score, and each exponent is one FFMA, c·s − m,
// instead of a multiply and then a subtraction (32 instructions a tile a lane). Not the default's
// bits (the FFMA rounds once), within bf16 tolerance of the CPU.
template <int D, int W, int MT, bool kQInRegs, bool kNarrowLast = false, bool kUnmaskedFull = false,
          bool kUnrolledLoads = false, bool kFoldScale = false>
__global__ void __launch_bounds__(W * 32, kFwdMinBlocks<D, W, MT, kQInRegs>)
    attention_fwd_bf16_kernel(const FwdArgs<__nv_bfloat16> a) {
  using S = FwdSmem<D, W, MT>;
  constexpr int P = S::P, BM = S::BM, kThreads = W * 32;
  constexpr int KD = D / 16;   // k16 chunks over the head dim
  constexpr int DT = D / 8;    // n8 tiles of output
  extern __shared__ uint4 smem_u4[];
  __nv_bfloat16* Qs = reinterpret_cast<__nv_bfloat16*>(smem_u4);
  __nv_bfloat16* Ks = Qs + BM * P;       // [2][BN][P]
  __nv_bfloat16* Vs = Ks + 2 * BN * P;   // [2][BN][P]

  const int b = blockIdx.z, h = blockIdx.y, q0 = blockIdx.x * BM;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
  const int N = a.N;
  const int ntiles = (N + BN - 1) / BN;
  const float c = a.scale * kLog2e;
  // Warp w owns m-tiles MT·w .. MT·w + MT − 1 of the block (16 rows each). An m-tile whose rows are
  // all past N skips its work (a uniform branch); a warp with none only helps load.
  const int row0 = q0 + warp * MT * 16;
  bool live[MT];
#pragma unroll
  for (int i = 0; i < MT; ++i) live[i] = row0 + 16 * i < N;
  const bool active = live[0];

  // ROWS rows (BM or BN) from src into dst, zero-filled past `valid`.
  auto load = [&](auto rows, __nv_bfloat16* dst, int valid, const __nv_bfloat16* src, int64_t stride) {
    constexpr int kRows = decltype(rows)::value;
    if constexpr (kUnrolledLoads) load_rows_unrolled<D, P, kThreads, kRows>(dst, valid, src, stride);
    else load_tile<D, P, kThreads>(dst, kRows, valid, src, stride);
  };
  using QRows = std::integral_constant<int, BM>;
  using KeyRows = std::integral_constant<int, BN>;
  // Prologue: Q and key tile 0 in group 0, key tile 1 in group 1.
  load(QRows{}, Qs, min(BM, N - q0), row_ptr(a.q, b, h, q0), a.q.sn);
  for (int tt = 0; tt < 2 && tt < ntiles; ++tt) {
    const int k0 = tt * BN, valid = min(BN, N - k0);
    load(KeyRows{}, Ks + tt * BN * P, valid, row_ptr(a.k, b, h, k0), a.k.sn);
    load(KeyRows{}, Vs + tt * BN * P, valid, row_ptr(a.v, b, h, k0), a.v.sn);
    cp_async_commit();
  }

  // Q (group 0) must be resident before its fragments are read.
  if (ntiles > 1) cp_async_wait<1>();
  else cp_async_wait<0>();
  __syncthreads();
  uint32_t qf[MT][kQInRegs ? KD : 1][4];
  if constexpr (kQInRegs) {
#pragma unroll
    for (int i = 0; i < MT; ++i) {
      if (!live[i]) continue;
#pragma unroll
      for (int kk = 0; kk < KD; ++kk) load_a(qf[i][kk], Qs, P, (warp * MT + i) * 16, kk * 16, lane);
    }
  }
  float o[MT][DT][4];
#pragma unroll
  for (int i = 0; i < MT; ++i)
#pragma unroll
    for (int j = 0; j < DT; ++j) o[i][j][0] = o[i][j][1] = o[i][j][2] = o[i][j][3] = 0.0f;
  float m[MT][2], l[MT][2];  // rows g and g+8 of each m-tile
#pragma unroll
  for (int i = 0; i < MT; ++i) m[i][0] = m[i][1] = -INFINITY, l[i][0] = l[i][1] = 0.0f;

  for (int tile = 0; tile < ntiles; ++tile) {
    // Tile `tile` is the oldest group in flight; at most the next one may stay pending.
    if (tile + 1 < ntiles) cp_async_wait<1>();
    else cp_async_wait<0>();
    __syncthreads();
    const int slot = tile & 1, k0 = tile * BN;
    const __nv_bfloat16* Kt = Ks + slot * BN * P;
    const __nv_bfloat16* Vt = Vs + slot * BN * P;
    // Keys past N in the last tile are masked to −inf, and (but with kNarrowLast) their MMAs and
    // exponentials still run. With a branch skipping the 16-key groups wholly past N (19 % of the
    // MMA work at N = 197) the kernel measured 54.1 µs at N = 197 and 10.9 µs at N = 50, against
    // 42.8 and 9.5 µs without (H200, 2026-12-04 and 2026-11-28; the skip was the one change to its
    // instructions between).
    const int valid_keys = N - k0;
    // The tile's math for its first KEYS keys (64: all of them); MASKED: whether keys past N can be
    // among them.
    auto tile_math = [&](auto keys, auto masked) {
      constexpr int NTK = decltype(keys)::value / 8;  // n8 tiles of scores
      // S = Q·Kᵀ for this warp's rows and the tile's keys; each K fragment serves every m-tile.
      float s[MT][NTK][4];
#pragma unroll
      for (int i = 0; i < MT; ++i)
#pragma unroll
        for (int j = 0; j < NTK; ++j) s[i][j][0] = s[i][j][1] = s[i][j][2] = s[i][j][3] = 0.0f;
#pragma unroll
      for (int kk = 0; kk < KD; ++kk) {
        if constexpr (!kQInRegs) {
#pragma unroll
          for (int i = 0; i < MT; ++i)
            if (live[i]) load_a(qf[i][0], Qs, P, (warp * MT + i) * 16, kk * 16, lane);
        }
        const int qk = kQInRegs ? kk : 0;
#pragma unroll
        for (int j = 0; j < NTK; j += 2) {
          uint32_t bf[4];
          load_b_nk(bf, Kt, P, j * 8, kk * 16, lane);
#pragma unroll
          for (int i = 0; i < MT; ++i) {
            if (!live[i]) continue;
            mma_bf16(s[i][j], qf[i][qk], bf[0], bf[1]);
            mma_bf16(s[i][j + 1], qf[i][qk], bf[2], bf[3]);
          }
        }
      }
#pragma unroll
      for (int i = 0; i < MT; ++i) {
        if (!live[i]) continue;
        // Online softmax in the log2 domain. Lane holds columns 8j + 2t, +1 of rows g (s[i][j][0..1])
        // and g + 8 (s[i][j][2..3]).
        float mx[2] = {-INFINITY, -INFINITY};
#pragma unroll
        for (int j = 0; j < NTK; ++j) {
#pragma unroll
          for (int e = 0; e < 4; ++e) {
            if constexpr (decltype(masked)::value) {
              const int col = j * 8 + 2 * t + (e & 1);
              s[i][j][e] = col < valid_keys ? (kFoldScale ? s[i][j][e] : s[i][j][e] * c) : -INFINITY;
            } else if constexpr (!kFoldScale) {
              s[i][j][e] *= c;
            }
            mx[e >> 1] = fmaxf(mx[e >> 1], s[i][j][e]);
          }
        }
        float corr[2];
#pragma unroll
        for (int r = 0; r < 2; ++r) {
          mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 1));
          mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 2));
          if constexpr (kFoldScale) mx[r] *= c;  // c > 0: the largest c·s (rounding is monotonic)
          const float m_new = fmaxf(m[i][r], mx[r]);  // finite: every tile has a valid key
          corr[r] = hw::exp2_ftz(m[i][r] - m_new);
          m[i][r] = m_new;
          l[i][r] *= corr[r];
        }
#pragma unroll
        for (int j = 0; j < NTK; ++j) {
#pragma unroll
          for (int e = 0; e < 4; ++e) {
            const float exponent = kFoldScale ? fmaf(s[i][j][e], c, -m[i][e >> 1]) : s[i][j][e] - m[i][e >> 1];
            s[i][j][e] = hw::exp2_ftz(exponent);
            l[i][e >> 1] += s[i][j][e];  // a per-lane partial row sum; the quad adds them at the end
          }
        }
#pragma unroll
        for (int j = 0; j < DT; ++j) {
          o[i][j][0] *= corr[0];
          o[i][j][1] *= corr[0];
          o[i][j][2] *= corr[1];
          o[i][j][3] *= corr[1];
        }
      }
      // O += P·V: P's accumulators become A fragments (keys 16kc..16kc+15 = score tiles 2kc, 2kc+1);
      // each V fragment serves every m-tile.
#pragma unroll
      for (int kc = 0; kc < NTK / 2; ++kc) {
        uint32_t pa[MT][4];
#pragma unroll
        for (int i = 0; i < MT; ++i) acc_to_a(pa[i], s[i][2 * kc], s[i][2 * kc + 1]);
#pragma unroll
        for (int j = 0; j < DT; j += 2) {
          uint32_t bf[4];
          load_b_kn(bf, Vt, P, j * 8, kc * 16, lane);
#pragma unroll
          for (int i = 0; i < MT; ++i) {
            if (!live[i]) continue;
            mma_bf16(o[i][j], pa[i], bf[0], bf[1]);
            mma_bf16(o[i][j + 1], pa[i], bf[2], bf[3]);
          }
        }
      }
    };
    if (active) {
      using Masked = std::true_type;
      using Unmasked = std::false_type;
      if (kNarrowLast && valid_keys <= 16) {
        if constexpr (kNarrowLast) tile_math(std::integral_constant<int, 16>{}, Masked{});
      } else if (kUnmaskedFull && valid_keys >= BN) {
        if constexpr (kUnmaskedFull) tile_math(KeyRows{}, Unmasked{});
      } else {
        tile_math(KeyRows{}, Masked{});
      }
    }
    __syncthreads();  // every warp is done with this slot
    if (tile + 2 < ntiles) {
      const int kn = (tile + 2) * BN, valid = min(BN, N - kn);
      load(KeyRows{}, Ks + slot * BN * P, valid, row_ptr(a.k, b, h, kn), a.k.sn);
      load(KeyRows{}, Vs + slot * BN * P, valid, row_ptr(a.v, b, h, kn), a.v.sn);
      cp_async_commit();
    }
  }

#pragma unroll
  for (int i = 0; i < MT; ++i) {
    if (!live[i]) continue;
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      l[i][r] += __shfl_xor_sync(0xffffffffu, l[i][r], 1);
      l[i][r] += __shfl_xor_sync(0xffffffffu, l[i][r], 2);
    }
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      const int q = row0 + 16 * i + g + 8 * r;
      if (q >= N) continue;
      const float inv = 1.0f / l[i][r];
      __nv_bfloat16* out = row_ptr(a.o, b, h, q);
#pragma unroll
      for (int j = 0; j < DT; ++j)
        *reinterpret_cast<uint32_t*>(out + j * 8 + 2 * t) = pack_bf16(o[i][j][2 * r] * inv, o[i][j][2 * r + 1] * inv);
      if (t == 0) a.lse[(int64_t(b) * a.H + h) * N + q] = m[i][r] * kLn2 + logf(l[i][r]);
    }
  }
}

template <int D, int W, int MT, bool kQInRegs = true, bool kNarrowLast = false, bool kUnmaskedFull = false,
          bool kUnrolledLoads = false, bool kFoldScale = false>
void launch_forward_bf16(const FwdArgs<__nv_bfloat16>& a) {
  const size_t smem = FwdSmem<D, W, MT>::bytes;
  auto kernel = attention_fwd_bf16_kernel<D, W, MT, kQInRegs, kNarrowLast, kUnmaskedFull, kUnrolledLoads, kFoldScale>;
  VTS_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem)));
  constexpr int BM = FwdSmem<D, W, MT>::BM;
  const dim3 grid(static_cast<unsigned>((a.N + BM - 1) / BM), static_cast<unsigned>(a.H), static_cast<unsigned>(a.B));
  kernel<<<grid, W * 32, smem, current_stream()>>>(a);
  VTS_CUDA_CHECK_LAUNCH("attention_fwd_bf16_kernel");
}

// The default layout's code options at D = 64 (ViT's head dim, where they are timed; each kernel is
// compiled for two architectures, and other head dims would only add build time): every
// combination of the narrow last tile (bit 0), the unmasked full tiles (bit 1), the unrolled
// loads (bit 2) and the folded scale (bit 3).
template <int... kCode>
constexpr auto default_layout_d64_launchers(std::integer_sequence<int, kCode...>) {
  return std::array{&launch_forward_bf16<64, 4, 1, true, (kCode & 1) != 0, (kCode & 2) != 0, (kCode & 4) != 0,
                                         (kCode & 8) != 0>...};
}

}  // namespace

template <int D>
void forward_bf16(const FwdArgs<__nv_bfloat16>& a, int rows_per_block, int rows_per_warp,
                  const ForwardTileCode& code) {
  if constexpr (D <= 64) {
    const bool wide = rows_per_block == 128, two_tiles = rows_per_warp == 32;
    if (wide && two_tiles) return launch_forward_bf16<D, 4, 2, false>(a);
    if (wide) return launch_forward_bf16<D, 8, 1>(a);
    if (two_tiles) return launch_forward_bf16<D, 2, 2>(a);
  }
  if constexpr (D == 64) {
    static constexpr auto launchers = default_layout_d64_launchers(std::make_integer_sequence<int, 16>{});
    const bool fold = code.fold_scale && a.scale > 0.0f;  // the folded maximum needs c > 0
    const int index = int(code.narrow_last_tile) | int(code.mask_last_tile_only) << 1 |
                      int(code.unrolled_loads) << 2 | int(fold) << 3;
    return launchers[index](a);
  }
  if (code.narrow_last_tile) return launch_forward_bf16<D, 4, 1, true, true>(a);
  launch_forward_bf16<D, 4, 1>(a);
}

template void forward_bf16<16>(const FwdArgs<__nv_bfloat16>&, int, int, const ForwardTileCode&);
template void forward_bf16<32>(const FwdArgs<__nv_bfloat16>&, int, int, const ForwardTileCode&);
template void forward_bf16<64>(const FwdArgs<__nv_bfloat16>&, int, int, const ForwardTileCode&);
template void forward_bf16<128>(const FwdArgs<__nv_bfloat16>&, int, int, const ForwardTileCode&);

}  // namespace vts::cuda::attn
