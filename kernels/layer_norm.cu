// LayerNorm forward and backward (contract in include/vts/backend/cuda/layer_norm.hpp).
//
// Fast path (n a multiple of the 16-byte pack, rows 16-byte aligned, n ≤ 8 packs per lane):
//   one warp per row, the row held in registers between passes, so x is read from memory once.
//   Lane l owns packs l, l+32, l+64, ... (CHUNKS of them): a warp's loads of one chunk are 512
//   consecutive bytes. Mean and variance are two warp reductions over the registers (two-pass
//   variance, as the CPU computes it, not a one-pass E[x²] − μ² that cancels badly).
//   Bytes: forward reads x, w, b and writes y (+ 8 B/row of statistics): ≈ 2·rows·n·sizeof(T);
//   backward reads x, g and writes dx: ≈ 3·rows·n·sizeof(T), plus the small dw/db partials.
//   Both are memory-bound by far (≈ 10 FLOP per element).
// Backward dw/db: each warp keeps its columns' partial sums in registers over the rows it
//   visits (or, on request, in its shared-memory slice: fewer registers, more blocks an SM); a
//   block then adds its warps' partials (through shared memory, in warp order) and writes one
//   partial row; a second kernel adds the blocks' rows in a fixed order.
//   Deterministic, no atomics.
// Generic path (any n, any alignment): one block per row, three passes over global memory
//   (mean, variance, output) in fp32, and dw/db by a column-reduction kernel that recomputes x̂.
#include <algorithm>
#include <map>
#include <mutex>

#include "common/check.cuh"
#include "common/hw.cuh"
#include "common/types.cuh"
#include "vts/backend/cuda/layer_norm.hpp"
#include "vts/backend/cuda/memory.hpp"

