#pragma once
// The float GEMM of AVX-512 builds: C (m × n, row-major) = alpha · A·B + beta · C with B packed
// into panels of 64 columns and every 6 × 64 tile of C held in 24 of the 32 vector registers while
// k runs.
//
// Why not Eigen's kernel: at the products of the ViT encoders (k or n of 64 to 3,072) Eigen 3.4
// reaches 70-75 % of the FMA peak on a Zen 4 core (82-88 of 117 GFLOP/s) and spends 15 % of the
// tiny model's step packing both operands; OpenBLAS 0.3.21 reaches 80-89 %. This kernel packs only
// B (k × n, once a call: 1/m of the work), broadcasts A's elements straight from A in either
// layout, and runs ViT-B/16's products at 90-93 % of peak (docs/perf.md, "Our own float GEMM
// kernel").
//
// Each element of C is one FMA chain over k in order from zero, then alpha·sum + beta·C: the same
// arithmetic whichever tile, panel or thread computes it, so C has the same bits at any thread
// count and any cut of the work. Deep products (k past kPanelMaxDepth) and wide ones (B past
// kPanelMaxPackedFloats packed) are cut along k: each block continues the chains where the last
// stopped (the sums kept in float between blocks, as they are in the registers), so the cut
// changes no bit either. A few rows of C times a weight seen transposed (a linear layer's forward)
// are computed as Cᵀ = Bᵀ·Aᵀ, so that the weight is read in place rather than packed: the same
// FMAs in the same order, the same bits. Products this kernel does not take (one row or column, a
// B wider than kPanelMaxBlockedColumns for more than 96 rows of C, double, a build without
// AVX-512) stay with Eigen or OpenBLAS. (An AVX2 version with 6 × 16 tiles was slower than Eigen's
// AVX2 kernel for the large weight gradients and not reliably faster elsewhere: not kept;
// docs/perf.md.)
#include <algorithm>
#include <array>
#include <cstdint>
#include <memory>
#include <utility>
#if defined(__AVX512F__)
#include <immintrin.h>
#endif

#include "vts/backend/cpu/parallel.hpp"
#include "vts/core/layout.hpp"