namespace vts::cuda {

namespace {

using detail::DevT;
using detail::from_f;
using detail::Pack;
using detail::to_f;

constexpr int kWarps = 4;  // rows per block in the forward fast path
constexpr int kMaxChunks = 8;

// ---- fast path: forward ---------------------------------------------------------------------
// One warp per row: x is read once into registers, then the mean, the two-pass variance and the
// output. ROWS > 1 gives each warp that many rows (warp w of a block takes rows w, w + kWarps, ...),
// all of their x loads issued before the first reduction: the block count falls by ROWS, so at
// ViT-B/16's 6,304 rows the grid is one wave instead of 1.2 (bf16 n = 768: 10 blocks of 4 warps an
// SM at 48 registers), and each warp has ROWS rows of loads in flight. The benchmark times ROWS = 2
// against the default (LayerNormForwardLaunch); the rows' arithmetic is the default's.
// (Prefetching w and b into L1 with x was tried here and measured 0.35-0.70x the default on the
// H200, 2026-12-04: docs/perf.md.)
template <class T, int CHUNKS, bool RESIDUAL, int ROWS = 1>
__global__ void __launch_bounds__(kWarps * 32) layer_norm_fwd_warp_kernel(
    const T* __restrict__ x, const T* __restrict__ res, T* __restrict__ sum_out, const T* __restrict__ w,
    const T* __restrict__ b, T* __restrict__ y, float* __restrict__ mean, float* __restrict__ rstd, int64_t rows, int n,
    float eps) {
  constexpr int V = Pack<T>::N;
  const int lane = threadIdx.x & 31;
  const int64_t first = blockIdx.x * int64_t(kWarps * ROWS) + threadIdx.x / 32;
  if (first >= rows) return;
  float v[ROWS][CHUNKS][V];
  float s[ROWS];
#pragma unroll
  for (int r = 0; r < ROWS; ++r) {
    const int64_t row = first + r * kWarps;
    const int64_t base = row * n;
    s[r] = 0.0f;
#pragma unroll
    for (int c = 0; c < CHUNKS; ++c) {
      const int col = (c * 32 + lane) * V;
      if (row < rows && col < n) {
        Pack<T> px = detail::load_pack_ro(x + base + col);
        if constexpr (RESIDUAL) {
          const Pack<T> pr = detail::load_pack_ro(res + base + col);
#pragma unroll
          for (int j = 0; j < V; ++j) px.v[j] = from_f<T>(to_f(px.v[j]) + to_f(pr.v[j]));
          detail::store_pack(sum_out + base + col, px);
        }
#pragma unroll
        for (int j = 0; j < V; ++j) {
          v[r][c][j] = to_f(px.v[j]);
          s[r] += v[r][c][j];
        }
      } else {
#pragma unroll
        for (int j = 0; j < V; ++j) v[r][c][j] = 0.0f;
      }
    }
  }
#pragma unroll
  for (int r = 0; r < ROWS; ++r) {
    const int64_t row = first + r * kWarps;
    if (row >= rows) break;  // uniform: the rows past the end are the warp's last ones
    const int64_t base = row * n;
    const float mu = detail::warp_sum(s[r]) / static_cast<float>(n);
    float q = 0.0f;
#pragma unroll
    for (int c = 0; c < CHUNKS; ++c) {
      const int col = (c * 32 + lane) * V;
      if (col < n) {
#pragma unroll
        for (int j = 0; j < V; ++j) q += (v[r][c][j] - mu) * (v[r][c][j] - mu);
      }
    }
    const float rs = 1.0f / sqrtf(detail::warp_sum(q) / static_cast<float>(n) + eps);
    if (lane == 0) {
      mean[row] = mu;
      rstd[row] = rs;
    }
#pragma unroll
    for (int c = 0; c < CHUNKS; ++c) {
      const int col = (c * 32 + lane) * V;
      if (col < n) {
        const Pack<T> pw = detail::load_pack_ro(w + col), pb = detail::load_pack_ro(b + col);
        Pack<T> out;
#pragma unroll
        for (int j = 0; j < V; ++j) out.v[j] = from_f<T>((v[r][c][j] - mu) * rs * to_f(pw.v[j]) + to_f(pb.v[j]));
        detail::store_pack(y + base + col, out);
      }
    }
  }
}

// ---- fast path: backward --------------------------------------------------------------------

// Small problems fold the final sum of the partial rows into the backward kernel: the block that
// finishes last (a counter) adds them, and the second launch goes away. Worth it where the partial
// rows are few and short — ViTTiny28: 136 rows of 128 floats (70 KB), 9 launches a step — and not
// where one block would read megabytes (ViT-B/16: 264 rows of 1,536 floats, 1.6 MB ≈ 15 µs).
// With `classes` > 0 (LayerNormBackwardLaunch::fold_by_class, for the large problems) the fold is
// two-level: block k belongs to class k mod classes; the last block of each class to arrive adds
// the class's partial rows in order into class_sums, and the last class to finish adds those in
// class order. That is the final kernel's arithmetic (its thread row g adds rows g, g + GROUPS, ...,
// then the rows' sums are added in order), so the results are its bits, without its launch; each
// of the two serial tails reads ~100 KB at ViT-B/16 (16 classes of 16-17 rows of 1,536 floats).
struct DwDbFold {
  unsigned* counter = nullptr;  // null: no fold (the final kernel adds the partial rows)
  void* dw = nullptr;           // float or bf16 (params_bf16), either may be null
  void* db = nullptr;
  bool params_bf16 = false;
  int classes = 0;              // > 0: two-level (counter[1 + c] counts class c's arrivals)
  float* class_sums = nullptr;  // [classes][2n]
};
// Arrival counters a stream's folds use: the one-level fold's (or the classes' total) and one per
// class, up to LayerNormBackwardLaunch's largest final_groups.
constexpr int kFoldCounters = 1 + 32;
constexpr int64_t kFoldMaxPartialFloats = 32 * 1024;  // 128 KB for the last block to read

// Called by every thread of every block after the block's partial row is written. The last block
// to arrive adds all partial rows in block order — the same sums whichever block that is — with
// `groups` thread rows taking interleaved partial rows (in order), then combined in group order.
__device__ __forceinline__ void fold_partials(const DwDbFold& fold, const float* partial, int n, float* scratch,
                                              int scratch_floats) {
  __shared__ bool last;
  __threadfence();  // this thread's part of the partial row is visible device-wide before the count
  __syncthreads();
  if (threadIdx.x == 0) last = atomicAdd(fold.counter, 1u) == gridDim.x - 1;
  __syncthreads();
  if (!last) return;
  __threadfence();
  const int cols = 2 * n, blocks = static_cast<int>(gridDim.x);
  const int groups = max(1, min(static_cast<int>(blockDim.x) / cols, scratch_floats / cols));
  auto store = [&](int i, float total) {
    void* out = i < n ? fold.dw : fold.db;
    const int j = i < n ? i : i - n;
    if (out == nullptr) return;
    if (fold.params_bf16) static_cast<__nv_bfloat16*>(out)[j] = __float2bfloat16_rn(total);
    else static_cast<float*>(out)[j] = total;
  };
  if (groups == 1) {
    for (int i = threadIdx.x; i < cols; i += blockDim.x) {
      float sum = 0.0f;
      for (int k = 0; k < blocks; ++k) sum += __ldcg(partial + int64_t(k) * cols + i);  // from L2: other SMs wrote it
      store(i, sum);
    }
  } else {
    const int tid = static_cast<int>(threadIdx.x), i = tid % cols, grp = tid / cols;
    if (grp < groups) {
      float sum = 0.0f;
      for (int k = grp; k < blocks; k += groups) sum += __ldcg(partial + int64_t(k) * cols + i);
      scratch[grp * cols + i] = sum;
    }
    __syncthreads();
    if (tid < cols) {
      float total = 0.0f;
      for (int gr = 0; gr < groups; ++gr) total += scratch[gr * cols + tid];
      store(tid, total);
    }
  }
  if (threadIdx.x == 0) *fold.counter = 0;  // ready for the next launch on this stream
}

// Adds rows first, first + stride, ... (count of them) of src, each `cols` floats, column by column
// in row order (from 0.0f, as the final kernel does), and passes each column's sum to store(i, sum).
// Read from L2 (other SMs wrote them). A thread keeps C columns × R rows of loads in flight before
// adding them: one L2 round trip per R rows instead of one per row and column, since this runs on
// one block while the rest of the device waits for it. (R = 4 where registers are capped: the same
// additions in the same order.)
template <int R = 8, class Store>
__device__ __forceinline__ void add_rows_in_order(const float* src, int first, int stride, int count, int cols,
                                                  Store&& store) {
  constexpr int C = 8;
  const int step = static_cast<int>(blockDim.x);
  for (int base = threadIdx.x; base < cols; base += C * step) {
    float sum[C];
#pragma unroll
    for (int c = 0; c < C; ++c) sum[c] = 0.0f;
    for (int r0 = 0; r0 < count; r0 += R) {
      float v[R][C];
#pragma unroll
      for (int r = 0; r < R; ++r)
#pragma unroll
        for (int c = 0; c < C; ++c) {
          const int i = base + c * step;
          v[r][c] = r0 + r < count && i < cols ? __ldcg(src + int64_t(first + (r0 + r) * stride) * cols + i) : 0.0f;
        }
#pragma unroll
      for (int r = 0; r < R; ++r)
        if (r0 + r < count)
#pragma unroll
          for (int c = 0; c < C; ++c) sum[c] += v[r][c];
    }
#pragma unroll
    for (int c = 0; c < C; ++c)
      if (base + c * step < cols) store(base + c * step, sum[c]);
  }
}

// The two-level fold (DwDbFold::classes > 0), called like fold_partials; R as add_rows_in_order's.
template <int R = 8>
__device__ __forceinline__ void fold_partials_by_class(const DwDbFold& fold, const float* partial, int n) {
  __shared__ bool last_of_class, last_class;
  const int cols = 2 * n, blocks = static_cast<int>(gridDim.x), classes = fold.classes;
  const int cls = static_cast<int>(blockIdx.x) % classes, used_classes = min(classes, blocks);
  __threadfence();
  __syncthreads();
  if (threadIdx.x == 0) {
    const unsigned members = static_cast<unsigned>((blocks - cls + classes - 1) / classes);
    last_of_class = atomicAdd(fold.counter + 1 + cls, 1u) == members - 1;
  }
  __syncthreads();
  if (!last_of_class) return;
  __threadfence();
  float* mine = fold.class_sums + int64_t(cls) * cols;
  add_rows_in_order<R>(partial, cls, classes, (blocks - cls + classes - 1) / classes, cols,
                    [&](int i, float sum) { mine[i] = sum; });
  if (threadIdx.x == 0) fold.counter[1 + cls] = 0;  // every member has arrived: ready for the next launch
  __threadfence();
  __syncthreads();
  if (threadIdx.x == 0) last_class = atomicAdd(fold.counter, 1u) == static_cast<unsigned>(used_classes - 1);
  __syncthreads();
  if (!last_class) return;
  __threadfence();
  add_rows_in_order<R>(fold.class_sums, 0, 1, used_classes, cols, [&](int i, float total) {
    void* out = i < n ? fold.dw : fold.db;
    const int j = i < n ? i : i - n;
    if (out == nullptr) return;
    if (fold.params_bf16) static_cast<__nv_bfloat16*>(out)[j] = __float2bfloat16_rn(total);
    else static_cast<float*>(out)[j] = total;
  });
  if (threadIdx.x == 0) *fold.counter = 0;
}

// Where column i of a warp's partial row sits in shared memory: bit 2 of i flipped when bit 5 is
// set. A bf16 lane's 8 floats are two 16-byte halves, 32 bytes from the next lane's; a quarter-warp
// storing its first halves would put lanes l and l + 4 on the same banks. The flip sends every
// second group of four lanes to its other half, so each 16-byte store phase covers all 32 banks.
// An fp32 quarter-warp (4 floats a lane) stores one aligned run of 32 floats, which the flip only
// permutes; so do the readers' 32 consecutive columns: one bank each, both ways.
__device__ __forceinline__ int partial_slot(int i) { return i ^ (((i >> 5) & 1) << 2); }

// Elements of T a warp stages per row and tensor with PREFETCH_ROWS (its lanes' packs).
template <class T, int CHUNKS>
constexpr int kStageElems = CHUNKS * 32 * Pack<T>::N;

// WARPS rows in flight per block; the library launches 8 (LayerNormBackwardLaunch's defaults),
// the kernel benchmark also 4 and 16. PREFETCH_ROWS (the benchmark's alternative): each lane copies
// its packs of the warp's next row of x and g into shared memory (cp.async, two slots a warp after
// the partials) while it works on the current one, so a warp's DRAM wait overlaps its arithmetic
// instead of following it; a lane reads back only what it copied itself, so its own wait_group
// orders the copy and the reads (no barrier; compiler fences keep the reads in place).
// CLASS_FOLD: the two-level fold (DwDbFold::classes), a separate instantiation (8 warps only) so
// that the default kernels' code and registers stay as they were.
// SHARED_SUMS (LayerNormBackwardLaunch::shared_sums; 8 warps, no prefetch): a lane's dw/db terms go
// straight into its slots of the warp's shared-memory slice, row by row, instead of registers that
// are stored there at the end. Each slot has one owner lane (partial_slot is a bijection that keeps
// a lane's 4-float groups whole), so no barrier until the warps' slices are added; the same
// additions in the same order, so the same sums. Without the 48 registers of sums, ptxas fits the
// ViT-B widths (bf16 3 packs a lane, fp32 6) in 80 registers with no spill when asked for 3 blocks of
// 256 threads an SM (kMinBlocks); the wider rows would spill, so they keep ptxas's own count. (0 asks
// for no minimum, as the default kernels always did: a minimum of 1 is another request to ptxas,
// which then gave the default bf16 kernel 130 registers instead of 125.)
template <class T, int CHUNKS, int WARPS, bool PREFETCH_ROWS = false, bool CLASS_FOLD = false,
          bool SHARED_SUMS = false, int kMinBlocks = SHARED_SUMS && CHUNKS * Pack<T>::N <= 24 ? 3 : 0>
__global__ void __launch_bounds__(WARPS * 32, kMinBlocks) layer_norm_bwd_warp_kernel(
    const T* __restrict__ x, const T* __restrict__ w, const float* __restrict__ mean, const float* __restrict__ rstd,
    const T* __restrict__ g, const T* dx_add, T* dx, float* __restrict__ partial, int64_t rows, int n,
    int64_t rows_per_block, const DwDbFold fold) {
  constexpr int V = Pack<T>::N;
  constexpr int kStage = kStageElems<T, CHUNKS>;
  // [WARPS][2][n] floats: each warp's dw then db partials, swizzled; with PREFETCH_ROWS then
  // [WARPS][2 slots][x, g][kStage] T.
  extern __shared__ float4 smem_f4[];
  float* smem = reinterpret_cast<float*>(smem_f4);
  const int lane = threadIdx.x & 31, warp = threadIdx.x / 32;
  const int64_t r0 = blockIdx.x * rows_per_block, r1 = min(rows, r0 + rows_per_block);
  static_assert(V % 4 == 0, "the partials are stored as float4");
  static_assert(!SHARED_SUMS || !PREFETCH_ROWS, "shared_sums is built without prefetch_rows");
  // The lanes' sums: registers, or (SHARED_SUMS) their slots of the warp's slice, zeroed here.
  float dw_acc[CHUNKS][V], db_acc[CHUNKS][V];
  if constexpr (!SHARED_SUMS) {
#pragma unroll
    for (int c = 0; c < CHUNKS; ++c)
#pragma unroll
      for (int j = 0; j < V; ++j) dw_acc[c][j] = db_acc[c][j] = 0.0f;
  } else {
    if (partial != nullptr) {
      float* mine = smem + warp * 2 * n;
#pragma unroll
      for (int c = 0; c < CHUNKS; ++c) {
        const int col = (c * 32 + lane) * V;
        if (col < n)
#pragma unroll
          for (int j = 0; j < V; j += 4) {
            *reinterpret_cast<float4*>(mine + partial_slot(col + j)) = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
            *reinterpret_cast<float4*>(mine + partial_slot(n + col + j)) = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
          }
      }
    }
  }

  T* stage = reinterpret_cast<T*>(smem + WARPS * 2 * n) + warp * 4 * kStage;
  auto stage_row = [&](int64_t row, int slot) {  // this lane's packs of x and g for `row`, into `slot`
    T* sx = stage + slot * 2 * kStage;
#pragma unroll
    for (int c = 0; c < CHUNKS; ++c) {
      const int col = (c * 32 + lane) * V;
      if (col < n) {
        hw::cp_async16(sx + col, x + row * n + col, true);
        hw::cp_async16(sx + kStage + col, g + row * n + col, true);
      }
    }
    hw::cp_async_commit();
  };
  if constexpr (PREFETCH_ROWS) {
    if (r0 + warp < r1) stage_row(r0 + warp, 0);
  }

  int slot = 0;
  for (int64_t row = r0 + warp; row < r1; row += WARPS, slot ^= 1) {
    if constexpr (PREFETCH_ROWS) {
      hw::compiler_fence();  // this slot's reads two rows ago stay before the copy that overwrites it
      if (row + WARPS < r1) {
        stage_row(row + WARPS, slot ^ 1);
        hw::cp_async_wait<1>();
      } else {
        hw::cp_async_wait<0>();
      }
      hw::compiler_fence();  // and the reads below after the wait
    }
    const int64_t base = row * n;
    const float mu = mean[row], rs = rstd[row];
    float xh[CHUNKS][V], gh[CHUNKS][V];
    float sum_g = 0.0f, sum_gx = 0.0f;
#pragma unroll
    for (int c = 0; c < CHUNKS; ++c) {
      const int col = (c * 32 + lane) * V;
      if (col < n) {
        const T* sx = stage + slot * 2 * kStage;
        const Pack<T> px = PREFETCH_ROWS ? *reinterpret_cast<const Pack<T>*>(sx + col)
                                         : detail::load_pack_ro(x + base + col),
                      pg = PREFETCH_ROWS ? *reinterpret_cast<const Pack<T>*>(sx + kStage + col)
                                         : detail::load_pack_ro(g + base + col),
                      pw = detail::load_pack_ro(w + col);
        float gvs[V];
#pragma unroll
        for (int j = 0; j < V; ++j) {
          const float gv = to_f(pg.v[j]);
          xh[c][j] = (to_f(px.v[j]) - mu) * rs;
          gh[c][j] = gv * to_f(pw.v[j]);
          sum_g += gh[c][j];
          sum_gx += gh[c][j] * xh[c][j];
          if constexpr (SHARED_SUMS) {
            gvs[j] = gv;
          } else {
            dw_acc[c][j] += gv * xh[c][j];
            db_acc[c][j] += gv;
          }
        }
        if constexpr (SHARED_SUMS) {
          float* mine = smem + warp * 2 * n;
          if (partial != nullptr)
#pragma unroll
            for (int j = 0; j < V; j += 4) {
              float4& dw4 = *reinterpret_cast<float4*>(mine + partial_slot(col + j));
              float4& db4 = *reinterpret_cast<float4*>(mine + partial_slot(n + col + j));
              float4 a = dw4, b = db4;
              a.x += gvs[j] * xh[c][j];
              a.y += gvs[j + 1] * xh[c][j + 1];
              a.z += gvs[j + 2] * xh[c][j + 2];
              a.w += gvs[j + 3] * xh[c][j + 3];
              b.x += gvs[j];
              b.y += gvs[j + 1];
              b.z += gvs[j + 2];
              b.w += gvs[j + 3];
              dw4 = a;
              db4 = b;
            }
        }
      } else {
#pragma unroll
        for (int j = 0; j < V; ++j) xh[c][j] = gh[c][j] = 0.0f;
      }
    }
    if (dx != nullptr) {
      const float mg = detail::warp_sum(sum_g) / static_cast<float>(n);
      const float mgx = detail::warp_sum(sum_gx) / static_cast<float>(n);
#pragma unroll
      for (int c = 0; c < CHUNKS; ++c) {
        const int col = (c * 32 + lane) * V;
        if (col < n) {
          Pack<T> out;
          // __fmul_rn: in fp32 the compiler would otherwise fuse this product into the add below (an
          // FMA, one rounding fewer than the separate backward and sum: H200, 2026-12-04).
#pragma unroll
          for (int j = 0; j < V; ++j) out.v[j] = from_f<T>(__fmul_rn(rs, gh[c][j] - mg - xh[c][j] * mgx));
          if (dx_add != nullptr) {  // the pending gradient + dx, rounded as the separate sum rounds
            const Pack<T> pa = detail::load_pack(dx_add + base + col);
#pragma unroll
            for (int j = 0; j < V; ++j) out.v[j] = from_f<T>(to_f(pa.v[j]) + to_f(out.v[j]));
          }
          detail::store_pack(dx + base + col, out);
        }
      }
    }
  }
  if (partial == nullptr) return;
  // Each warp stores its partials in a slice of its own; then every thread adds, for its columns,
  // the slices in warp order (deterministic) and writes the block's partial row. (Warps taking
  // turns to add into one slice, with a barrier per turn, cost 12 µs of a 22 µs backward at
  // 6304 × 768 bf16 under ncu — H200, 2026-11-28.)
  // The stores are 128-bit and swizzled (partial_slot) so that no two lanes of a quarter-warp hit
  // the same bank: a lane's V floats stored one at a time, V apart from the next lane's, were 8-way
  // (bf16) or 4-way (fp32) bank conflicts — ~3 µs of the bf16 backward at 6304 × 768 on the count.
  float* mine = smem + warp * 2 * n;
#pragma unroll
  for (int c = 0; c < (SHARED_SUMS ? 0 : CHUNKS); ++c) {
    const int col = (c * 32 + lane) * V;
    if (col < n) {
#pragma unroll
      for (int j = 0; j < V; j += 4) {
        *reinterpret_cast<float4*>(mine + partial_slot(col + j)) =
            make_float4(dw_acc[c][j], dw_acc[c][j + 1], dw_acc[c][j + 2], dw_acc[c][j + 3]);
        *reinterpret_cast<float4*>(mine + partial_slot(n + col + j)) =
            make_float4(db_acc[c][j], db_acc[c][j + 1], db_acc[c][j + 2], db_acc[c][j + 3]);
      }
    }
  }
  __syncthreads();
  for (int i = threadIdx.x; i < 2 * n; i += blockDim.x) {
    const int slot = partial_slot(i);
    float sum = 0.0f;
#pragma unroll
    for (int k = 0; k < WARPS; ++k) sum += smem[k * 2 * n + slot];
    partial[blockIdx.x * int64_t(2 * n) + i] = sum;
  }
  if constexpr (CLASS_FOLD) fold_partials_by_class<(kMinBlocks > 1 ? 4 : 8)>(fold, partial, n);
  else if (fold.counter != nullptr) fold_partials(fold, partial, n, smem, WARPS * 2 * n);
}

// Adds the blocks' partial rows: dw = Σ partial[k][0:n], db = Σ partial[k][n:2n]. A block takes 32
// columns; its GROUPS thread rows each add every GROUPS-th partial row in order, then the groups'
// sums are added in group order: deterministic, and with ~2 SMs' worth of partial rows each thread
// has a dozen independent loads in flight instead of one thread walking all of them (which cost
// ~13 µs per backward at 6304 × 768, H200 2026-11-28). The library uses 16 groups.
template <class G, int GROUPS>
__global__ void __launch_bounds__(32 * GROUPS) layer_norm_dwdb_final_kernel(
    const float* __restrict__ partial, int64_t blocks, int n, G* __restrict__ dw, G* __restrict__ db) {
  __shared__ float sums[GROUPS][33];
  const int tx = threadIdx.x & 31, ty = threadIdx.x / 32;
  const int i = blockIdx.x * 32 + tx;
  float s = 0.0f;
  if (i < 2 * n) {
    int64_t k = ty;
#pragma unroll 4
    for (; k < blocks; k += GROUPS) s += partial[k * 2 * n + i];
  }
  sums[ty][tx] = s;
  __syncthreads();
  if (ty != 0 || i >= 2 * n) return;
  float total = 0.0f;
#pragma unroll
  for (int g = 0; g < GROUPS; ++g) total += sums[g][tx];
  if (i < n) {
    if (dw) dw[i] = from_f<G>(total);
  } else if (db) {
    db[i - n] = from_f<G>(total);
  }
}

// Calls f with std::integral_constant<int, v> when v is one of Vs, the values a kernel template is
// compiled for; false (f not called) otherwise.
template <int... Vs, class F>
bool dispatch_int(int v, F&& f) {
  return ((v == Vs && (f(std::integral_constant<int, Vs>{}), true)) || ...);
}

template <class G>
void launch_dwdb_final(const float* partial, int64_t blocks, int64_t n, G* dw, G* db, cudaStream_t s,
                       int groups = LayerNormBackwardLaunch{}.final_groups) {
  dispatch_int<8, 16, 32>(groups, [&](auto gr) {
    layer_norm_dwdb_final_kernel<G, decltype(gr)::value>
        <<<static_cast<unsigned>((2 * n + 31) / 32), 32 * decltype(gr)::value, 0, s>>>(
            partial, blocks, static_cast<int>(n), dw, db);
  });
  VTS_CUDA_CHECK_LAUNCH("layer_norm_dwdb_final_kernel");
}

// ---- generic path ---------------------------------------------------------------------------
template <class T, bool RESIDUAL>
__global__ void layer_norm_fwd_block_kernel(const T* __restrict__ x, const T* __restrict__ res, T* __restrict__ sum_out,
                                            const T* __restrict__ w, const T* __restrict__ b, T* __restrict__ y,
                                            float* __restrict__ mean, float* __restrict__ rstd, int64_t n, float eps) {
  __shared__ float scratch[32];
  const int64_t base = blockIdx.x * n;
  const T* src = x + base;
  if constexpr (RESIDUAL) {
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x)
      sum_out[base + i] = from_f<T>(to_f(x[base + i]) + to_f(res[base + i]));
    __syncthreads();  // make this block's writes of sum_out visible to its reads below
    src = sum_out + base;
  }
  float s = 0.0f;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) s += to_f(src[i]);
  const float mu = detail::block_sum(s, scratch) / static_cast<float>(n);
  float q = 0.0f;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
    const float d = to_f(src[i]) - mu;
    q += d * d;
  }
  const float rs = 1.0f / sqrtf(detail::block_sum(q, scratch) / static_cast<float>(n) + eps);
  if (threadIdx.x == 0) {
    mean[blockIdx.x] = mu;
    rstd[blockIdx.x] = rs;
  }
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x)
    y[base + i] = from_f<T>((to_f(src[i]) - mu) * rs * to_f(w[i]) + to_f(b[i]));
}

template <class T>
__global__ void layer_norm_bwd_block_kernel(const T* __restrict__ x, const T* __restrict__ w,
                                            const float* __restrict__ mean, const float* __restrict__ rstd,
                                            const T* __restrict__ g, const T* dx_add, T* dx, int64_t n) {
  __shared__ float scratch[32];
  const int64_t base = blockIdx.x * n;
  const float mu = mean[blockIdx.x], rs = rstd[blockIdx.x];
  float sg = 0.0f, sgx = 0.0f;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
    const float gh = to_f(g[base + i]) * to_f(w[i]);
    sg += gh;
    sgx += gh * (to_f(x[base + i]) - mu) * rs;
  }
  const float mg = detail::block_sum(sg, scratch) / static_cast<float>(n);
  const float mgx = detail::block_sum(sgx, scratch) / static_cast<float>(n);
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
    const float xh = (to_f(x[base + i]) - mu) * rs;
    const T d = from_f<T>(__fmul_rn(rs, to_f(g[base + i]) * to_f(w[i]) - mg - xh * mgx));  // not fused: above
    dx[base + i] = dx_add != nullptr ? from_f<T>(to_f(dx_add[base + i]) + to_f(d)) : d;
  }
}

// Column partial sums for dw/db over a chunk of rows: thread x = column, threads y share rows.
template <class T>
__global__ void layer_norm_dwdb_partial_kernel(const T* __restrict__ x, const float* __restrict__ mean,
                                               const float* __restrict__ rstd, const T* __restrict__ g, int64_t rows,
                                               int n, int64_t rows_per_chunk, float* __restrict__ partial) {
  __shared__ float tile[2][8][33];
  const int col = blockIdx.x * 32 + threadIdx.x;
  const int64_t r0 = blockIdx.y * rows_per_chunk, r1 = min(rows, r0 + rows_per_chunk);
  float sw = 0.0f, sb = 0.0f;
  if (col < n)
    for (int64_t r = r0 + threadIdx.y; r < r1; r += 8) {
      const float gv = to_f(g[r * n + col]);
      sw += gv * (to_f(x[r * n + col]) - mean[r]) * rstd[r];
      sb += gv;
    }
  tile[0][threadIdx.y][threadIdx.x] = sw;
  tile[1][threadIdx.y][threadIdx.x] = sb;
  __syncthreads();
  if (threadIdx.y == 0 && col < n) {
    float tw = 0.0f, tb = 0.0f;
#pragma unroll
    for (int k = 0; k < 8; ++k) {
      tw += tile[0][k][threadIdx.x];
      tb += tile[1][k][threadIdx.x];
    }
    partial[blockIdx.y * int64_t(2 * n) + col] = tw;
    partial[blockIdx.y * int64_t(2 * n) + n + col] = tb;
  }
}