namespace vts::cpu::detail {

#if defined(__AVX512F__)
// The instructions the kernel uses, named: 16 floats a vector, 4 vectors a panel.
struct PanelIsa {
  using Vec = __m512;
  static constexpr int64_t kLanes = 16, kVectors = 4;
  static __mmask16 first(int64_t count) {
    return count >= 16 ? __mmask16(0xffff) : static_cast<__mmask16>((1u << std::max<int64_t>(count, 0)) - 1u);
  }
  static Vec zero() { return _mm512_setzero_ps(); }
  static Vec load(const float* p) { return _mm512_loadu_ps(p); }
  static Vec load_first(const float* p, int64_t count) { return _mm512_maskz_loadu_ps(first(count), p); }
  static void store(float* p, Vec v) { _mm512_storeu_ps(p, v); }
  static void store_first(float* p, int64_t count, Vec v) { _mm512_mask_storeu_ps(p, first(count), v); }
  static Vec broadcast(float x) { return _mm512_set1_ps(x); }
  static Vec mul(Vec a, Vec b) { return _mm512_mul_ps(a, b); }
  static Vec fma(Vec a, Vec b, Vec c) { return _mm512_fmadd_ps(a, b, c); }
  // r[c] becomes column c of the 16 × 16 block whose rows r held: unpacks within 128-bit lanes,
  // then two rounds of lane shuffles.
  static void transpose(Vec (&r)[16]) {
    Vec u[16];
    for (int g = 0; g < 4; ++g) {
      const Vec t0 = _mm512_unpacklo_ps(r[4 * g], r[4 * g + 1]);
      const Vec t1 = _mm512_unpackhi_ps(r[4 * g], r[4 * g + 1]);
      const Vec t2 = _mm512_unpacklo_ps(r[4 * g + 2], r[4 * g + 3]);
      const Vec t3 = _mm512_unpackhi_ps(r[4 * g + 2], r[4 * g + 3]);
      // u[4g + x], 128-bit lane l: element 4l + x of rows 4g .. 4g + 3.
      u[4 * g + 0] = _mm512_shuffle_ps(t0, t2, 0x44);
      u[4 * g + 1] = _mm512_shuffle_ps(t0, t2, 0xEE);
      u[4 * g + 2] = _mm512_shuffle_ps(t1, t3, 0x44);
      u[4 * g + 3] = _mm512_shuffle_ps(t1, t3, 0xEE);
    }
    for (int x = 0; x < 4; ++x) {
      const Vec even01 = _mm512_shuffle_f32x4(u[x], u[4 + x], 0x88), odd01 = _mm512_shuffle_f32x4(u[x], u[4 + x], 0xDD);
      const Vec even23 = _mm512_shuffle_f32x4(u[8 + x], u[12 + x], 0x88);
      const Vec odd23 = _mm512_shuffle_f32x4(u[8 + x], u[12 + x], 0xDD);
      r[x] = _mm512_shuffle_f32x4(even01, even23, 0x88);
      r[4 + x] = _mm512_shuffle_f32x4(odd01, odd23, 0x88);
      r[8 + x] = _mm512_shuffle_f32x4(even01, even23, 0xDD);
      r[12 + x] = _mm512_shuffle_f32x4(odd01, odd23, 0xDD);
    }
  }
};
inline constexpr bool kPanelGemmCompiled = true;
inline constexpr int64_t kPanelCols = PanelIsa::kLanes * PanelIsa::kVectors;  // columns of C in a tile
#else
inline constexpr bool kPanelGemmCompiled = false;
inline constexpr int64_t kPanelCols = 1;
#endif
inline constexpr int64_t kPanelRows = 6;  // rows of C in a tile
// Up to this depth, and with B packed in at most kPanelMaxPackedFloats, B is packed whole and each
// tile runs its whole chain at once (the encoders' products).
inline constexpr int64_t kPanelMaxDepth = 4096;
inline constexpr int64_t kPanelMaxPackedFloats = int64_t(4) << 20;
// Past either limit k is cut into blocks of at most kPanelDepthBlock rows, and the tiles go
// through C in groups of kPanelGroupTiles: the group's rows of A for one block (96 × 1,024 floats,
// 384 KB) and one panel of B's block (256 KB) stay in a 1 MB L2 while the group runs. With more
// than one group, B's block is packed whole, so where B is wide the blocks are shallower (a block
// of B in kPanelMaxPackedFloats, but never fewer than kPanelMinDepthBlock rows). Blocks of 256 to
// 2,048 rows and groups of 4 to 64 tiles were within a few % of each other (docs/perf.md, "Deep and
// wide products").
inline constexpr int64_t kPanelDepthBlock = 1024;
inline constexpr int64_t kPanelMinDepthBlock = 128;
inline constexpr int64_t kPanelGroupTiles = 16;
inline constexpr int64_t kPanelMaxBlockedColumns = kPanelMaxPackedFloats / kPanelMinDepthBlock;
inline constexpr int64_t kPanelSplitMinWork = int64_t(1) << 18;  // multiply-adds worth a fork, as in gemm

// Whether C has one group of tiles (at most kPanelRows · kPanelGroupTiles rows): then a cut k packs
// B a panel at a time, so B may be of any width (panel_gemm_blocked).
inline bool panel_one_group(int64_t m) { return m <= kPanelRows * kPanelGroupTiles; }

// Whether a product of m × n × k is shared among the threads: not inside a parallel region (the
// attention's per-head tasks), and only when it is worth a fork.
inline bool panel_splits(int64_t m, int64_t n, int64_t k) {
  return !in_parallel() && max_threads() > 1 && m * n * k >= kPanelSplitMinWork;
}

// Whether the kernel takes C (m × n) = A (m × k) · B (k × n). Operands without a unit stride either
// way are left to gemm's Eigen path, which refuses them with its own message.
inline bool panel_gemm_takes(const MatrixRef<float>& a, const MatrixRef<float>& b) {
  const int64_t m = a.rows, k = a.cols, n = b.cols;
  const int64_t padded = (n + kPanelCols - 1) / kPanelCols * kPanelCols;
  const bool unit_strides =
      (a.col_stride == 1 || a.row_stride == 1 || k == 1) && (b.col_stride == 1 || b.row_stride == 1);
  return kPanelGemmCompiled && unit_strides && m >= 2 && n >= 2 && k >= 1 &&
         (padded <= kPanelMaxBlockedColumns || panel_one_group(m));
}

#if defined(__AVX512F__)
// Columns [j0, j0 + width) of B into panel rows of kPanelCols floats, zero past width up to the end
// of the last vector the tiles read; the vectors after it (a panel of 16 columns: three of the four)
// are left unwritten, since no tile reads them — the attention's heads of 16 features are packed
// thousands of times a step.
// Rows [k0, k1) of B only (the rest of the panel untouched), so that threads can share one panel.
inline void pack_panel_from_rows(const MatrixRef<float>& b, int64_t j0, int64_t width, int64_t k0, int64_t k1,
                                 float* panel) {
  using I = PanelIsa;
  const int64_t vectors = (width + I::kLanes - 1) / I::kLanes;
  for (int64_t kk = k0; kk < k1; ++kk) {
    const float* src = b.data + kk * b.row_stride + j0;
    float* dst = panel + kk * kPanelCols;
    for (int64_t v = 0; v < vectors; ++v)
      I::store(dst + I::kLanes * v, I::load_first(src + I::kLanes * v, width - I::kLanes * v));
  }
}

// The same from a column-major B (a weight W [n, k] seen as Wᵀ): B's columns are W's rows, read a
// vector at a time from as many rows and transposed in registers, so the panel is written in whole
// rows. Rows [k0, k1) as above; k0 a multiple of the vector's lanes.
inline void pack_panel_from_columns(const MatrixRef<float>& b, int64_t j0, int64_t width, int64_t k0, int64_t k1,
                                    float* panel) {
  using I = PanelIsa;
  constexpr int64_t L = I::kLanes;
  for (int64_t jj = 0; jj < width; jj += L) {  // the vectors the tiles read, as above
    const int64_t cols = std::min<int64_t>(width - jj, L);
    for (int64_t kk = k0; kk < k1; kk += L) {
      const int64_t depth = std::min<int64_t>(k1 - kk, L);
      typename I::Vec r[L];
      for (int64_t c = 0; c < L; ++c)
        r[c] = c < cols ? I::load_first(b.data + (j0 + jj + c) * b.col_stride + kk, depth) : I::zero();
      I::transpose(r);
      for (int64_t row = 0; row < depth; ++row) I::store(panel + (kk + row) * kPanelCols + jj, r[row]);
    }
  }
}

struct PanelTile {
  int64_t k;
  const float* a;      // A's first element of the tile's first row
  int64_t a_stride;    // between rows (A row-major) or between columns (A column-major)
  const float* panel;  // k rows of kPanelCols floats
  float* c;
  int64_t ldc, width;  // width: the panel's columns that are C's (the rest are padding)
  float alpha, beta;
  // A block of a cut k (panel_gemm_blocked): the sums so far are read from `sums_in` unless this
  // is the first block, and written raw to `sums_out` unless it is the last (then C is written).
  // Rows sums_ld floats apart, each a whole panel wide.
  const float* sums_in = nullptr;
  float* sums_out = nullptr;
  int64_t sums_ld = 0;
};

// C = alpha·sum + beta·C for one vector of C, C not read when beta is 0. Every sum leaves the
// kernel through here, so a product computed as its transpose (panel_store_transposed) ends in
// the same operations and the same bits.
struct PanelScale {
  float alpha, beta;
  PanelIsa::Vec alpha_v, beta_v;
  PanelScale(float alpha_, float beta_)
      : alpha(alpha_), beta(beta_), alpha_v(PanelIsa::broadcast(alpha_)), beta_v(PanelIsa::broadcast(beta_)) {}
  // The first `lanes` floats at c (all 16 when lanes ≥ 16; masked moves only for a partial vector).
  void store(float* c, int64_t lanes, PanelIsa::Vec sum) const {
    using I = PanelIsa;
    const bool whole = lanes >= I::kLanes;
    typename I::Vec out;
    if (beta == 0.0f) {
      out = alpha == 1.0f ? sum : I::mul(alpha_v, sum);
    } else {
      typename I::Vec old = whole ? I::load(c) : I::load_first(c, lanes);
      if (beta != 1.0f) old = I::mul(beta_v, old);
      out = I::fma(alpha_v, sum, old);
    }
    if (whole) I::store(c, out);
    else I::store_first(c, lanes, out);
  }
};

// R rows and V vectors of columns of C: acc = Σ_k A(i, k)·B(k, j), one FMA a term, then
// C = alpha·acc + beta·C (C not read when beta is 0).
// The accumulators stay in registers only where every access to acc[][] has a constant index, so
// every loop over them must be unrolled completely. GCC does; Clang 14 leaves the store loop below
// (a large body) rolled, and then keeps all 24 accumulators on the stack, a load and a store around
// every FMA: its build trained at 0.4-0.55x the GCC build's speed (docs/perf.md, "Clang 14 against
// GCC 12").
// Forcing the unroll under GCC as well would only change its code (2.5x larger tile functions).
#if defined(__clang__)
#define VTS_PANEL_UNROLL_FULLY _Pragma("unroll")
#else
#define VTS_PANEL_UNROLL_FULLY
#endif
template <bool ARowMajor, int R, int V>
void panel_tile(const PanelTile& t) {
  using I = PanelIsa;
  typename I::Vec acc[R][V];
  for (int r = 0; r < R; ++r)
    for (int v = 0; v < V; ++v) acc[r][v] = t.sums_in ? I::load(t.sums_in + r * t.sums_ld + I::kLanes * v) : I::zero();
  const float* bp = t.panel;
  for (int64_t kk = 0; kk < t.k; ++kk, bp += kPanelCols) {
    typename I::Vec bv[V];
    for (int v = 0; v < V; ++v) bv[v] = I::load(bp + I::kLanes * v);
    for (int r = 0; r < R; ++r) {
      const typename I::Vec av = I::broadcast(ARowMajor ? t.a[r * t.a_stride + kk] : t.a[kk * t.a_stride + r]);
      for (int v = 0; v < V; ++v) acc[r][v] = I::fma(av, bv[v], acc[r][v]);
    }
  }
  if (t.sums_out) {
    for (int r = 0; r < R; ++r)
      for (int v = 0; v < V; ++v) I::store(t.sums_out + r * t.sums_ld + I::kLanes * v, acc[r][v]);
    return;
  }
  const PanelScale scale(t.alpha, t.beta);
  VTS_PANEL_UNROLL_FULLY
  for (int v = 0; v < V; ++v)
    VTS_PANEL_UNROLL_FULLY
    for (int r = 0; r < R; ++r) scale.store(t.c + r * t.ldc + I::kLanes * v, t.width - I::kLanes * v, acc[r][v]);
}

#undef VTS_PANEL_UNROLL_FULLY

using PanelTileFn = void (*)(const PanelTile&);

template <bool ARowMajor, size_t... I>
constexpr std::array<PanelTileFn, sizeof...(I)> panel_tile_table(std::index_sequence<I...>) {
  constexpr int vectors = static_cast<int>(PanelIsa::kVectors);
  return {&panel_tile<ARowMajor, static_cast<int>(I) / vectors + 1, static_cast<int>(I) % vectors + 1>...};
}

// The tile function for `rows` (1-6) rows and `width` (1 to kPanelCols) columns.
template <bool ARowMajor>
PanelTileFn panel_tile_for(int64_t rows, int64_t width) {
  static constexpr auto table =
      panel_tile_table<ARowMajor>(std::make_index_sequence<static_cast<size_t>(kPanelRows * PanelIsa::kVectors)>{});
  const int64_t vectors = (width + PanelIsa::kLanes - 1) / PanelIsa::kLanes;
  return table[static_cast<size_t>((rows - 1) * PanelIsa::kVectors + vectors - 1)];
}

// A buffer of the calling thread, at least `floats` long (Slot 0: packed B; 1: a cut k's sums; 2:
// the sums of a product computed as its transpose, panel_gemm_transposes). It only grows, and is
// not cleared: a std::vector resized between products of different sizes zero-filled what it grew
// by each time (2 % of the tiny model's step, all of it overwritten).
template <int Slot>
float* panel_buffer(size_t floats) {
  thread_local std::unique_ptr<float[]> buffer;
  thread_local size_t capacity = 0;
  if (floats > capacity) {
    buffer = std::make_unique_for_overwrite<float[]>(floats);
    capacity = floats;
  }
  return buffer.get();
}

// Rows [k0, k1) of panel p of B (its columns p·kPanelCols onwards) into `panel`; all of B's rows
// by default.
inline void pack_panel(const MatrixRef<float>& b, int64_t p, float* panel, int64_t k0 = 0, int64_t k1 = -1) {
  const int64_t j0 = p * kPanelCols, width = std::min(kPanelCols, b.cols - j0);
  if (k1 < 0) k1 = b.rows;
  if (b.col_stride == 1) pack_panel_from_rows(b, j0, width, k0, k1, panel);
  else pack_panel_from_columns(b, j0, width, k0, k1, panel);
}

// Rows of B a thread packs at a time when the panels are shared out (a multiple of the vector's
// lanes, as pack_panel_from_columns needs).
inline constexpr int64_t kPanelPackRows = 256;

// Every panel of B into `packed`, one after another, on all threads when `on_all_threads`: in
// pieces of kPanelPackRows rows of a panel, since B is often one or two panels wide (a weight
// gradient's input of 64 features), and by panels alone a thread would pack it all.
inline void pack_panels(const MatrixRef<float>& b, int64_t panels, bool on_all_threads, float* packed) {
  const int64_t panel_floats = b.rows * kPanelCols;
  if (on_all_threads) {
    const int64_t pieces = (b.rows + kPanelPackRows - 1) / kPanelPackRows;
    parallel_for(0, panels * pieces, 1, [&](int64_t ib, int64_t ie) {
      for (int64_t item = ib; item < ie; ++item) {
        const int64_t p = item / pieces, k0 = item % pieces * kPanelPackRows;
        pack_panel(b, p, packed + p * panel_floats, k0, std::min(b.rows, k0 + kPanelPackRows));
      }
    });
  } else {
    for (int64_t p = 0; p < panels; ++p) pack_panel(b, p, packed + p * panel_floats);
  }
}

inline PanelTileFn panel_tile_for(bool a_row_major, int64_t rows, int64_t width) {
  return a_row_major ? panel_tile_for<true>(rows, width) : panel_tile_for<false>(rows, width);
}

// panel_gemm with k cut into blocks of at most `depth_block` rows (see kPanelDepthBlock).
// Few rows of C (one group of tiles): each thread takes whole panels, packs a panel's block at a
// time into its own buffer and carries the tiles' sums (m × kPanelCols floats) through every
// block; B is read once, in any width. More rows: for each block, all of B's block is packed once
// (on all threads) and the work is groups of kPanelGroupTiles tiles × panels, group by group, so
// that a thread's successive items share the group's rows of A.
inline void panel_gemm_blocked(const MatrixRef<float>& a, const MatrixRef<float>& b, float* c, int64_t ldc,
                               float alpha, float beta, int64_t depth_block) {
  const int64_t m = a.rows, k = a.cols, n = b.cols;
  const int64_t tiles = (m + kPanelRows - 1) / kPanelRows, panels = (n + kPanelCols - 1) / kPanelCols;
  const int64_t padded = panels * kPanelCols;
  const bool one_group = panel_one_group(m);
  const int64_t most =
      std::max<int64_t>(1, one_group ? depth_block : std::min(depth_block, kPanelMaxPackedFloats / padded));
  const int64_t blocks = (k + most - 1) / most, depth = (k + blocks - 1) / blocks;  // blocks of equal depth
  const bool a_row_major = a.col_stride == 1 || k == 1;
  const int64_t a_stride = a_row_major ? a.row_stride : a.col_stride, a_step = a_row_major ? 1 : a.col_stride;
  const int64_t b_step = b.col_stride == 1 ? b.row_stride : 1;
  const bool split = panel_splits(m, n, k);
  auto block_of_b = [&](int64_t k0, int64_t kn) {
    return MatrixRef<float>{b.data + k0 * b_step, kn, n, b.row_stride, b.col_stride};
  };

  // Tiles [t_begin, t_end) of C against panel p for block `block` of k, whose packed rows of B are
  // at `panel`; `sums` points at row 0 of the panel's columns in a buffer of rows sums_ld apart.
  auto run_tiles = [&](int64_t t_begin, int64_t t_end, int64_t p, int64_t block, const float* panel, float* sums,
                       int64_t sums_ld) {
    const int64_t k0 = block * depth, kn = std::min(depth, k - k0);
    const int64_t j0 = p * kPanelCols, width = std::min(kPanelCols, n - j0);
    const bool first = block == 0, last = block == blocks - 1;
    for (int64_t t = t_begin; t < t_end; ++t) {
      const int64_t r0 = t * kPanelRows, rows = std::min(kPanelRows, m - r0);
      float* tile_sums = sums ? sums + r0 * sums_ld : nullptr;
      const PanelTile args{kn,
                           a.data + r0 * a.row_stride + k0 * a_step,
                           a_stride,
                           panel,
                           c + r0 * ldc + j0,
                           ldc,
                           width,
                           alpha,
                           beta,
                           first ? nullptr : tile_sums,
                           last ? nullptr : tile_sums,
                           sums_ld};
      panel_tile_for(a_row_major, rows, width)(args);
    }
  };

  if (one_group) {
    parallel_for(0, panels, split ? 1 : panels, [&](int64_t pb, int64_t pe) {
      float* const panel = panel_buffer<0>(static_cast<size_t>(depth * kPanelCols));
      float* const sums = blocks > 1 ? panel_buffer<1>(static_cast<size_t>(m * kPanelCols)) : nullptr;
      for (int64_t p = pb; p < pe; ++p) {
        for (int64_t block = 0; block < blocks; ++block) {
          const int64_t k0 = block * depth;
          pack_panel(block_of_b(k0, std::min(depth, k - k0)), p, panel);
          run_tiles(0, tiles, p, block, panel, sums, kPanelCols);
        }
      }
    });
    return;
  }

  // The sums take m × padded floats, kept by the calling thread: past kPanelMaxPackedFloats C is
  // done in bands of rows, each a product of its own (the same chains, B packed again a band).
  const int64_t band =
      std::max(kPanelRows * kPanelGroupTiles, kPanelMaxPackedFloats / padded / kPanelRows * kPanelRows);
  if (blocks > 1 && m > band) {
    for (int64_t r0 = 0; r0 < m; r0 += band) {
      const MatrixRef<float> rows{a.data + r0 * a.row_stride, std::min(band, m - r0), k, a.row_stride, a.col_stride};
      panel_gemm_blocked(rows, b, c + r0 * ldc, ldc, alpha, beta, depth_block);
    }
    return;
  }
  float* const packed = panel_buffer<0>(static_cast<size_t>(depth * padded));
  float* const sums = blocks > 1 ? panel_buffer<1>(static_cast<size_t>(m * padded)) : nullptr;
  const int64_t groups = (tiles + kPanelGroupTiles - 1) / kPanelGroupTiles, items = groups * panels;
  for (int64_t block = 0; block < blocks; ++block) {
    const int64_t k0 = block * depth, kn = std::min(depth, k - k0);
    // On all threads whenever the product is split: a block is ≥ kPanelMinDepthBlock rows deep, and
    // packing it on one thread (a head's B, transposed) left the other idle for most of the block.
    pack_panels(block_of_b(k0, kn), panels, split, packed);
    parallel_for(0, items, split ? 1 : items, [&](int64_t ib, int64_t ie) {
      for (int64_t item = ib; item < ie; ++item) {
        const int64_t group = item / panels, p = item % panels;
        run_tiles(group * kPanelGroupTiles, std::min(tiles, (group + 1) * kPanelGroupTiles), p, block,
                  packed + p * kn * kPanelCols, sums ? sums + p * kPanelCols : nullptr, padded);
      }
    });
  }
}

// panel_gemm as the layout of the operands has it: B packed, A read in place.
inline void panel_gemm_direct(const MatrixRef<float>& a, const MatrixRef<float>& b, float* c, int64_t ldc,
                              float alpha, float beta, int64_t depth_block) {
  const int64_t m = a.rows, k = a.cols, n = b.cols;
  const int64_t tiles = (m + kPanelRows - 1) / kPanelRows, panels = (n + kPanelCols - 1) / kPanelCols;
  if (depth_block > 0 || k > kPanelMaxDepth || k * panels * kPanelCols > kPanelMaxPackedFloats) {
    panel_gemm_blocked(a, b, c, ldc, alpha, beta, depth_block > 0 ? depth_block : kPanelDepthBlock);
    return;
  }
  const bool a_row_major = a.col_stride == 1 || k == 1;
  const int64_t a_stride = a_row_major ? a.row_stride : a.col_stride;

  float* const packed = panel_buffer<0>(static_cast<size_t>(panels * k * kPanelCols));
  auto tile = [&](int64_t t, int64_t p) {
    const int64_t r0 = t * kPanelRows, rows = std::min(kPanelRows, m - r0);
    const int64_t j0 = p * kPanelCols, width = std::min(kPanelCols, n - j0);
    const PanelTile args{k, a.data + r0 * a.row_stride, a_stride,
                         packed + p * k * kPanelCols, c + r0 * ldc + j0, ldc, width, alpha, beta};
    panel_tile_for(a_row_major, rows, width)(args);
  };

  // The operand read again for each pass of the outer loop should be the smaller one: with panels
  // outside, A (m × k) is read once a panel and each panel once; with tiles outside, all of B once a
  // tile. Threads take whole passes of the outer loop, so with panels outside each packs only its own.
  const bool panels_outside = m < n;
  const bool split = panel_splits(m, n, k);
  const int64_t grain = split ? 1 : (panels_outside ? panels : tiles);
  if (panels_outside) {
    parallel_for(0, panels, grain, [&](int64_t pb, int64_t pe) {
      for (int64_t p = pb; p < pe; ++p) {
        pack_panel(b, p, packed + p * k * kPanelCols);
        for (int64_t t = 0; t < tiles; ++t) tile(t, p);
      }
    });
  } else {
    pack_panels(b, panels, split, packed);
    parallel_for(0, tiles, grain, [&](int64_t tb, int64_t te) {
      for (int64_t t = tb; t < te; ++t)
        for (int64_t p = 0; p < panels; ++p) tile(t, p);
    });
  }
}

// C = alpha·Tᵀ + beta·C, T (n × m, row-major) holding the sums of Cᵀ: blocks of 16 × 16 transposed
// in registers, then PanelScale, the tiles' own epilogue.
inline void panel_store_transposed(const float* t, int64_t m, int64_t n, float* c, int64_t ldc, float alpha,
                                   float beta, bool split) {
  using I = PanelIsa;
  constexpr int64_t L = I::kLanes;
  const PanelScale scale(alpha, beta);
  const int64_t row_blocks = (m + L - 1) / L, column_blocks = (n + L - 1) / L;
  parallel_for(0, column_blocks, split ? 1 : column_blocks, [&](int64_t jb, int64_t je) {
    for (int64_t j0 = jb * L; j0 < je * L; j0 += L) {
      const int64_t columns = std::min(L, n - j0);
      for (int64_t ib = 0; ib < row_blocks; ++ib) {
        const int64_t i0 = ib * L, rows = std::min(L, m - i0);
        typename I::Vec r[L];
        for (int64_t q = 0; q < L; ++q) r[q] = q < columns ? I::load_first(t + (j0 + q) * m + i0, rows) : I::zero();
        I::transpose(r);  // r[x]: row i0 + x of C, columns j0 onwards
        for (int64_t x = 0; x < rows; ++x) scale.store(c + (i0 + x) * ldc + j0, columns, r[x]);
      }
    }
  });
}

// Whether panel_gemm computes C = A·B as Cᵀ = Bᵀ·Aᵀ: a few rows of C (a batch) times a weight seen
// transposed (B = Wᵀ, column-major), as a linear layer's forward with a large weight — the hash
// head's. The direct way packs all of W, transposing it, for those few rows (the tiny model's head
// at batch 64: a 4.5 MB pass for 11 tiles a panel); the transposed way reads W in place as its A,
// a row-major operand, and packs the batch instead. The FMAs are the same (a·b = b·a exactly) in
// the same order, so the bits are too. Under 16 rows Cᵀ's tiles would fill part of each vector,
// past 128 the packing is a small share of the direct product: measured on a Zen 4 at one and two
// threads, at the heads' shapes (docs/perf.md, "Products computed as their transpose"). Cᵀ's sums
// are held in a buffer that stays with the thread, so like the others it is kept to 16 MB.
inline constexpr int64_t kPanelTransposeMinRows = 16, kPanelTransposeMaxRows = 128;
inline bool panel_gemm_transposes(const MatrixRef<float>& a, const MatrixRef<float>& b) {
  const int64_t m = a.rows, n = b.cols;
  return b.row_stride == 1 && b.col_stride != 1 && m >= kPanelTransposeMinRows && m <= kPanelTransposeMaxRows &&
         n >= 2 * m && m * n <= kPanelMaxPackedFloats && (a.col_stride == 1 || a.row_stride == 1);
}

// Needs panel_gemm_takes(a, b). depth_block > 0 cuts k into blocks of at most that many rows
// whatever the shape (the tests' way to reach the blocked path with small products).
inline void panel_gemm(const MatrixRef<float>& a, const MatrixRef<float>& b, float* c, int64_t ldc, float alpha,
                       float beta, int64_t depth_block = 0) {
  if (!panel_gemm_transposes(a, b)) {
    panel_gemm_direct(a, b, c, ldc, alpha, beta, depth_block);
    return;
  }
  const int64_t m = a.rows, k = a.cols, n = b.cols;
  // Slot 2: the transposed product packs and blocks through slots 0 and 1.
  float* const sums = panel_buffer<2>(static_cast<size_t>(n * m));
  panel_gemm_direct({b.data, n, k, b.col_stride, b.row_stride}, {a.data, k, m, a.col_stride, a.row_stride}, sums, m,
                    1.0f, 0.0f, depth_block);
  panel_store_transposed(sums, m, n, c, ldc, alpha, beta, panel_splits(m, n, k));
}
#endif

}  // namespace vts::cpu::detail