// ---- dispatch -------------------------------------------------------------------------------

// Chunk counts the fast path is compiled for: 1, 2, 3, 4, 6, 8 (unused trailing chunks are masked
// off). The backward kernel keeps four arrays per chunk in registers (x̂, ĝ and the dw/db partials):
// past 4 bf16 chunks (8 values each) it would spill, so wider bf16 rows take the generic path.
template <class T>
int fast_chunks(const T* const* ptrs, int count, int64_t n, int max_chunks) {
  constexpr int V = Pack<DevT<T>>::N;
  if (n % V != 0) return 0;
  for (int i = 0; i < count; ++i)
    if (ptrs[i] != nullptr && !detail::aligned16(ptrs[i])) return 0;
  const int64_t chunks = (n / V + 31) / 32;
  if (chunks > max_chunks) return 0;
  if (chunks <= 4) return static_cast<int>(chunks);
  return chunks <= 6 ? 6 : 8;
}

template <int MaxChunks, class F>
void with_chunks(int chunks, F&& f) {
  static_assert(MaxChunks == 4 || MaxChunks == 8);
  if constexpr (MaxChunks == 4) dispatch_int<1, 2, 3, 4>(chunks, f);
  else dispatch_int<1, 2, 3, 4, 6, 8>(chunks, f);
}

template <class T>
constexpr int kBwdMaxChunks = std::is_same_v<T, bf16> ? 4 : 8;

void check_forward_launch(const LayerNormForwardLaunch& launch) {
  VTS_CHECK(launch.rows_per_warp == 1 || launch.rows_per_warp == 2,
            "vts::cuda::layer_norm: rows_per_warp must be 1 or 2, got ", launch.rows_per_warp);
}

void check_backward_launch(const LayerNormBackwardLaunch& launch) {
  VTS_CHECK(launch.warps_per_block == 4 || launch.warps_per_block == 8 || launch.warps_per_block == 16,
            "vts::cuda::layer_norm_backward: warps_per_block must be 4, 8 or 16, got ", launch.warps_per_block);
  VTS_CHECK(launch.blocks_per_sm >= 1 && launch.blocks_per_sm <= 32,
            "vts::cuda::layer_norm_backward: blocks_per_sm must be in [1, 32], got ", launch.blocks_per_sm);
  VTS_CHECK(launch.final_groups == 8 || launch.final_groups == 16 || launch.final_groups == 32,
            "vts::cuda::layer_norm_backward: final_groups must be 8, 16 or 32, got ", launch.final_groups);
  VTS_CHECK(!launch.fold_by_class || launch.warps_per_block == 8,
            "vts::cuda::layer_norm_backward: with fold_by_class (compiled for 8 warps a block) warps_per_block must be "
            "8, got ", launch.warps_per_block);
  VTS_CHECK(!launch.shared_sums || (launch.warps_per_block == 8 && !launch.prefetch_rows),
            "vts::cuda::layer_norm_backward: with shared_sums (compiled for 8 warps a block, without prefetch_rows) "
            "warps_per_block must be 8 and prefetch_rows false, got ", launch.warps_per_block, " and ",
            launch.prefetch_rows);
}

// A launch the overloads without a launch argument take, set process-wide (set_layer_norm_*_launch).
template <class Launch>
class LaunchSetting {
 public:
  void set(const Launch& launch) {
    std::lock_guard<std::mutex> lock(mutex_);
    value_ = launch;
  }
  Launch get() {
    std::lock_guard<std::mutex> lock(mutex_);
    return value_;
  }

 private:
  std::mutex mutex_;
  Launch value_{};
};
LaunchSetting<LayerNormForwardLaunch> g_forward_launch;
LaunchSetting<LayerNormBackwardLaunch> g_backward_launch;

template <class T, bool RESIDUAL>
void forward_impl(const T* x_, const T* res_, T* sum_, const T* w_, const T* b_, T* y_, float* mean, float* rstd,
                  int64_t rows, int64_t n, float eps, const LayerNormForwardLaunch& launch) {
  if (rows == 0) return;
  VTS_CHECK(n > 0 && n < (int64_t(1) << 31), "vts::cuda::layer_norm: row length ", n, " out of range");
  using D = DevT<T>;
  const D *x = detail::dev_ptr(x_), *res = detail::dev_ptr(res_), *w = detail::dev_ptr(w_), *b = detail::dev_ptr(b_);
  D *sum = detail::dev_ptr(sum_), *y = detail::dev_ptr(y_);
  const cudaStream_t s = current_stream();
  const T* ptrs[] = {x_, res_, sum_, w_, b_, y_};
  const int chunks = fast_chunks<T>(ptrs, 6, n, kMaxChunks);
  if (chunks > 0) {
    check_forward_launch(launch);
    const unsigned grid = detail::grid_for(rows, kWarps * launch.rows_per_warp, int64_t(1) << 31);
    with_chunks<kMaxChunks>(chunks, [&](auto c) {
      constexpr int C = decltype(c)::value;
      auto kernel = layer_norm_fwd_warp_kernel<D, C, RESIDUAL>;
      if (launch.rows_per_warp == 2) kernel = layer_norm_fwd_warp_kernel<D, C, RESIDUAL, 2>;
      kernel<<<grid, kWarps * 32, 0, s>>>(x, res, sum, w, b, y, mean, rstd, rows, static_cast<int>(n), eps);
    });
    VTS_CUDA_CHECK_LAUNCH("layer_norm_fwd_warp_kernel");
  } else {
    VTS_CHECK(rows < (int64_t(1) << 31), "vts::cuda::layer_norm: too many rows (", rows, ")");
    layer_norm_fwd_block_kernel<D, RESIDUAL>
        <<<static_cast<unsigned>(rows), 256, 0, s>>>(x, res, sum, w, b, y, mean, rstd, n, eps);
    VTS_CUDA_CHECK_LAUNCH("layer_norm_fwd_block_kernel");
  }
}

// The fold's arrival counters for a stream: one set per stream, zero between launches (each fold
// resets what it used), allocated once and kept for the process (freeing them at exit could follow
// the driver's own teardown). Launches on one stream run in order, so they may share them.
// The zeroing is a stream operation, and inside a capture it is only recorded, not run: where the
// first use is captured, the memset node zeroes them at each replay, and the first use outside a
// capture zeroes them again — without that, an eager launch before the first replay would find
// whatever the allocation held, and a fold that never sees its count complete writes no dw/db.
unsigned* fold_counter(cudaStream_t s) {
  struct Counters {
    unsigned* p = nullptr;
    bool zeroed_outside_capture = false;
  };
  static std::mutex mutex;
  static auto* counters = new std::map<cudaStream_t, Counters>();
  std::lock_guard<std::mutex> lock(mutex);
  Counters& c = (*counters)[s];
  if (c.p == nullptr) {
    void* p = nullptr;
    VTS_CUDA_CHECK(cudaMalloc(&p, kFoldCounters * sizeof(unsigned)));
    c.p = static_cast<unsigned*>(p);
  }
  if (!c.zeroed_outside_capture) {
    cudaStreamCaptureStatus status = cudaStreamCaptureStatusNone;
    VTS_CUDA_CHECK(cudaStreamIsCapturing(s, &status));
    VTS_CUDA_CHECK(cudaMemsetAsync(c.p, 0, kFoldCounters * sizeof(unsigned), s));
    c.zeroed_outside_capture = status == cudaStreamCaptureStatusNone;
  }
  return c.p;
}

// dx_add (optional): dx = dx_add + the LayerNorm gradient (dx_add may be dx itself).
template <class T, class G>
void backward_impl(const T* x_, const T* w_, const float* mean, const float* rstd, const T* g_, T* dx_, G* dw_,
                   G* db_, int64_t rows, int64_t n, const LayerNormBackwardLaunch& launch,
                   const T* dx_add_ = nullptr) {
  check_backward_launch(launch);
  if (n == 0) return;
  VTS_CHECK(n < (int64_t(1) << 30), "vts::cuda::layer_norm_backward: row length ", n, " out of range");
  using D = DevT<T>;
  using DG = DevT<G>;
  const D *x = detail::dev_ptr(x_), *w = detail::dev_ptr(w_), *g = detail::dev_ptr(g_);
  D* dx = detail::dev_ptr(dx_);
  const D* dx_add = detail::dev_ptr(dx_add_);
  VTS_CHECK(dx_add == nullptr || dx != nullptr, "vts::cuda::layer_norm_backward: a gradient to add to dx needs dx");
  DG *dw = detail::dev_ptr(dw_), *db = detail::dev_ptr(db_);
  const cudaStream_t s = current_stream();
  const bool want_params = dw != nullptr || db != nullptr;
  if (rows == 0) {
    const G zero{};
    if (dw_) fill_bytes(dw_, n, &zero, sizeof(G));
    if (db_) fill_bytes(db_, n, &zero, sizeof(G));
    return;
  }
  const T* ptrs[] = {x_, w_, g_, dx_, dx_add_};
  const int chunks = fast_chunks<T>(ptrs, 5, n, kBwdMaxChunks<T>);
  if (chunks > 0) {
    // By default enough blocks to fill the device twice over; each block's partial row costs 8·n
    // bytes, which the final kernel reads back.
    const int warps = launch.warps_per_block;
    const int64_t blocks = std::min<int64_t>((rows + warps - 1) / warps,
                                             int64_t(device_info().sm_count) * launch.blocks_per_sm);
    const int64_t rows_per_block = (rows + blocks - 1) / blocks;
    const int64_t used_blocks = (rows + rows_per_block - 1) / rows_per_block;
    // The two-level fold's class sums follow the partial rows.
    const bool by_class = want_params && launch.fold_by_class && used_blocks * 2 * n > kFoldMaxPartialFloats;
    const int64_t class_rows = by_class ? std::min<int64_t>(launch.final_groups, used_blocks) : 0;
    DeviceBuffer partial(want_params ? static_cast<size_t>((used_blocks + class_rows) * 2 * n) * sizeof(float) : 0);
    // The partials; with prefetch_rows the region is kept (the staging slots follow it) either way.
    const size_t partial_smem =
        want_params || launch.prefetch_rows ? static_cast<size_t>(warps * 2 * n) * sizeof(float) : 0;
    DwDbFold fold;
    if (want_params && used_blocks * 2 * n <= kFoldMaxPartialFloats) {
      fold.counter = fold_counter(s);
      fold.dw = dw;
      fold.db = db;
      fold.params_bf16 = std::is_same_v<G, bf16>;
    } else if (by_class) {
      fold.counter = fold_counter(s);
      fold.dw = dw;
      fold.db = db;
      fold.params_bf16 = std::is_same_v<G, bf16>;
      fold.classes = launch.final_groups;
      fold.class_sums = partial.as<float>() + used_blocks * 2 * n;
    }
    with_chunks<kBwdMaxChunks<T>>(chunks, [&](auto c) {
      constexpr int kChunks = decltype(c)::value;
      dispatch_int<4, 8, 16>(warps, [&](auto wp) {
        constexpr int kWarps = decltype(wp)::value;
        auto kernel = layer_norm_bwd_warp_kernel<D, kChunks, kWarps>;
        if constexpr (kWarps == 8) {
          if (by_class) kernel = layer_norm_bwd_warp_kernel<D, kChunks, kWarps, false, true>;
          if (launch.shared_sums)
            kernel = by_class ? layer_norm_bwd_warp_kernel<D, kChunks, kWarps, false, true, true>
                              : layer_norm_bwd_warp_kernel<D, kChunks, kWarps, false, false, true>;
        }
        size_t smem = partial_smem;
        if (launch.prefetch_rows) {
          kernel = layer_norm_bwd_warp_kernel<D, kChunks, kWarps, true>;
          if constexpr (kWarps == 8)
            if (by_class) kernel = layer_norm_bwd_warp_kernel<D, kChunks, kWarps, true, true>;
          smem += static_cast<size_t>(warps) * 4 * kStageElems<D, kChunks> * sizeof(D);
          // The kernel's static shared memory (the fold's flags) counts against the same limit.
          cudaFuncAttributes attributes{};
          VTS_CUDA_CHECK(cudaFuncGetAttributes(&attributes, kernel));
          VTS_CHECK(smem + attributes.sharedSizeBytes <= device_info().max_smem_per_block,
                    "vts::cuda::layer_norm_backward: prefetch_rows with ", warps, " warps at n = ", n, " needs ",
                    smem + attributes.sharedSizeBytes, " bytes of shared memory; the device allows ",
                    device_info().max_smem_per_block);
        }
        // Opted in below 48 KB too: the kernel's static shared memory (the fold's flag) counts against
        // the same 48 KB default, and ViT-B's n = 768 at 8 warps is exactly 48 KB of partials.
        if (smem > 0)
          VTS_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                              static_cast<int>(smem)));
        kernel<<<static_cast<unsigned>(used_blocks), warps * 32, smem, s>>>(
            x, w, mean, rstd, g, dx_add, dx, want_params ? partial.as<float>() : nullptr, rows, static_cast<int>(n),
            rows_per_block, fold);
      });
    });
    VTS_CUDA_CHECK_LAUNCH("layer_norm_bwd_warp_kernel");
    if (want_params && fold.counter == nullptr) {
      launch_dwdb_final(partial.as<float>(), used_blocks, n, dw, db, s, launch.final_groups);
    }
    return;
  }
  if (dx != nullptr) {
    VTS_CHECK(rows < (int64_t(1) << 31), "vts::cuda::layer_norm_backward: too many rows (", rows, ")");
    layer_norm_bwd_block_kernel<D><<<static_cast<unsigned>(rows), 256, 0, s>>>(x, w, mean, rstd, g, dx_add, dx, n);
    VTS_CUDA_CHECK_LAUNCH("layer_norm_bwd_block_kernel");
  }
  if (want_params) {
    const int64_t col_tiles = (n + 31) / 32;
    int64_t chunks_r = std::max<int64_t>(1, int64_t(device_info().sm_count) * 4 / col_tiles);
    chunks_r = std::min<int64_t>({chunks_r, (rows + 63) / 64, 65535});
    const int64_t rows_per_chunk = (rows + chunks_r - 1) / chunks_r;
    chunks_r = (rows + rows_per_chunk - 1) / rows_per_chunk;
    DeviceBuffer partial(static_cast<size_t>(chunks_r * 2 * n) * sizeof(float));
    layer_norm_dwdb_partial_kernel<D><<<dim3(static_cast<unsigned>(col_tiles), static_cast<unsigned>(chunks_r)),
                                        dim3(32, 8), 0, s>>>(x, mean, rstd, g, rows, static_cast<int>(n),
                                                             rows_per_chunk, partial.as<float>());
    VTS_CUDA_CHECK_LAUNCH("layer_norm_dwdb_partial_kernel");
    launch_dwdb_final(partial.as<float>(), chunks_r, n, dw, db, s);
  }
}

}  // namespace

void set_layer_norm_forward_launch(const LayerNormForwardLaunch& launch) {
  check_forward_launch(launch);
  g_forward_launch.set(launch);
}
LayerNormForwardLaunch layer_norm_forward_launch() { return g_forward_launch.get(); }
void set_layer_norm_backward_launch(const LayerNormBackwardLaunch& launch) {
  check_backward_launch(launch);
  g_backward_launch.set(launch);
}
LayerNormBackwardLaunch layer_norm_backward_launch() { return g_backward_launch.get(); }

void layer_norm_rows(Device, const float* x, const float* w, const float* bias, float* y, float* mean, float* rstd,
                     int64_t rows, int64_t n, float eps) {
  forward_impl<float, false>(x, nullptr, nullptr, w, bias, y, mean, rstd, rows, n, eps, layer_norm_forward_launch());
}
void layer_norm_rows(Device, const bf16* x, const bf16* w, const bf16* bias, bf16* y, float* mean, float* rstd,
                     int64_t rows, int64_t n, float eps) {
  forward_impl<bf16, false>(x, nullptr, nullptr, w, bias, y, mean, rstd, rows, n, eps, layer_norm_forward_launch());
}
void layer_norm_rows(Device, const float* x, const float* w, const float* bias, float* y, float* mean, float* rstd,
                     int64_t rows, int64_t n, float eps, const LayerNormForwardLaunch& launch) {
  forward_impl<float, false>(x, nullptr, nullptr, w, bias, y, mean, rstd, rows, n, eps, launch);
}
void layer_norm_rows(Device, const bf16* x, const bf16* w, const bf16* bias, bf16* y, float* mean, float* rstd,
                     int64_t rows, int64_t n, float eps, const LayerNormForwardLaunch& launch) {
  forward_impl<bf16, false>(x, nullptr, nullptr, w, bias, y, mean, rstd, rows, n, eps, launch);
}
void layer_norm_residual_rows(Device, const float* x, const float* residual, float* sum, const float* w,
                              const float* bias, float* y, float* mean, float* rstd, int64_t rows, int64_t n,
                              float eps) {
  forward_impl<float, true>(x, residual, sum, w, bias, y, mean, rstd, rows, n, eps, layer_norm_forward_launch());
}
void layer_norm_residual_rows(Device, const bf16* x, const bf16* residual, bf16* sum, const bf16* w, const bf16* bias,
                              bf16* y, float* mean, float* rstd, int64_t rows, int64_t n, float eps) {
  forward_impl<bf16, true>(x, residual, sum, w, bias, y, mean, rstd, rows, n, eps, layer_norm_forward_launch());
}
void layer_norm_rows_backward(Device, const float* x, const float* w, const float* mean, const float* rstd,
                              const float* g, float* dx, float* dw, float* db, int64_t rows, int64_t n) {
  backward_impl<float, float>(x, w, mean, rstd, g, dx, dw, db, rows, n, layer_norm_backward_launch());
}
void layer_norm_rows_backward(Device, const bf16* x, const bf16* w, const float* mean, const float* rstd,
                              const bf16* g, bf16* dx, float* dw, float* db, int64_t rows, int64_t n) {
  backward_impl<bf16, float>(x, w, mean, rstd, g, dx, dw, db, rows, n, layer_norm_backward_launch());
}
void layer_norm_rows_backward(Device, const bf16* x, const bf16* w, const float* mean, const float* rstd,
                              const bf16* g, bf16* dx, bf16* dw, bf16* db, int64_t rows, int64_t n) {
  backward_impl<bf16, bf16>(x, w, mean, rstd, g, dx, dw, db, rows, n, layer_norm_backward_launch());
}
void layer_norm_rows_backward_add(Device, const float* x, const float* w, const float* mean, const float* rstd,
                                  const float* g, const float* dx_add, float* dx, float* dw, float* db, int64_t rows,
                                  int64_t n) {
  VTS_CHECK(dx_add != nullptr, "vts::cuda::layer_norm_rows_backward_add: dx_add is null");
  backward_impl<float, float>(x, w, mean, rstd, g, dx, dw, db, rows, n, layer_norm_backward_launch(), dx_add);
}
void layer_norm_rows_backward_add(Device, const bf16* x, const bf16* w, const float* mean, const float* rstd,
                                  const bf16* g, const bf16* dx_add, bf16* dx, bf16* dw, bf16* db, int64_t rows,
                                  int64_t n) {
  VTS_CHECK(dx_add != nullptr, "vts::cuda::layer_norm_rows_backward_add: dx_add is null");
  backward_impl<bf16, bf16>(x, w, mean, rstd, g, dx, dw, db, rows, n, layer_norm_backward_launch(), dx_add);
}
void layer_norm_rows_backward(Device, const float* x, const float* w, const float* mean, const float* rstd,
                              const float* g, float* dx, float* dw, float* db, int64_t rows, int64_t n,
                              const LayerNormBackwardLaunch& launch) {
  backward_impl<float, float>(x, w, mean, rstd, g, dx, dw, db, rows, n, launch);
}
void layer_norm_rows_backward(Device, const bf16* x, const bf16* w, const float* mean, const float* rstd,
                              const bf16* g, bf16* dx, float* dw, float* db, int64_t rows, int64_t n,
                              const LayerNormBackwardLaunch& launch) {
  backward_impl<bf16, float>(x, w, mean, rstd, g, dx, dw, db, rows, n, launch);
}

}  // namespace vts::cuda
